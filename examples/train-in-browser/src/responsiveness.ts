// How responsive the main thread stays while the worker trains: the longest task the browser
// reports (PerformanceObserver 'longtask': every task of 50 ms or more), and the most a 20 ms
// timer ran late (which also sees delays under 50 ms). Measured from `start()`, so loading
// the page and its bundle does not count.
const PROBE_MS = 20;

export interface Responsiveness {
  /** The longest main-thread task since start() (0: none reached 50 ms). */
  readonly longestTaskMs: number;
  readonly longTasks: number;
  /** The most the probe timer fired late since start(). */
  readonly maxTimerLagMs: number;
  /** Whether this browser reports long tasks at all. */
  readonly longTasksSupported: boolean;
}

export class ResponsivenessMonitor {
  private longestTaskMs = 0;
  private longTasks = 0;
  private maxTimerLagMs = 0;
  private probe: ReturnType<typeof setInterval> | undefined;
  readonly longTasksSupported =
    typeof PerformanceObserver !== 'undefined' &&
    PerformanceObserver.supportedEntryTypes.includes('longtask');

  constructor() {
    if (this.longTasksSupported) {
      new PerformanceObserver((list) => {
        if (this.probe === undefined) return;
        for (const entry of list.getEntries()) {
          this.longTasks++;
          this.longestTaskMs = Math.max(this.longestTaskMs, entry.duration);
        }
      }).observe({ type: 'longtask' });
    }
  }

  /** Starts (or restarts) measuring. */
  start(): void {
    this.longestTaskMs = 0;
    this.longTasks = 0;
    this.maxTimerLagMs = 0;
    if (this.probe !== undefined) clearInterval(this.probe);
    let expected = performance.now() + PROBE_MS;
    this.probe = setInterval(() => {
      const now = performance.now();
      this.maxTimerLagMs = Math.max(this.maxTimerLagMs, now - expected);
      expected = now + PROBE_MS;
    }, PROBE_MS);
  }

  get snapshot(): Responsiveness {
    return {
      longestTaskMs: this.longestTaskMs,
      longTasks: this.longTasks,
      maxTimerLagMs: this.maxTimerLagMs,
      longTasksSupported: this.longTasksSupported,
    };
  }
}
