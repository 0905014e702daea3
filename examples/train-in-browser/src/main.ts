// The page: picks a text (pasted, a dropped or chosen .txt file, a bundled sample), the
// tokenizer, the model size and the backend; starts, pauses and resumes training in the
// worker; draws the losses as they come; samples from the current weights. It does no
// TensorFlow.js work itself: the main thread only handles the UI.
import { GPT_PRESETS, type GPTPresetName } from '@minigpt/model';
import { LossChart } from './loss-chart.js';
import type { PageState } from './page-state.js';
import {
  describeBackend,
  type BackendRequest,
  type PageMessage,
  type StoredRun,
  type TokenizerSetting,
  type TrainSettings,
  type WorkerEvent,
} from './protocol.js';
import { ResponsivenessMonitor } from './responsiveness.js';
import type { ExportRunRequest, ExportRunResult } from './worker/export-runner.worker.js';
import { SAMPLES } from './samples.js';

const byTestId = <T extends Element = HTMLElement>(id: string) => {
  const found = document.querySelector<T & Element>(`[data-testid="${id}"]`);
  if (!found) throw new Error(`the page has no [data-testid="${id}"]`);
  return found as T;
};
const text = byTestId<HTMLTextAreaElement>('text');
const fileInput = byTestId<HTMLInputElement>('file');
const sampleSelect = byTestId<HTMLSelectElement>('sample');
const textInfo = byTestId('text-info');
const tokenizerSelect = byTestId<HTMLSelectElement>('tokenizer');
const vocabSize = byTestId<HTMLInputElement>('vocab-size');
const presetSelect = byTestId<HTMLSelectElement>('preset');
const sizeInputs = {
  nLayer: byTestId<HTMLInputElement>('n-layer'),
  nHead: byTestId<HTMLInputElement>('n-head'),
  nEmbd: byTestId<HTMLInputElement>('n-embd'),
  blockSize: byTestId<HTMLInputElement>('block-size'),
};
const batchSize = byTestId<HTMLInputElement>('batch-size');
const maxIters = byTestId<HTMLInputElement>('max-iters');
const checkpointInterval = byTestId<HTMLInputElement>('checkpoint-interval');
const storedRunBox = byTestId('stored-run');
const checkpointFiles = byTestId<HTMLInputElement>('checkpoint-files');
const continueButton = byTestId<HTMLButtonElement>('continue-checkpoint');
const storedRunLine = byTestId('stored-run-line');
const resumeStoredButton = byTestId<HTMLButtonElement>('resume-stored');
const discardStoredButton = byTestId<HTMLButtonElement>('discard-stored');
const storedRunSize = byTestId('stored-run-size');
const backendSelect = byTestId<HTMLSelectElement>('backend');
const startButton = byTestId<HTMLButtonElement>('start');
const pauseButton = byTestId<HTMLButtonElement>('pause');
const resumeButton = byTestId<HTMLButtonElement>('resume');
const statusLine = byTestId('status');
const errorBox = byTestId('error');
const backendLine = byTestId('backend-line');
const runLine = byTestId('run-line');
const iterationOut = byTestId('iteration');
const lossOut = byTestId('loss');
const valLossOut = byTestId('val-loss');
const rateOut = byTestId('tokens-per-sec');
const etaOut = byTestId('eta');
const longestTaskOut = byTestId('longest-task');
const chart = new LossChart(byTestId<SVGSVGElement>('loss-chart'));
const samplePrompt = byTestId<HTMLTextAreaElement>('sample-prompt');
const sampleTokens = byTestId<HTMLInputElement>('sample-tokens');
const sampleTemperature = byTestId<HTMLInputElement>('sample-temperature');
const sampleButton = byTestId<HTMLButtonElement>('sample-button');
const sampleOutput = byTestId('sample-output');
const exportButton = byTestId<HTMLButtonElement>('export');
const checkpointButton = byTestId<HTMLButtonElement>('download-checkpoint');
const exportLink = byTestId<HTMLAnchorElement>('export-link');
const checkpointLink = byTestId<HTMLAnchorElement>('checkpoint-link');
const exportInfo = byTestId('export-info');
const exportOutput = byTestId('export-output');
const exportSampled = byTestId('export-sampled');

