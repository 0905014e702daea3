// The demo page: loads the exported model (device from ?device=webgpu|wasm, default auto;
// graph from ?dtype=fp32|q8), says which model it is and how it was trained (the export's
// about.json), streams generated text — one row, or the prompt in several rows of one batch,
// each sampled with its own seed — shows tokens/s and the device, stops on Stop.
import { loadModel, type Generation, type ModelDtype, type WebDevice } from '@minigpt/runner-web';
import type { About } from './about.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = $('status');
const output = $('output');
const stats = $('stats');
const errorBox = $('error');
const generateButton = $<HTMLButtonElement>('generate');
const stopButton = $<HTMLButtonElement>('stop');

const query = new URLSearchParams(location.search);
const requested = query.get('device');
// ?model=NAME loads public/NAME/ instead of public/model/ (the benchmark uses its own).
const modelDir = (query.get('model') ?? 'model').replace(/[^\w-]/g, '');
const device = requested === 'webgpu' || requested === 'wasm' ? (requested as WebDevice) : 'auto';
// ?dtype=q8 loads the int8 graph (onnx/model_quantized.onnx); default the float32 one.
const dtype: ModelDtype = query.get('dtype') === 'q8' ? 'q8' : 'fp32';
// ?threads=N sets the wasm thread count (default: onnxruntime-web's choice).
const threads = Number(query.get('threads') ?? NaN);

const count = (n: number) => n.toLocaleString('en-US');
const millions = (n: number) => `${(n / 1e6).toFixed(2)} M`;
function duration(seconds: number): string {
  const whole = Math.round(seconds);
  return whole >= 60 ? `${Math.floor(whole / 60)} min ${whole % 60} s` : `${whole} s`;
}

/** The export's about.json, or undefined when it has none (the benchmark's export). */
async function fetchAbout(): Promise<About | undefined> {
  try {
    const response = await fetch(new URL(`${modelDir}/about.json`, location.href));
    // A server may answer a missing file with the page itself: only JSON counts.
    if (!response.ok || !response.headers.get('content-type')?.includes('json')) return undefined;
    return (await response.json()) as About;
  } catch {
    return undefined;
  }
}

/** Fills the "model, corpus, training, validation loss" panel, and the corpus's prompt. */
function showAbout(about: About) {
  const { model, corpus, training, evaluation } = about;
  $('about-model').textContent =
    `${model.preset} preset: ${millions(model.parameters)} parameters; ${model.nLayer} layers, ` +
    `${model.nEmbd} wide, ${model.nHead} heads; context ${model.blockSize} tokens; ` +
    `vocab ${count(model.vocabSize)} (${model.tokenizer} tokenizer)`;
  $('about-corpus').textContent =
    `${corpus.name}, ${(corpus.bytes / 1e6).toFixed(1)} MB: ${count(corpus.trainTokens)} ` +
    `tokens to train on, ${count(corpus.valTokens)} held out for validation` +
    (corpus.fallback ? ` (${corpus.fallback})` : '');
  const kernels = training.nativeKernels;
  const backend =
    kernels && 'threads' in kernels
      ? `${training.backend} with the native kernels (${kernels.threads} thread${kernels.threads === 1 ? '' : 's'})`
      : `${training.backend} (no native kernels${kernels ? `: ${kernels.reason}` : ''})`;
  $('about-training').textContent =
    `${count(training.iterations)} iterations of ${training.batchSize} × ${model.blockSize} ` +
    `tokens (${millions(training.tokens)} tokens) in ${duration(training.seconds)} on ${backend}; ` +
    `${training.machine}, ${training.finishedAt.slice(0, 10)}`;
  $('about-loss').textContent =
    `${evaluation.valLoss.toFixed(3)} at iteration ${count(evaluation.iteration)} ` +
    `(train ${evaluation.trainLoss.toFixed(3)}; each the mean over ${evaluation.batches} batches)`;
  $<HTMLTextAreaElement>('prompt').value = about.prompt;
  $('about').hidden = false;
}

