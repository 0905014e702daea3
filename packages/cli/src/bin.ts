#!/usr/bin/env node
// The `minigpt` executable.
import * as tf from '@tensorflow/tfjs';
import { main } from './program.js';

// The CLI reports the backend it picked (and how to get a faster one) itself; production
// mode silences tfjs's own "install tfjs-node" banner on the cpu backend.
tf.enableProdMode();

// A reader that stops early (`minigpt prepare --help | head`) closes the pipe: what is left
// to print has no one to read it, which is the normal end of the command, not a crash.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    process.exit(process.exitCode ?? 0);
  });
}

process.exitCode = await main(process.argv);
