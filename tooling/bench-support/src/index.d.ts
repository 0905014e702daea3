/**
 * Runs `body` while a child process keeps one core busy, and kills the child after, whether
 * `body` returns or throws. `body` starts once the child's Node start-up is over.
 */
export declare function withBusyCore<T>(body: () => Promise<T> | T): Promise<T>;
