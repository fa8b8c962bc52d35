/**
 * A rate-limited, de-duplicated work queue of keys, after client-go's workqueue as
 * controller-runtime uses it. @kubernetes/client-node has informers but no work queue, and
 * no npm library keeps these rules (p-queue and friends queue promises, not keys):
 *
 * - a key is queued at most once, however often it is added;
 * - a key is never handed out twice at once: added while being processed, it is marked
 *   dirty and queued again when `done`;
 * - `addRateLimited` waits a per-key exponential backoff (base·2^failures, capped), and
 *   never less than an overall token bucket allows, so a storm of failures cannot turn
 *   into a hot loop; `forget` resets a key's failures after a success;
 * - `addAfter` keeps only the earliest pending wake-up per key;
 * - `shutDown` wakes every waiting `get` with undefined and drops pending wake-ups.
 */

export interface RateLimit {
  /** First retry delay, doubled per consecutive failure (default 500 ms). */
  baseDelayMs?: number;
  /** Longest retry delay (default 5 minutes). */
  maxDelayMs?: number;
  /** Overall retries per second across all keys, after the burst (default 10). */
  qps?: number;
  /** Retries allowed at once before the rate applies (default 100). */
  burst?: number;
}

export class WorkQueue<K = string> {
  private readonly queue: K[] = [];
  /** Keys queued or waiting to be re-queued after processing (client-go's "dirty" set). */
  private readonly dirty = new Set<K>();
  private readonly processing = new Set<K>();
  private readonly waiters: Array<(key: K | undefined) => void> = [];
  private readonly delayed = new Map<K, { at: number; timer: NodeJS.Timeout }>();
  private readonly failures = new Map<K, number>();
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly qps: number;
  private readonly burst: number;
  /** Token bucket: when the next retry token is free (reservations move it forward). */
  private bucketTokens: number;
  private bucketAt = Date.now();
  private closed = false;

  constructor(limit: RateLimit = {}) {
    this.baseDelayMs = limit.baseDelayMs ?? 500;
    this.maxDelayMs = limit.maxDelayMs ?? 5 * 60_000;
    this.qps = limit.qps ?? 10;
    this.burst = limit.burst ?? 100;
    this.bucketTokens = this.burst;
  }

  get shuttingDown(): boolean {
    return this.closed;
  }

  /** Keys queued (not counting those being processed or waiting out a delay). */
  get length(): number {
    return this.queue.length;
  }

  add(key: K): void {
    if (this.closed || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return;
    const waiter = this.waiters.shift();
    if (waiter) {
      this.dirty.delete(key);
      this.processing.add(key);
      waiter(key);
    } else {
      this.queue.push(key);
    }
  }

  /** Adds the key after `delayMs`; an earlier pending wake-up for it wins. */
  addAfter(key: K, delayMs: number): void {
    if (this.closed) return;
    if (delayMs <= 0) return this.add(key);
    const at = Date.now() + delayMs;
    const pending = this.delayed.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, delayMs);
    this.delayed.set(key, { at, timer });
  }

  /** Adds the key after its backoff; returns that delay (what to log). */
  addRateLimited(key: K): number {
    const delay = this.when(key);
    this.addAfter(key, delay);
    return delay;
  }

  /** The key succeeded: its next failure starts from the base delay again. */
  forget(key: K): void {
    this.failures.delete(key);
  }

  /** Consecutive failures recorded for the key. */
  retries(key: K): number {
    return this.failures.get(key) ?? 0;
  }

  /** The next key to process, or undefined once shut down. Call `done` after. */
  get(): Promise<K | undefined> {
    if (this.closed) return Promise.resolve(undefined);
    const key = this.queue.shift();
    if (key !== undefined) {
      this.dirty.delete(key);
      this.processing.add(key);
      return Promise.resolve(key);
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Processing of `key` finished; if it was added meanwhile, it is queued again. */
  done(key: K): void {
    this.processing.delete(key);
    if (!this.dirty.has(key)) return;
    this.dirty.delete(key);
    this.add(key);
  }

  /** Stops handing out keys: waiting `get`s resolve undefined, pending delays are dropped. */
  shutDown(): void {
    this.closed = true;
    for (const { timer } of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    this.queue.length = 0;
    this.dirty.clear();
    for (const waiter of this.waiters.splice(0)) waiter(undefined);
  }

  /** max(per-key exponential backoff, overall token bucket), as client-go's default limiter. */
  private when(key: K): number {
    const failures = this.failures.get(key) ?? 0;
    this.failures.set(key, failures + 1);
    const exponential = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** Math.min(failures, 30));
    return Math.max(exponential, this.reserveToken());
  }

  private reserveToken(): number {
    const now = Date.now();
    this.bucketTokens = Math.min(this.burst, this.bucketTokens + ((now - this.bucketAt) * this.qps) / 1000);
    this.bucketAt = now;
    this.bucketTokens -= 1;
    return this.bucketTokens >= 0 ? 0 : Math.ceil((-this.bucketTokens * 1000) / this.qps);
  }
}
