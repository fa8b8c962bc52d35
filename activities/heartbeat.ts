/**
 * Long activities heartbeat on a timer, so a worker that dies mid-fetch is noticed
 * after the heartbeat timeout (seconds), not after the whole start-to-close timeout.
 */
import { Context } from '@temporalio/activity';

export const HEARTBEAT_EVERY_MS = 2_000;

export function withHeartbeat<T extends Record<string, (...args: never[]) => Promise<unknown>>>(fns: T, names: Array<keyof T>): T {
  const out: Record<string, unknown> = { ...fns };
  for (const name of names) {
    const fn = fns[name]!;
    out[name as string] = async (...args: never[]) => {
      const ctx = Context.current();
      // A local activity has no heartbeat (it lives inside a workflow task): nothing to send.
      if (ctx.info.isLocal) return await fn(...args);
      const timer = setInterval(() => ctx.heartbeat(), HEARTBEAT_EVERY_MS);
      try {
        return await fn(...args);
      } finally {
        clearInterval(timer);
      }
    };
  }
  return out as T;
}

/** One heartbeat with progress details, from a remote activity; a local one has none to send (the core would log a warning). */
export function beat(detail?: unknown): void {
  const ctx = Context.current();
  if (!ctx.info.isLocal) ctx.heartbeat(detail);
}
