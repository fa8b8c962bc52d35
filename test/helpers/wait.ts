/**
 * Polls until `check` returns a value that `ok` accepts, or fails with the last value seen. The timeout
 * holds even if a check never answers (a query no worker picks up has no deadline of its own).
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T>,
  ok: (value: T) => boolean,
  timeoutMs = 30_000,
  everyMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastError: unknown;
  for (;;) {
    try {
      last = await withinMs(Math.max(deadline - Date.now(), everyMs), check());
      if (ok(last)) return last;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const cause = (lastError as { cause?: unknown } | undefined)?.cause;
      const seen = last === undefined ? `error: ${String(lastError)}${cause ? ` (${String(cause)})` : ''}` : JSON.stringify(last, null, 2);
      throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}; last seen: ${seen}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** `promise`, or a rejection with `message` once `ms` have passed without an answer. */
export function withinMs<T>(ms: number, promise: Promise<T>, message = `no answer within ${ms} ms`): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
