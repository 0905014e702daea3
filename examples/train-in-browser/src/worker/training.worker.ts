// The training worker: takes the page's messages (start, pause, resume, sample), runs the
// engine one event at a time, and posts each event back. All TensorFlow.js work happens here,
// so the page's main thread only draws. Between two events it returns to its event loop,
// which is when pause, resume and sample messages arrive; a sample runs between two steps,
// never during one (both go through `exclusive`).
import type {
  ContinueCheckpointMessage,
  DownloadRequest,
  PageMessage,
  ResumeRunMessage,
  SampleRequest,
  StartMessage,
  TrainingState,
  WorkerEvent,
} from '../protocol.js';
import {
  discardStoredRun,
  findStoredRuns,
  importCheckpoint,
  readRunRecord,
  saveRunRecord,
  startEngine,
  storageEstimate,
  type Engine,
} from './engine.js';

/** The parts of DedicatedWorkerGlobalScope used here (the tsconfig has DOM, not WebWorker). */
interface WorkerScope {
  postMessage(message: WorkerEvent, transfer?: Transferable[]): void;
  onmessage: ((event: MessageEvent<PageMessage>) => void) | null;
}
const scope = globalThis as unknown as WorkerScope;
const post = (event: WorkerEvent) => scope.postMessage(event);

let engine: Engine | undefined;
let state: TrainingState = 'idle';
let pauseRequested = false;
let resumeTraining: (() => void) | undefined;

/** Runs tasks one after another: a sample waits for the step in progress. */
let queue: Promise<unknown> = Promise.resolve();
function exclusive<T>(task: () => Promise<T>): Promise<T> {
  const result = queue.then(task);
  queue = result.catch(() => undefined);
  return result;
}

/**
 * Lets queued messages in. A MessageChannel message is a task of its own with no minimum
 * delay (setTimeout's is clamped to 4 ms after a few nested calls, a lot next to a nano step).
 */
const channel = new MessageChannel();
const waiting: Array<() => void> = [];
channel.port1.onmessage = () => waiting.shift()?.();
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => {
    waiting.push(resolve);
    channel.port2.postMessage(null);
  });
}

function setState(next: TrainingState, message: string) {
  state = next;
  post({ type: 'status', state, iteration: engine?.iteration ?? 0, message });
}

function errorEvent(
  during: 'start' | 'train' | 'sample' | 'export' | 'discard',
  error: unknown,
  id?: number,
): WorkerEvent {
  const { name, message } =
    error instanceof Error ? error : { name: 'Error', message: String(error) };
  return { type: 'error', during, name, message, ...(id !== undefined ? { id } : {}) };
}

async function start(message: StartMessage | ResumeRunMessage | ContinueCheckpointMessage) {
  if (state !== 'idle' && state !== 'done' && state !== 'failed') {
    post(
      errorEvent('start', new Error(`a run is already ${state}; reload the page to start another`)),
    );
    return;
  }
  engine?.dispose();
  engine = undefined;
  pauseRequested = false;
  setState('preparing', 'preparing the data and the backend');
  try {
    if (message.type === 'start') {
      engine = await startEngine(message, { runId: message.runId });
      await saveRunRecord(message);
    } else if (message.type === 'continue-checkpoint') {
      const resumed = await importCheckpoint(message);
      engine = await startEngine(resumed, { runId: message.runId, resume: true });
      await saveRunRecord(resumed);
    } else {
      const stored = await readRunRecord(message.runId);
      if (!stored) throw new Error(`no stored run "${message.runId}" in this browser`);
      const resumed: StartMessage = {
        ...stored,
        config: { ...stored.config, ...message.config },
        ...(message.backend ? { backend: message.backend } : {}),
        ...(message.wasmThreads !== undefined ? { wasmThreads: message.wasmThreads } : {}),
      };
      engine = await startEngine(resumed, { runId: message.runId, resume: true });
    }
  } catch (error) {
    post(errorEvent('start', error));
    setState('failed', 'could not start');
    return;
  }
  post({ type: 'ready', backend: engine.backend, run: engine.run });
  setState('training', 'training');
  await train(engine);
}

/** Wall time of the last steps, for tokens/s: one slow step does not swing the figure. */
const RATE_WINDOW = 20;

