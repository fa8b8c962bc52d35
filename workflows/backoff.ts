/**
 * When a failed cycle is retried: exponential backoff independent of the interval,
 * so a source polled hourly recovers within a minute of a short outage instead of
 * an hour later (Flux's per-object backoff, with a floor and cap that suit
 * fetches). Pure: the workflow passes its deterministic Math.random() as `random`.
 */
import { INVALID_BUNDLE } from '../src/api/status.js';

/** The first retry comes this long after a failure; each further failure doubles it. */
export const FIRST_RETRY_MS = 5_000;
/** However long the interval, a failing source is retried at least this often. */
export const MAX_RETRY_MS = 10 * 60_000;
/** ±10%: sources that failed together (one git server down) do not retry in lockstep. */
const JITTER = 0.1;

/**
 * Delay before retry number `failures` (1 after the first failed cycle in a row):
 * 5 s, 10 s, 20 s… capped at min(interval, 10 min), then ±10% jitter (never past the cap,
 * so a failing source is never polled less often than a healthy one).
 */
export function retryDelayMs(failures: number, intervalMs: number, random: number): number {
  const cap = Math.min(intervalMs, MAX_RETRY_MS);
  // 2^30 × 5 s is far past any cap; the bound keeps the arithmetic finite.
  const exponential = FIRST_RETRY_MS * 2 ** Math.min(Math.max(failures, 1) - 1, 30);
  const base = Math.min(exponential, cap);
  return Math.round(Math.min(cap, base * (1 - JITTER + 2 * JITTER * random)));
}

/** Failures that wait for a new revision at the normal interval instead (retrying the same content cannot help). */
export const CONTENT_REJECTIONS: readonly string[] = ['UnsafeContent', 'ArtifactTooLarge', INVALID_BUNDLE];

/** Whether a failed cycle with this reason is retried with backoff (stalled ones are not retried at all). */
export function backsOff(reason: string, stalled: boolean): boolean {
  // A refused signature, like rejected content, waits for a new revision at the interval.
  return !stalled && !CONTENT_REJECTIONS.includes(reason) && reason !== 'VerificationFailed';
}
