// A terminal progress bar for long byte-based jobs; silent when stderr is not a terminal
// (logs and pipes get the final summary only).
import cliProgress from 'cli-progress';

export interface ByteProgress {
  update(phase: string, bytesDone: number, bytesTotal: number): void;
  stop(): void;
}

export function createByteProgress(enabled: boolean): ByteProgress {
  if (!enabled || !process.stderr.isTTY) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    {
      format: '{phase} |{bar}| {percentage}% | {doneMB}/{totalMB} MB | ETA {eta_formatted}',
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  let currentPhase = '';
  return {
    update(phase, bytesDone, bytesTotal) {
      const payload = {
        phase: phase.padEnd(15),
        doneMB: (bytesDone / 1e6).toFixed(1),
        totalMB: (bytesTotal / 1e6).toFixed(1),
      };
      if (!started || phase !== currentPhase) {
        if (started) bar.stop();
        bar.start(bytesTotal, bytesDone, payload);
        started = true;
        currentPhase = phase;
      } else {
        bar.update(bytesDone, payload);
      }
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