// ?threads=N sets the wasm threads (the bench compares 1 and 2); default one per core.
const threadsParam = Number(new URLSearchParams(location.search).get('threads') ?? NaN);
const wasmThreads = Number.isInteger(threadsParam) && threadsParam > 0 ? threadsParam : undefined;

const monitor = new ResponsivenessMonitor();
const state: PageState = {
  state: 'idle',
  iteration: 0,
  backend: undefined,
  backendLine: '',
  run: undefined,
  steps: [],
  evals: [],
  checkpoints: [],
  storedRuns: [],
  zips: [],
  log: [],
  errors: [],
  get responsiveness() {
    return monitor.snapshot;
  },
};
window.trainInBrowser = state;

const worker = new Worker(new URL('./worker/training.worker.ts', import.meta.url), {
  type: 'module',
});
const send = (message: PageMessage) => worker.postMessage(message);

// ── The text ──

for (const sample of SAMPLES) sampleSelect.append(new Option(sample.label, sample.id));
function showTextInfo() {
  const characters = text.value.length;
  textInfo.textContent = `${characters.toLocaleString('en-US')} characters`;
}
text.addEventListener('input', () => {
  textSource = 'pasted text';
  showTextInfo();
});
let textSource = 'pasted text';
sampleSelect.addEventListener('change', () => {
  const sample = SAMPLES.find((entry) => entry.id === sampleSelect.value);
  if (!sample) return;
  text.value = sample.text;
  textSource = `sample: ${sample.id}`;
  showTextInfo();
});

/** A .txt file's text; a file that is not UTF-8 text is refused with a message. */
async function loadFile(file: File) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  let decoded: string;
  try {
    decoded = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    showError(`${file.name} is not a UTF-8 text file`);
    return;
  }
  if (decoded.includes('\u0000')) {
    showError(`${file.name} looks binary (it holds NUL bytes), not a text file`);
    return;
  }
  text.value = decoded;
  textSource = file.name;
  sampleSelect.value = '';
  errorBox.textContent = '';
  showTextInfo();
}
fileInput.addEventListener('change', () => {
  const file = fileInput.files?.[0];
  if (file) void loadFile(file);
});
text.addEventListener('dragover', (event) => event.preventDefault());
text.addEventListener('drop', (event) => {
  const file = event.dataTransfer?.files[0];
  if (!file) return;
  event.preventDefault();
  void loadFile(file);
});

// ── Settings ──

tokenizerSelect.addEventListener('change', () => {
  vocabSize.disabled = tokenizerSelect.value !== 'bpe';
});
function fillPreset() {
  const preset = GPT_PRESETS[presetSelect.value as GPTPresetName];
  for (const [key, input] of Object.entries(sizeInputs)) {
    input.value = String(preset[key as keyof typeof sizeInputs]);
  }
}
presetSelect.addEventListener('change', fillPreset);
fillPreset();

/** A positive integer from `input`, or undefined when it is empty. */
function integerFrom(input: HTMLInputElement, name: string): number | undefined {
  if (input.value.trim() === '') return undefined;
  const value = Number(input.value);
  if (!Number.isInteger(value) || value < 1)
    throw new Error(`${name} must be a positive integer, got "${input.value}"`);
  return value;
}

function settingsFromForm(): TrainSettings {
  const preset = presetSelect.value as GPTPresetName;
  const base = GPT_PRESETS[preset];
  const overrides: Record<string, number> = {};
  // Only the sizes that differ from the preset: the run's config then says what was changed.
  for (const [key, input] of Object.entries(sizeInputs)) {
    const value = integerFrom(input, key);
    if (value !== undefined && value !== base[key as keyof typeof sizeInputs])
      overrides[key] = value;
  }
  const batch = integerFrom(batchSize, 'batch size');
  const iterations = integerFrom(maxIters, 'iterations');
  const interval = integerFrom(checkpointInterval, 'checkpoint interval');
  return {
    preset,
    ...overrides,
    ...(batch !== undefined ? { batchSize: batch } : {}),
    ...(iterations !== undefined ? { maxIters: iterations } : {}),
    ...(interval !== undefined ? { checkpointInterval: interval } : {}),
  };
}