async function train(current: Engine) {
  const events = current.events();
  let elapsedMs = 0;
  const recent: Array<{ tokens: number; ms: number }> = [];
  let last = performance.now();
  try {
    for (;;) {
      if (pauseRequested) {
        setState('paused', `paused at iteration ${current.iteration}`);
        await new Promise<void>((resolve) => (resumeTraining = resolve));
        resumeTraining = undefined;
        setState('training', 'training');
        last = performance.now();
      }
      const next = await exclusive(() => events.next());
      if (next.done) break;
      const now = performance.now();
      const ms = now - last;
      last = now;
      elapsedMs += ms;
      const event = next.value;
      if (event.type === 'step') {
        recent.push({ tokens: event.tokens, ms });
        if (recent.length > RATE_WINDOW) recent.shift();
        const windowMs = recent.reduce((sum, entry) => sum + entry.ms, 0);
        const windowTokens = recent.reduce((sum, entry) => sum + entry.tokens, 0);
        post({
          ...event,
          maxIters: current.run.maxIters,
          elapsedMs,
          tokensPerSec: windowMs > 0 ? (windowTokens * 1000) / windowMs : 0,
        });
      } else {
        post(event);
      }
      await yieldToEventLoop();
      // Time spent with the event loop (messages, samples) counts as training time too:
      // it is what a user waits for. Only pauses are left out.
    }
    setState('done', `done: ${current.iteration} iterations`);
  } catch (error) {
    post(errorEvent('train', error));
    setState('failed', `stopped at iteration ${current.iteration}`);
  }
}

async function sample(request: SampleRequest) {
  const current = engine;
  if (!current) {
    post(
      errorEvent(
        'sample',
        new Error('nothing to sample from yet: start training first'),
        request.id,
      ),
    );
    return;
  }
  try {
    const started = performance.now();
    const { text, newTokens } = await exclusive(() => current.sample(request));
    post({ type: 'sample', id: request.id, text, newTokens, ms: performance.now() - started });
  } catch (error) {
    post(errorEvent('sample', error, request.id));
  }
}

/** The export or the checkpoint, zipped between two steps, sent to the page for download. */
async function download(request: DownloadRequest) {
  const current = engine;
  if (!current) {
    post(
      errorEvent('export', new Error('nothing to export yet: start training first'), request.id),
    );
    return;
  }
  try {
    const started = performance.now();
    const result = await exclusive(() =>
      request.type === 'export'
        ? current.exportZip()
        : // A run that failed (a NaN loss, a full disk) has weights no checkpoint should
          // replace a good one with: its newest saved checkpoint is zipped as it is.
          current.checkpointZip({ saveCurrent: state !== 'failed' }),
    );
    scope.postMessage(
      {
        type: 'zip',
        id: request.id,
        kind: request.type,
        ...result,
        ms: performance.now() - started,
      },
      [result.zip.buffer as ArrayBuffer],
    );
  } catch (error) {
    post(errorEvent('export', error, request.id));
  }
}

/** The stored runs and what the site takes in storage, for the page to offer. */
async function postStoredRuns(): Promise<void> {
  const runs = await findStoredRuns();
  const storage = await storageEstimate();
  post({ type: 'runs', runs, ...(storage ? { storage } : {}) });
}

scope.onmessage = ({ data: message }) => {
  switch (message.type) {
    case 'start':
    case 'resume-run':
    case 'continue-checkpoint':
      void start(message);
      break;
    case 'find-runs':
      postStoredRuns().catch((error: unknown) => post(errorEvent('start', error)));
      break;
    case 'discard-run':
      // engine?.runId: the run this worker trains (or trained: its trainer holds the lock
      // until the next start) is refused here, one in another tab by its lock.
      discardStoredRun(message.runId, engine?.runId)
        .then(postStoredRuns)
        .catch((error: unknown) => {
          post(errorEvent('discard', error));
          // What is stored now, whatever failed: the page offers it again.
          return postStoredRuns();
        })
        .catch((error: unknown) => post(errorEvent('start', error)));
      break;
    case 'pause':
      if (state === 'training') pauseRequested = true;
      break;
    case 'resume':
      pauseRequested = false;
      resumeTraining?.();
      break;
    case 'sample':
      void sample(message);
      break;
    case 'export':
    case 'checkpoint-zip':
      void download(message);
      break;
  }
};
