/**
 * Graceful shutdown of the long-running commands (worker, controller): the first SIGTERM
 * or SIGINT starts it (a second one, with no handler left, ends the process at once), and
 * it is bounded, so a pod never waits for the kubelet's SIGKILL because of a stuck call.
 */

/** Resolves with the first SIGTERM or SIGINT. */
export function whenSignalled(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', on);
      process.off('SIGINT', on);
      resolve(signal);
    };
    process.once('SIGTERM', on);
    process.once('SIGINT', on);
  });
}

/** Ends the process with code 1 if it is still running `ms` from now (the shutdown got stuck). */
export function exitWithin(ms: number, log: (message: string) => void): void {
  setTimeout(() => {
    log(`shutdown did not finish within ${Math.round(ms / 1000)}s; exiting`);
    process.exit(1);
  }, ms).unref();
}

/**
 * The shutdown is done: exit even if a keep-alive socket or a library timer would keep the
 * event loop going (after a moment, for logs to flush).
 */
export function exitWhenDone(): void {
  setTimeout(() => process.exit(), 500).unref();
}
