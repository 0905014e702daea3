// The live loss chart, drawn by hand in SVG: two lines (the train loss of each step, the
// validation loss of each evaluation) on shared axes. A chart library would be the page's
// largest dependency for two polylines; SVG stays sharp at any size, and the test can read
// the drawn points from the DOM. Redraws are batched to one per animation frame, so a nano
// run's hundreds of steps a second cost the main thread one small draw per frame.
const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 640;
const HEIGHT = 240;
const MARGIN = { left: 44, right: 12, top: 12, bottom: 26 };
/** Most points drawn for the step line; more steps are averaged in buckets. */
const MAX_STEP_POINTS = 400;

interface Point {
  readonly iteration: number;
  readonly loss: number;
}

export class LossChart {
  private readonly steps: Point[] = [];
  private readonly evals: Point[] = [];
  private maxIters = 1;
  private frame: number | undefined;
  private readonly trainLine: SVGPolylineElement;
  private readonly valLine: SVGPolylineElement;
  private readonly valDots: SVGGElement;
  private readonly axes: SVGGElement;

  constructor(private readonly svg: SVGSVGElement) {
    svg.setAttribute('viewBox', `0 0 ${WIDTH} ${HEIGHT}`);
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', 'training and validation loss by iteration');
    this.axes = element('g', { class: 'axes' });
    this.trainLine = element('polyline', { class: 'train', 'data-testid': 'train-line' });
    this.valLine = element('polyline', { class: 'val', 'data-testid': 'val-line' });
    this.valDots = element('g', { class: 'val-dots' });
    svg.replaceChildren(this.axes, this.trainLine, this.valLine, this.valDots, legend());
  }

  reset(maxIters: number): void {
    this.steps.length = 0;
    this.evals.length = 0;
    this.maxIters = Math.max(1, maxIters);
    this.schedule();
  }

  addStep(iteration: number, loss: number): void {
    this.steps.push({ iteration, loss });
    this.schedule();
  }

  addEval(iteration: number, valLoss: number): void {
    this.evals.push({ iteration, loss: valLoss });
    this.schedule();
  }

  private schedule(): void {
    this.frame ??= requestAnimationFrame(() => {
      this.frame = undefined;
      this.draw();
    });
  }

  private draw(): void {
    const steps = bucketed(this.steps, MAX_STEP_POINTS);
    const losses = [...steps, ...this.evals].map((point) => point.loss).filter(Number.isFinite);
    const top = losses.length > 0 ? Math.max(...losses) : 1;
    const bottom = losses.length > 0 ? Math.min(...losses) : 0;
    const span = Math.max(top - bottom, 0.1);
    const yMax = top + span * 0.05;
    const yMin = Math.max(0, bottom - span * 0.05);
    const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
    const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
    // The x axis grows with the run (a run of 100,000 iterations would otherwise draw its
    // first minutes as a vertical line), up to the run's length.
    const latest = Math.max(this.steps.at(-1)?.iteration ?? 0, this.evals.at(-1)?.iteration ?? 0);
    const xMax = Math.min(this.maxIters, Math.max(10, Math.ceil(latest * 1.1)));
    const x = (iteration: number) => MARGIN.left + (iteration / xMax) * plotWidth;
    const y = (loss: number) => MARGIN.top + ((yMax - loss) / (yMax - yMin)) * plotHeight;
    const pointsOf = (points: readonly Point[]) =>
      points
        .filter((point) => Number.isFinite(point.loss))
        .map((point) => `${x(point.iteration).toFixed(1)},${y(point.loss).toFixed(1)}`)
        .join(' ');
    this.trainLine.setAttribute('points', pointsOf(steps));
    this.trainLine.dataset['points'] = String(this.steps.length);
    this.valLine.setAttribute('points', pointsOf(this.evals));
    this.valLine.dataset['points'] = String(this.evals.length);
    this.valDots.replaceChildren(
      ...this.evals
        .filter((point) => Number.isFinite(point.loss))
        .map((point) =>
          element('circle', {
            cx: x(point.iteration).toFixed(1),
            cy: y(point.loss).toFixed(1),
            r: '2.5',
          }),
        ),
    );
    // Axes: a frame, the loss range on the left, the iterations below.
    this.axes.replaceChildren(
      element('rect', { x: MARGIN.left, y: MARGIN.top, width: plotWidth, height: plotHeight }),
      ...[yMax, (yMax + yMin) / 2, yMin].map((loss) =>
        label(loss.toFixed(2), MARGIN.left - 4, y(loss) + 4, 'end'),
      ),
      label('0', MARGIN.left, HEIGHT - 8, 'start'),
      label(
        `${xMax.toLocaleString('en-US')} of ${this.maxIters.toLocaleString('en-US')} iterations`,
        WIDTH - MARGIN.right,
        HEIGHT - 8,
        'end',
      ),
    );
  }
}

/** At most `limit` points: consecutive steps averaged in equal buckets. */
function bucketed(points: readonly Point[], limit: number): Point[] {
  if (points.length <= limit) return [...points];
  const size = Math.ceil(points.length / limit);
  const result: Point[] = [];
  for (let start = 0; start < points.length; start += size) {
    const bucket = points.slice(start, start + size);
    const loss = bucket.reduce((sum, point) => sum + point.loss, 0) / bucket.length;
    result.push({ iteration: bucket[bucket.length - 1]!.iteration, loss });
  }
  return result;
}

function element<K extends keyof SVGElementTagNameMap>(
  name: K,
  attributes: Record<string, string | number>,
): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  return node;
}

function label(text: string, x: number, y: number, anchor: 'start' | 'end'): SVGTextElement {
  const node = element('text', { x, y, 'text-anchor': anchor });
  node.textContent = text;
  return node;
}

function legend(): SVGGElement {
  const group = element('g', { class: 'legend' });
  const entries = [
    ['train', 'train (each step)'],
    ['val', 'validation (each evaluation)'],
  ] as const;
  entries.forEach(([kind, text], index) => {
    const left = WIDTH - MARGIN.right - 190;
    const top = MARGIN.top + 14 + index * 16;
    group.append(
      element('line', { class: kind, x1: left, y1: top - 4, x2: left + 18, y2: top - 4 }),
      label(text, left + 24, top, 'start'),
    );
  });
  return group;
}
