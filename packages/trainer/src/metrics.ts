// The training log in the run's storage: metrics.jsonl (one JSON object per logged step or
// evaluation) and loss.svg, a loss-curve picture redrawn from it.
import type { RunLock, RunStorage } from '@minigpt/checkpoint';

export const METRICS_FILE = 'metrics.jsonl';
export const LOSS_CURVE_FILE = 'loss.svg';

export interface StepRecord {
  readonly iter: number;
  readonly loss: number;
  readonly lr: number;
  readonly msPerIter: number;
  readonly tokensPerSec: number;
}

export interface EvalRecord {
  readonly iter: number;
  readonly trainLoss: number;
  readonly valLoss: number;
}

export type MetricsRecord = StepRecord | EvalRecord;

export async function appendMetrics(
  storage: RunStorage,
  record: MetricsRecord,
  lock: RunLock,
): Promise<void> {
  await storage.appendFile(METRICS_FILE, `${JSON.stringify(record)}\n`, lock);
}

/** A seed-size run logs ~100 bytes per step; this is room for tens of millions of steps. */
const METRICS_FILE_LIMIT = 1024 ** 3;

/** The records of a run's metrics.jsonl; [] when it has none (or it cannot be read). */
export async function readMetrics(storage: RunStorage): Promise<MetricsRecord[]> {
  let bytes: Uint8Array | undefined;
  try {
    bytes = await storage.readFile(METRICS_FILE, METRICS_FILE_LIMIT);
  } catch {
    return [];
  }
  if (!bytes) return [];
  // A killed run may have left a partial last line, and the file may have been edited:
  // keep only whole records of the two known shapes.
  return new TextDecoder()
    .decode(bytes)
    .split('\n')
    .filter((line) => line.trim().length > 0)
    .flatMap((line) => {
      try {
        const record = JSON.parse(line) as unknown;
        return isMetricsRecord(record) ? [record] : [];
      } catch {
        return [];
      }
    });
}

function isMetricsRecord(value: unknown): value is MetricsRecord {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  const finite = (key: string) => typeof record[key] === 'number' && Number.isFinite(record[key]);
  if (!Number.isSafeInteger(record['iter']) || (record['iter'] as number) < 0) return false;
  return (
    ['loss', 'lr', 'msPerIter', 'tokensPerSec'].every(finite) ||
    ['trainLoss', 'valLoss'].every(finite)
  );
}

/** On resume: drop records past the checkpoint's iteration (the killed run's extra steps). */
export async function truncateMetrics(
  storage: RunStorage,
  lastIteration: number,
  lock: RunLock,
): Promise<void> {
  const kept = (await readMetrics(storage)).filter((record) => record.iter <= lastIteration);
  await storage.writeFile(
    METRICS_FILE,
    kept.map((record) => `${JSON.stringify(record)}\n`).join(''),
    lock,
  );
}

/** An SVG line chart of train loss (per logged step) and train/val loss (per evaluation). */
export function lossCurveSvg(
  records: readonly MetricsRecord[],
  title = 'minigpt training loss',
): string {
  const width = 720;
  const height = 400;
  const margin = { left: 56, right: 16, top: 32, bottom: 40 };
  const steps = records.filter((r): r is StepRecord => 'loss' in r);
  const evals = records.filter((r): r is EvalRecord => 'valLoss' in r);
  const values = [
    ...steps.map((r) => r.loss),
    ...evals.flatMap((r) => [r.trainLoss, r.valLoss]),
  ].filter(Number.isFinite);
  const iterations = records.map((r) => r.iter);
  const maxIter = Math.max(1, ...iterations);
  const low = values.length > 0 ? Math.min(...values) : 0;
  const high = values.length > 0 ? Math.max(...values) : 1;
  const span = high - low || 1;
  const x = (iter: number) => margin.left + (iter / maxIter) * (width - margin.left - margin.right);
  const y = (loss: number) =>
    margin.top + (1 - (loss - low) / span) * (height - margin.top - margin.bottom);
  const line = (points: Array<[number, number]>, color: string, label: string) =>
    points.length === 0
      ? ''
      : `<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${points
          .map(([i, l]) => `${x(i).toFixed(1)},${y(l).toFixed(1)}`)
          .join(' ')}"><title>${label}</title></polyline>`;
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => low + f * span);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14">${escapeXml(title)}</text>`,
    ...ticks.map(
      (t) =>
        `<line x1="${margin.left}" x2="${width - margin.right}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="#eee"/>` +
        `<text x="${margin.left - 6}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end">${t.toFixed(2)}</text>`,
    ),
    `<text x="${width / 2}" y="${height - 8}" text-anchor="middle">iteration (0 … ${maxIter})</text>`,
    line(
      steps.map((r) => [r.iter, r.loss]),
      '#9ab',
      'train loss (logged steps)',
    ),
    line(
      evals.map((r) => [r.iter, r.trainLoss]),
      '#1f77b4',
      'train loss (eval)',
    ),
    line(
      evals.map((r) => [r.iter, r.valLoss]),
      '#d62728',
      'val loss (eval)',
    ),
    `<text x="${width - margin.right - 150}" y="${margin.top + 12}" fill="#1f77b4">— train (eval)</text>`,
    `<text x="${width - margin.right - 150}" y="${margin.top + 28}" fill="#d62728">— val (eval)</text>`,
    `<text x="${width - margin.right - 150}" y="${margin.top + 44}" fill="#9ab">— train (steps)</text>`,
    '</svg>',
    '',
  ].join('\n');
}

function escapeXml(text: string): string {
  return text.replace(
    /[<>&"]/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!,
  );
}