function tokenizerFromForm(): TokenizerSetting {
  if (tokenizerSelect.value !== 'bpe') return { kind: 'char' };
  const size = integerFrom(vocabSize, 'vocab size');
  if (size === undefined || size < 257)
    throw new Error('the BPE vocab size must be at least 257 (256 bytes and one merge)');
  return { kind: 'bpe', vocabSize: size };
}

// ── Training ──

function showError(message: string) {
  errorBox.textContent = message;
  state.errors.push(message);
}

function setButtons() {
  const running =
    state.state === 'preparing' || state.state === 'training' || state.state === 'paused';
  startButton.disabled = running;
  resumeStoredButton.disabled = running || storedRun === undefined || discarding;
  discardStoredButton.disabled = running || storedRun === undefined || discarding;
  continueButton.disabled = running;
  pauseButton.disabled = state.state !== 'training';
  resumeButton.disabled = state.state !== 'paused';
  sampleButton.disabled = state.run === undefined || sampling;
  exportButton.disabled = state.run === undefined || exporting;
  checkpointButton.disabled = state.run === undefined || exporting;
  document.body.dataset['state'] = state.state;
}

startButton.addEventListener('click', () => {
  errorBox.textContent = '';
  let message: PageMessage;
  try {
    if (text.value.length === 0)
      throw new Error('the text is empty: paste a text, drop a .txt file or pick a sample');
    message = {
      type: 'start',
      data: { kind: 'text', text: text.value, source: textSource },
      tokenizer: tokenizerFromForm(),
      config: settingsFromForm(),
      backend: backendSelect.value as BackendRequest,
      ...(wasmThreads !== undefined ? { wasmThreads } : {}),
      runId: newRunId(),
    };
  } catch (error) {
    showError((error as Error).message);
    return;
  }
  beginRun(message.config.maxIters ?? 1);
  send(message);
});

continueButton.addEventListener('click', () => {
  errorBox.textContent = '';
  void (async () => {
    const chosen = [...(checkpointFiles.files ?? [])];
    let iterations: number | undefined;
    try {
      if (chosen.length === 0)
        throw new Error('choose a checkpoint first: its .zip, or its five files');
      if (text.value.length === 0)
        throw new Error('the text is empty: a checkpoint continues on the text it was trained on');
      iterations = integerFrom(maxIters, 'iterations');
    } catch (error) {
      showError((error as Error).message);
      return;
    }
    const files: Record<string, Uint8Array> = {};
    for (const file of chosen) files[file.name] = new Uint8Array(await file.arrayBuffer());
    beginRun(iterations ?? 1);
    send({
      type: 'continue-checkpoint',
      runId: newRunId(),
      files,
      data: { kind: 'text', text: text.value, source: textSource },
      ...(iterations !== undefined ? { config: { maxIters: iterations } } : {}),
      backend: backendSelect.value as BackendRequest,
      ...(wasmThreads !== undefined ? { wasmThreads } : {}),
    });
  })();
});

/** A folder name for a new run: its start time, sortable, safe in OPFS. */
function newRunId(): string {
  return `run-${new Date().toISOString().replace(/[:.]/g, '-')}`;
}

function beginRun(maxIterations: number) {
  state.steps = [];
  state.evals = [];
  state.checkpoints = [];
  state.run = undefined;
  state.iteration = 0;
  chart.reset(maxIterations);
  monitor.start();
  state.state = 'preparing';
  storedRunBox.hidden = true;
  setButtons();
}

// ── A run left in this browser's storage (OPFS): offered for resuming ──

let storedRun: StoredRun | undefined;
resumeStoredButton.addEventListener('click', () => {
  if (!storedRun) return;
  errorBox.textContent = '';
  let iterations: number | undefined;
  try {
    iterations = integerFrom(maxIters, 'iterations');
  } catch (error) {
    showError((error as Error).message);
    return;
  }
  beginRun(iterations ?? storedRun.settings.maxIters ?? 1);
  send({
    type: 'resume-run',
    runId: storedRun.runId,
    ...(wasmThreads !== undefined ? { wasmThreads } : {}),
    ...(iterations !== undefined ? { config: { maxIters: iterations } } : {}),
  });
});

