// Runs an ONNX export with @minigpt/runner-web (onnxruntime-web, wasm) off the page's main
// thread: loading the session (compiling onnxruntime's wasm) and generating take a second or
// more, which on the main thread would freeze the page. One request at a time: the page
// posts the export's files and what to generate, and gets the texts back.
import { loadModel, type WebLoadedModel } from '@minigpt/runner-web';

export interface ExportRunRequest {
  readonly model: Uint8Array;
  readonly manifest: object;
  readonly vocab: object;
  readonly prompt: string;
  readonly maxNewTokens: number;
  readonly temperature: number;
  readonly seed: number;
}

export type ExportRunResult =
  | {
      readonly ok: true;
      readonly device: string;
      readonly greedy: string;
      readonly sampled: string;
      readonly ms: number;
    }
  | { readonly ok: false; readonly message: string };

interface WorkerScope {
  postMessage(message: ExportRunResult): void;
  onmessage: ((event: MessageEvent<ExportRunRequest>) => void) | null;
}
const scope = globalThis as unknown as WorkerScope;
let loaded: WebLoadedModel | undefined;

scope.onmessage = ({ data: request }) => {
  void (async () => {
    try {
      await loaded?.dispose();
      loaded = await loadModel(
        { model: request.model, manifest: request.manifest, vocab: request.vocab },
        { device: 'wasm' },
      );
      const started = performance.now();
      const { prompt, maxNewTokens } = request;
      const greedy = await loaded.generate(prompt, { maxNewTokens, temperature: 0 }).text();
      const sampled = await loaded
        .generate(prompt, { maxNewTokens, temperature: request.temperature, seed: request.seed })
        .text();
      scope.postMessage({
        ok: true,
        device: loaded.device,
        greedy,
        sampled,
        ms: performance.now() - started,
      });
    } catch (error) {
      scope.postMessage({ ok: false, message: (error as Error).message ?? String(error) });
    }
  })();
};
