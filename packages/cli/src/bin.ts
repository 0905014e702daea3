#!/usr/bin/env node
// The `minigpt` executable.
import { main } from './program.js';

process.exitCode = await main(process.argv);
