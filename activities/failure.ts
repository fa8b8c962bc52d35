/**
 * Activities throw typed errors (src/errors.ts); Temporal needs ApplicationFailures.
 * The failure `type` is the condition reason; non-retryable errors stop the retry
 * loop at once. Messages are redacted, as they land in workflow history.
 */
import { ApplicationFailure } from '@temporalio/common';
import { redactUrl } from '../src/api/spec-rules.js';
import { ArenaSourceError } from '../src/errors.js';

export function toFailure(err: unknown): unknown {
  if (err instanceof ApplicationFailure) return err;
  if (err instanceof ArenaSourceError) {
    return ApplicationFailure.create({
      type: err.reason,
      message: redactUrl(err.message),
      nonRetryable: !err.retryable,
    });
  }
  // Unknown errors are retried (bounded by the retry policy) and reported as FetchFailed.
  const message = err instanceof Error ? err.message : String(err);
  return ApplicationFailure.create({ type: 'FetchFailed', message: redactUrl(message), nonRetryable: false });
}

/** Wraps each function so every thrown error is converted. */
export function withFailures<T extends Record<string, (...args: never[]) => Promise<unknown>>>(fns: T): T {
  const out: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(fns)) {
    out[name] = async (...args: never[]) => {
      try {
        return await fn(...args);
      } catch (err) {
        throw toFailure(err);
      }
    };
  }
  return out as T;
}
