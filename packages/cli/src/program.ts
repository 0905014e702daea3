// The `minigpt` command tree. Each command lives in commands/; this file wires them up and
// turns errors into one readable line and an exit code.
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { exportCommand } from './commands/export.js';
import { generateCommand } from './commands/generate.js';
import { prepareCommand } from './commands/prepare.js';
import { sampleCommand } from './commands/sample.js';
import { trainCommand } from './commands/train.js';
import { userErrorMessage } from './errors.js';

const { version } = JSON.parse(
  readFileSync(new URL('../package.json', import.meta.url), 'utf8'),
) as {
  version: string;
};

export function createProgram(): Command {
  return new Command('minigpt')
    .description(
      'Build a GPT from scratch in TypeScript: prepare data, train, sample, export to ONNX, generate with onnxruntime.',
    )
    .version(version)
    .showHelpAfterError('(run with --help for usage)')
    .addCommand(prepareCommand())
    .addCommand(trainCommand())
    .addCommand(sampleCommand())
    .addCommand(exportCommand())
    .addCommand(generateCommand());
}

/** Runs the CLI; resolves to the process exit code. */
export async function main(argv: readonly string[] = process.argv): Promise<number> {
  const program = createProgram().exitOverride();
  for (const command of program.commands) {
    command.exitOverride().showHelpAfterError('(run with --help for usage)');
  }
  try {
    await program.parseAsync([...argv]);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode; // commander printed it already
    const userMessage = userErrorMessage(error);
    if (userMessage !== undefined) {
      process.stderr.write(`minigpt: error: ${userMessage}\n`);
      return 1;
    }
    process.stderr.write(
      `minigpt: internal error (please report it):\n${(error as Error).stack ?? String(error)}\n`,
    );
    return 2;
  }
}
