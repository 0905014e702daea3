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

/** "load average 1.07, 1.52, 2.64" (1, 5 and 15 minutes). */
export declare function loadAverage(): string;