// Discard: deletes the offered run's OPFS folder (the worker refuses a run in use, here or in
// another tab); the worker answers with the runs left, and the next older one is offered.
let discarding = false;
discardStoredButton.addEventListener('click', () => {
  if (!storedRun) return;
  const confirmed = confirm(
    `Discard the stored run (${storedRun.source}, checkpoint at iteration ${count(storedRun.iteration ?? 0)})? ` +
      `Its checkpoints are deleted from this browser (${bytes(storedRun.bytes)}); download the checkpoint first to keep it.`,
  );
  if (!confirmed) return;
  errorBox.textContent = '';
  discarding = true;
  document.body.dataset['discard'] = 'running';
  setButtons();
  send({ type: 'discard-run', runId: storedRun.runId });
});
send({ type: 'find-runs' });
pauseButton.addEventListener('click', () => {
  pauseButton.disabled = true;
  send({ type: 'pause' });
});
resumeButton.addEventListener('click', () => {
  resumeButton.disabled = true;
  send({ type: 'resume' });
});

const count = (n: number) => n.toLocaleString('en-US');
/** A size in bytes as the page shows it: "412 KiB", "1.2 MiB". */
function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(0)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(1)} GiB`;
}
function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '—';
  const whole = Math.round(seconds);
  if (whole >= 3600) return `${Math.floor(whole / 3600)} h ${Math.round((whole % 3600) / 60)} min`;
  return whole >= 60 ? `${Math.floor(whole / 60)} min ${whole % 60} s` : `${whole} s`;
}

let sampling = false;
let exporting = false;
const zipUrls = new Map<HTMLAnchorElement, string>();

/** Offers `zip` for download as `name` through `link`. */
function offerZip(link: HTMLAnchorElement, zip: Uint8Array, name: string) {
  const previous = zipUrls.get(link);
  if (previous) URL.revokeObjectURL(previous);
  const href = URL.createObjectURL(
    new Blob([zip as Uint8Array<ArrayBuffer>], { type: 'application/zip' }),
  );
  zipUrls.set(link, href);
  link.href = href;
  link.download = name;
  link.textContent = `${name} (${(zip.length / 1024).toFixed(0)} KiB)`;
  link.hidden = false;
}

/**
 * Runs the export with runner-web (onnxruntime-web, wasm) in a worker of its own, off this
 * thread: the prompt greedy, and sampled (the temperature above, seed EXPORT_SEED) — an early
 * model's greedy text can be a run of its most frequent character, which says little.
 */
let exportRunner: Worker | undefined;
async function runExport(runnable: { model: Uint8Array; manifest: object; vocab: object }) {
  const prompt = samplePrompt.value;
  if (prompt.length === 0) {
    exportOutput.textContent = '(type a prompt above to run the export)';
    return 'not run';
  }
  exportRunner ??= new Worker(new URL('./worker/export-runner.worker.ts', import.meta.url), {
    type: 'module',
  });
  const runner = exportRunner;
  const temperature = Number(sampleTemperature.value) > 0 ? Number(sampleTemperature.value) : 0.8;
  const request: ExportRunRequest = {
    ...runnable,
    prompt,
    maxNewTokens: integerFrom(sampleTokens, 'tokens') ?? 200,
    temperature,
    seed: EXPORT_SEED,
  };
  const result = await new Promise<ExportRunResult>((resolve) => {
    runner.onmessage = ({ data }: MessageEvent<ExportRunResult>) => resolve(data);
    runner.onerror = (event) =>
      resolve({ ok: false, message: event.message || 'the export runner could not load' });
    runner.postMessage(request);
  });
  if (!result.ok) throw new Error(result.message);
  exportOutput.textContent = prompt + result.greedy;
  exportOutput.dataset['ms'] = result.ms.toFixed(0);
  exportSampled.textContent = `temperature ${temperature}, seed ${EXPORT_SEED}: ${prompt}${result.sampled}`;
  exportSampled.dataset['text'] = prompt + result.sampled;
  exportSampled.dataset['temperature'] = String(temperature);
  return result.device;
}
const EXPORT_SEED = 1337;
let nextSampleId = 1;
let pendingSample = 0;

worker.addEventListener('message', ({ data: event }: MessageEvent<WorkerEvent>) => {
  switch (event.type) {
    case 'status':
      state.state = event.state;
      state.log.push(`${event.state}: ${event.message}`);
      statusLine.textContent = event.message;
      // A run that could not start leaves the stored ones as they were: offer them again.
      if (event.state === 'failed' && state.run === undefined) send({ type: 'find-runs' });
      setButtons();
      break;
    case 'ready': {
      state.backend = event.backend;
      state.backendLine = describeBackend(event.backend);
      state.run = event.run;
      backendLine.textContent = state.backendLine;
      const { run } = event;
      runLine.textContent =
        `${run.source}: ${count(run.trainTokens)} train / ${count(run.valTokens)} val tokens, ` +
        `${run.tokenizer} tokenizer (vocab ${count(run.vocabSize)}); ` +
        `${(run.parameters / 1e6).toFixed(2)} M parameters (${run.nLayer} layers, ${run.nHead} heads, ` +
        `${run.nEmbd} wide, context ${run.blockSize}); batch ${run.batchSize}, ${count(run.maxIters)} iterations`;
      chart.reset(run.maxIters);
      setButtons();
      break;
    }
    case 'step': {
      state.iteration = event.iteration;
      state.steps.push({
        iteration: event.iteration,
        loss: event.loss,
        tokensPerSec: event.tokensPerSec,
        elapsedMs: event.elapsedMs,
      });
      chart.addStep(event.iteration, event.loss);
      iterationOut.textContent = `${count(event.iteration)} / ${count(event.maxIters)}`;
      lossOut.textContent = event.loss.toFixed(4);
      rateOut.textContent = `${count(Math.round(event.tokensPerSec))}`;
      const secondsPerStep = event.tokens / event.tokensPerSec;
      etaOut.textContent = duration((event.maxIters - event.iteration) * secondsPerStep);
      document.body.dataset['iteration'] = String(event.iteration);
      break;
    }
    case 'eval':
      state.evals.push(event);
      chart.addEval(event.iteration, event.valLoss);
      valLossOut.textContent = `${event.valLoss.toFixed(4)} (train ${event.trainLoss.toFixed(4)}) at ${count(event.iteration)}`;
      break;
    case 'checkpoint':
      state.checkpoints.push({ iteration: event.iteration, location: event.location });
      state.log.push(`checkpoint at ${event.iteration}: ${event.location}`);
      break;
    case 'zip': {
      state.zips.push({
        kind: event.kind,
        name: event.name,
        paths: [...event.paths],
        iteration: event.iteration,
      });
      if (event.kind === 'checkpoint-zip') {
        offerZip(checkpointLink, event.zip, event.name);
        exporting = false;
        document.body.dataset['export'] = 'done';
        setButtons();
        break;
      }
      offerZip(exportLink, event.zip, event.name);
      exportInfo.textContent = `iteration ${count(event.iteration)}: ${event.paths.length} files, built in ${event.ms.toFixed(0)} ms; running it with onnxruntime-web…`;
      exportOutput.textContent = '…';
      runExport(event.runnable!)
        .then(
          (device) => {
            exportInfo.textContent = `iteration ${count(event.iteration)}: ${event.paths.length} files; onnxruntime-web (${device}) wrote, greedy:`;
          },
          (error: unknown) => showError(`running the export failed: ${(error as Error).message}`),
        )
        .finally(() => {
          exporting = false;
          document.body.dataset['export'] = 'done';
          setButtons();
        });
      break;
    }
    case 'runs': {
      storedRun = event.runs.find((run) => run.iteration !== undefined);
      state.storedRuns = [...event.runs];
      if (state.state === 'idle' || state.state === 'failed') {
        // After a discard the list can be empty: nothing is offered then.
        storedRunBox.hidden = storedRun === undefined;
      }
      if (storedRun) {
        storedRunLine.textContent =
          `A run is stored in this browser: ${storedRun.source}, ${storedRun.settings.preset} preset, ` +
          `checkpoint at iteration ${count(storedRun.iteration!)} (${storedRun.savedAt.slice(0, 16).replace('T', ' ')} UTC).`;
        const allRuns = event.runs.reduce((sum, run) => sum + run.bytes, 0);
        storedRunSize.textContent =
          `It takes ${bytes(storedRun.bytes)} of this browser's storage; ` +
          `${event.runs.length === 1 ? 'it is the only stored run' : `all ${event.runs.length} stored runs take ${bytes(allRuns)}`}` +
          (event.storage
            ? ` (this site uses ${bytes(event.storage.usage)} of its ${bytes(event.storage.quota)} quota).`
            : '.');
      }
      if (discarding) {
        discarding = false;
        document.body.dataset['discard'] = 'done';
      }
      document.body.dataset['runsFound'] = String(event.runs.length);
      setButtons();
      break;
    }
    case 'sample':
      if (event.id !== pendingSample) break;
      sampling = false;
      sampleOutput.textContent = samplePrompt.value + event.text;
      sampleOutput.dataset['newTokens'] = String(event.newTokens);
      sampleOutput.dataset['ms'] = event.ms.toFixed(0);
      document.body.dataset['sample'] = 'done';
      setButtons();
      break;
    case 'error':
      if (event.during === 'sample') {
        if (event.id !== pendingSample) break;
        sampling = false;
        document.body.dataset['sample'] = 'done';
        setButtons();
      }
      if (event.during === 'discard') {
        // The worker posts the runs left after this: the offer stays as it is until then.
        discarding = false;
        document.body.dataset['discard'] = 'done';
        setButtons();
      }
      if (event.during === 'export') {
        exporting = false;
        document.body.dataset['export'] = 'done';
        setButtons();
      }
      showError(`${ERROR_PREFIX[event.during]}: ${event.message}`);
      break;
  }
});
worker.addEventListener('error', (event) => {
  showError(`the training worker failed: ${event.message || 'it could not load'}`);
  state.state = 'failed';
  setButtons();
});

