// Child process of the binarize benchmark: prepares one file and reports time and peak RSS,
// so the figure is this run's memory alone, not the parent's.
import { binarize } from '@minigpt/data/node';

const [input, outDir, tokenizer] = process.argv.slice(2);
const started = performance.now();
const { meta } = await binarize({ input, outDir, tokenizer, force: true });
const seconds = (performance.now() - started) / 1000;
process.stdout.write(
  JSON.stringify({
    seconds,
    bytes: meta.source.bytes,
    tokens: meta.trainTokens + meta.valTokens,
    vocabSize: meta.vocabSize,
    // resourceUsage().maxRSS is in kilobytes.
    peakRssMB: process.resourceUsage().maxRSS / 1024,
  }) + '\n',
);
