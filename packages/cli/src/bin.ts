#!/usr/bin/env node
// The `minigpt` executable.
import * as tf from '@tensorflow/tfjs';
import { main } from './program.js';

// The CLI reports the backend it picked (and how to get a faster one) itself; production
// mode silences tfjs's own "install tfjs-node" banner on the cpu backend.
tf.enableProdMode();

process.exitCode = await main(process.argv);
