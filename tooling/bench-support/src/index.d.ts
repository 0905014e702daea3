/**
 * Runs `body` while a child process keeps one core busy, and kills the child after, whether
 * `body` returns or throws. `body` starts once the child's Node start-up is over.
 */
export declare function withBusyCore<T>(body: () => Promise<T> | T): Promise<T>;

/** The median of `values` (the mean of the middle two when their count is even). */
export declare function median(values: readonly number[]): number;

/** "median (min – max)" of `values`, each written with `format` decimals or by `format`. */
export declare function medianRange(
  values: readonly number[],
  format?: number | ((value: number) => string),
): string;

/**
 * Ratios taken within rounds against a goal of at least `target`: "1.37 (0.84 – 2.05)× [goal
 * ≥ 2×: MISSED at the median, 1 of 15 rounds]".
 */
export declare function ratioAgainstGoal(ratios: readonly number[], target: number): string;

/**
 * Whether a goal holds for the median of `values` and in how many rounds: "met at the median,
 * 4 of 5 rounds".
 */
export declare function goalVerdict(
  values: readonly number[],
  isMet: (value: number) => boolean,
): string;

/** "2026-12-02 16:02 UTC": `date` (default: now) to the minute, as bench headers print it. */
export declare function utcMinute(date?: Date): string;

/** "load average 1.07, 1.52, 2.64" (1, 5 and 15 minutes). */
export declare function loadAverage(): string;

/**
 * The CPU as a bench's header names it: the model name, with the family and model numbers and
 * the widest vector set (AVX-512, AVX2, NEON) from `cpuinfo` (/proc/cpuinfo's text) where it
 * has them.
 */
export declare function describeCpu(modelName: string, cpuinfo?: string): string;

/** describeCpu of this machine: "AMD EPYC (family 26 model 2, AVX-512)". */
export declare function cpuName(): string;
