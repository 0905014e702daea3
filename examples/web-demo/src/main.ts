// The demo page: loads the exported model (device from ?device=webgpu|wasm, default auto),
// streams generated text, shows tokens/s and the device, stops on the Stop button.
import { loadModel, type WebDevice } from '@minigpt/runner-web';

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
// ?threads=N sets the wasm thread count (default: onnxruntime-web's choice).
const threads = Number(query.get('threads') ?? NaN);

try {
  const model = await loadModel(new URL(`${modelDir}/`, location.href).href, {
    device,
    ...(Number.isInteger(threads) && threads > 0 ? { threads } : {}),
  });
  const where = `${model.device}${model.device === 'wasm' ? ` (${model.threads} thread${model.threads > 1 ? 's' : ''})` : ''}`;
  status.textContent = `model ready: ${model.manifest.model.nLayer} layers, ${model.manifest.model.nEmbd} wide, on ${where}`;
  document.body.dataset['device'] = model.device;
  document.body.dataset['threads'] = String(model.threads);
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
      const generation = model.generate($<HTMLTextAreaElement>('prompt').value, {
        maxNewTokens: Number($<HTMLInputElement>('max-tokens').value),
        temperature: Number($<HTMLInputElement>('temperature').value),
        ...(topK > 0 ? { topK } : {}),
        signal: controller.signal,
      });
      for await (const piece of generation) output.textContent += piece;
      const { newTokens, tokensPerSec, firstTokenMs, stopReason } = generation.stats;
      stats.textContent = `${newTokens} tokens, ${tokensPerSec.toFixed(0)} tokens/s, first token ${firstTokenMs.toFixed(1)} ms, on ${where} (${stopReason})`;
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
  status.textContent = 'the model could not be loaded';
  errorBox.textContent = String((error as Error).message ?? error);
  document.body.dataset['state'] = 'error';
}
