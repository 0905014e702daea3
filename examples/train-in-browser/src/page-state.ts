// What the page has seen, kept on `window.trainInBrowser` for the e2e test and the bench
// (reading numbers back from formatted text would test the formatting, not the training).
import type { BackendReport, EvalEvent, RunReport, StoredRun, TrainingState } from './protocol.js';
import type { Responsiveness } from './responsiveness.js';

export interface PageState {
  state: TrainingState;
  iteration: number;
  backend: BackendReport | undefined;
  /** The backend line as the page shows it. */
  backendLine: string;
  run: RunReport | undefined;
  steps: Array<{ iteration: number; loss: number; tokensPerSec: number; elapsedMs: number }>;
  evals: EvalEvent[];
  /** Checkpoints the trainer wrote to OPFS in this run. */
  checkpoints: Array<{ iteration: number; location: string }>;
  /** The zips the worker built (export, checkpoint). */
  zips: Array<{
    kind: 'export' | 'checkpoint-zip';
    name: string;
    paths: string[];
    iteration: number;
  }>;
  /** Runs found in OPFS when the page loaded. */
  storedRuns: StoredRun[];
  /** Status messages in order (the worker's and the page's), for a failing test's message. */
  log: string[];
  errors: string[];
  readonly responsiveness: Responsiveness;
}

declare global {
  interface Window {
    trainInBrowser: PageState;
  }
}