/** Appends each row's text to its own element as it streams. */
async function streamRows(rows: readonly Generation[], targets: readonly HTMLElement[]) {
  await Promise.all(
    rows.map(async (row, index) => {
      for await (const piece of row) targets[index]!.textContent += piece;
    }),
  );
}

try {
  const about = fetchAbout();
  const model = await loadModel(new URL(`${modelDir}/`, location.href).href, {
    device,
    dtype,
    ...(Number.isInteger(threads) && threads > 0 ? { threads } : {}),
  });
  const where = `${model.device}${model.device === 'wasm' ? ` (${model.threads} thread${model.threads > 1 ? 's' : ''})` : ''}, ${model.dtype === 'q8' ? 'int8' : 'float32'} weights`;
  status.textContent = `model ready: ${model.manifest.model.nLayer} layers, ${model.manifest.model.nEmbd} wide, on ${where}`;
  document.body.dataset['device'] = model.device;
  document.body.dataset['dtype'] = model.dtype;
  document.body.dataset['threads'] = String(model.threads);
  const facts = await about;
  if (facts) showAbout(facts);
  generateButton.disabled = false;
  let controller: AbortController | undefined;
  stopButton.onclick = () => controller?.abort();
  generateButton.onclick = async () => {
    controller = new AbortController();
    generateButton.disabled = true;
    stopButton.disabled = false;
    errorBox.textContent = '';
    output.textContent = '';
    document.body.dataset['state'] = 'running';
    try {
      const topK = Number($<HTMLInputElement>('top-k').value);
      const batch = Math.max(1, Math.floor(Number($<HTMLInputElement>('batch').value)) || 1);
      const prompt = $<HTMLTextAreaElement>('prompt').value;
      const options = {
        maxNewTokens: Number($<HTMLInputElement>('max-tokens').value),
        temperature: Number($<HTMLInputElement>('temperature').value),
        ...(topK > 0 ? { topK } : {}),
        signal: controller.signal,
      };
      // One row writes into #output itself; a batch gives each row its own block, in order.
      const targets =
        batch === 1
          ? [output]
          : Array.from({ length: batch }, (_, index) => {
              const block = document.createElement('div');
              block.className = 'row';
              block.dataset['row'] = String(index);
              output.append(block);
              return block;
            });
      const rows =
        batch === 1
          ? [model.generate(prompt, options)]
          : model.generateBatch(Array<string>(batch).fill(prompt), options).rows;
      await streamRows(rows, targets);
      // Every row's rate counts from the batch's first step: the batch's rate is all its new
      // tokens over the longest row's time (for one row, the row's own rate).
      const newTokens = rows.reduce((sum, row) => sum + row.stats.newTokens, 0);
      const seconds = Math.max(
        ...rows.map((row) =>
          row.stats.tokensPerSec > 0 ? row.stats.newTokens / row.stats.tokensPerSec : 0,
        ),
      );
      const tokensPerSec = seconds > 0 ? newTokens / seconds : 0;
      const firstTokenMs = Math.max(...rows.map((row) => row.stats.firstTokenMs));
      const reasons = [...new Set(rows.map((row) => row.stats.stopReason))].join(', ');
      stats.textContent = `${newTokens} tokens${batch > 1 ? ` in ${batch} rows` : ''}, ${tokensPerSec.toFixed(0)} tokens/s, first token ${firstTokenMs.toFixed(1)} ms, on ${where} (${reasons})`;
      stats.dataset['tokensPerSec'] = String(tokensPerSec);
    } catch (error) {
      errorBox.textContent = String((error as Error).message ?? error);
    } finally {
      generateButton.disabled = false;
      stopButton.disabled = true;
      document.body.dataset['state'] = 'done';
    }
  };
} catch (error) {
  // The demo's own model is built by a script of its own, not by `vite build`: say which.
  status.textContent =
    modelDir === 'model'
      ? 'the model could not be loaded: build it with `pnpm --filter @minigpt/example-web-demo model`, then build the page again'
      : 'the model could not be loaded';
  errorBox.textContent = String((error as Error).message ?? error);
  document.body.dataset['state'] = 'error';
}