const ERROR_PREFIX = {
  start: 'could not start',
  train: 'training stopped',
  sample: 'sampling failed',
  export: 'export failed',
  discard: 'could not discard the stored run',
} as const;

let nextZipId = 1;
for (const [button, type] of [
  [exportButton, 'export'],
  [checkpointButton, 'checkpoint-zip'],
] as const) {
  button.addEventListener('click', () => {
    errorBox.textContent = '';
    exporting = true;
    document.body.dataset['export'] = 'running';
    setButtons();
    send({ type, id: nextZipId++ });
  });
}

sampleButton.addEventListener('click', () => {
  let request: PageMessage;
  try {
    request = {
      type: 'sample',
      id: nextSampleId++,
      prompt: samplePrompt.value,
      maxNewTokens: integerFrom(sampleTokens, 'tokens') ?? 200,
      temperature: Number(sampleTemperature.value),
    };
    if (!(request.temperature >= 0)) throw new Error('the temperature must be 0 or more');
  } catch (error) {
    showError((error as Error).message);
    return;
  }
  pendingSample = request.id;
  sampling = true;
  document.body.dataset['sample'] = 'running';
  sampleOutput.textContent = '…';
  setButtons();
  send(request);
});

// The main thread's health, shown while the page is open.
setInterval(() => {
  const { longestTaskMs, maxTimerLagMs, longTasksSupported } = state.responsiveness;
  longestTaskOut.textContent = longTasksSupported
    ? `${longestTaskMs > 0 ? `${longestTaskMs.toFixed(0)} ms` : 'none ≥ 50 ms'} (timer lag ≤ ${maxTimerLagMs.toFixed(0)} ms)`
    : `timer lag ≤ ${maxTimerLagMs.toFixed(0)} ms (this browser reports no long tasks)`;
}, 500);

showTextInfo();
setButtons();
