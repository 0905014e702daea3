#!/usr/bin/env node
// The `minigpt` executable.
import { main } from './program.js';

// A reader that stops early (`minigpt prepare --help | head`) closes the pipe: what is left
// to print has no one to read it, which is the normal end of the command, not a crash.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    process.exit(process.exitCode ?? 0);
  });
}

process.exitCode = await main(process.argv);
