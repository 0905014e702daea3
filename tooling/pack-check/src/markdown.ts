// Reads the fenced code blocks of our own READMEs, so that tests can run what the READMEs
// show. A line scanner is enough for these files (backtick fences, no nesting inside lists),
// and no Markdown parser is among the workspace's dependencies.

export interface FencedBlock {
  /** The fence's info string: `sh`, `js`, or '' for a bare fence. */
  readonly info: string;
  readonly body: string;
  /** 1-based line of the opening fence, for messages. */
  readonly line: number;
  /** NAME from a `<!-- pack-check: NAME -->` comment on the last non-blank line before the fence. */
  readonly marker?: string;
}

const MARKER = /^<!--\s*pack-check:\s*(.+?)\s*-->$/;

export function fencedBlocks(markdown: string): FencedBlock[] {
  const lines = markdown.split('\n');
  const blocks: FencedBlock[] = [];
  let lastText = '';
  for (let i = 0; i < lines.length; i++) {
    const open = /^ {0,3}(`{3,})\s*([^`\s]*)/.exec(lines[i]!);
    if (!open) {
      if (lines[i]!.trim() !== '') lastText = lines[i]!.trim();
      continue;
    }
    const fence = open[1]!;
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && !new RegExp(`^ {0,3}${fence}\`*\\s*$`).test(lines[j]!)) {
      body.push(lines[j]!);
      j++;
    }
    if (j === lines.length) throw new Error(`line ${i + 1}: a code fence that never closes`);
    const marker = MARKER.exec(lastText)?.[1];
    blocks.push({ info: open[2]!, body: body.join('\n'), line: i + 1, marker });
    lastText = '';
    i = j;
  }
  return blocks;
}

/** The one block marked `<!-- pack-check: NAME -->`; an error naming the file when absent. */
export function markedBlock(markdown: string, name: string, file: string): FencedBlock {
  const found = fencedBlocks(markdown).filter((block) => block.marker === name);
  if (found.length !== 1)
    throw new Error(
      `${file}: expected one code block after <!-- pack-check: ${name} -->, found ${found.length}`,
    );
  return found[0]!;
}

/** True for the info strings a README's shell commands use. */
export function isShell(block: FencedBlock): boolean {
  return ['sh', 'bash', 'shell'].includes(block.info);
}

/**
 * The commands of a shell block, one per line: `#` comments and blank lines dropped, lines
 * ending in `\` joined with the next.
 */
export function shellCommands(body: string): string[] {
  const commands: string[] = [];
  let pending = '';
  for (const raw of body.split('\n')) {
    const line = stripComment(raw).trimEnd();
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1).trim()} `;
      continue;
    }
    const command = (pending + line.trim()).trim();
    pending = '';
    if (command !== '') commands.push(command);
  }
  if (pending.trim() !== '') commands.push(pending.trim());
  return commands;
}

/** Drops a `#` comment: a `#` at the start or after a blank, outside quotes. */
function stripComment(line: string): string {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const char = line[i]!;
    if (quote) {
      if (char === '\\' && quote === '"') i++;
      else if (char === quote) quote = undefined;
    } else if (char === '"' || char === "'") quote = char;
    else if (char === '\\') i++;
    else if (char === '#' && (i === 0 || /\s/.test(line[i - 1]!))) return line.slice(0, i);
  }
  return line;
}
