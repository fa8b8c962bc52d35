/**
 * Which size of workflow cache pays for itself. A cached source workflow costs memory (≈ 140–175 KiB
 * at 1,000 sources, benchmark 4); an evicted one costs CPU when its next cycle replays it. A larger
 * cache only helps if each source comes due again before the cache has turned over: 1,000 sources at
 * 1m fit 1,514 cached and every cycle is a hit; 10,000 at 10m do not, the LRU evicts each source just
 * before it comes due, and the memory buys nothing. So the worker keeps a small cache unless the large
 * one would save enough replays, and this class says which, from the cycles it has seen.
 *
 * The estimate uses Little's law, not the hits this worker observed: with a small cache, a source's
 * next cycle goes to whichever worker polls first, so one worker of several sees few repeats even
 * where its share of the sources would fit. Its share is the same either way: the cycles it runs a
 * second, times each source's interval, is how many workflows a cache must hold for them to hit.
 * (A run's first cycle misses at any size: one in 20, so the savings read ≈ 5% high.)
 * Pure code (no clock, no I/O): the worker feeds it and asks it (src/workflow-cache-review.ts).
 */
import { durationToMillis, parseGoDuration } from './api/duration.js';

/**
 * CPU one replay of an evicted source workflow costs, runs of 20 cycles: benchmark 4, 1,000 sources at
 * 1m (16.7 cycles a second) held 52% of a core with 100 cached (session 18) and 32% with all of them
 * cached (session 17; 25% in session 18's run): 12–16 ms a cycle. The lower figure: the larger cache
 * is taken a little less readily.
 */
export const REPLAY_CPU_SECONDS = 0.012;
/** The large cache is taken when it would save this share of a core (≈ 4 replays a second)… */
export const GROW_AT_CORE_SHARE = 0.05;
/** …and given up when it saves less than this (the gap keeps the worker from swapping back and forth). */
export const SHRINK_BELOW_CORE_SHARE = 0.025;

export interface CacheBounds {
  /** The cache kept when a larger one would not pay (--min-cached-workflows). */
  min: number;
  /** The most the worker's memory allows (--max-cached-workflows, or sized from the memory limit). */
  max: number;
}

export interface CacheAdvice {
  /** The size the cache should have from now on: bounds.min or bounds.max (or `current`, between the thresholds). */
  size: number;
  /** Cycles a second this worker ran over the window. */
  cyclesPerSecond: number;
  /** Workflows a cache must hold for every one of those cycles to hit (cycles a second × interval). */
  workingSet: number;
  /** Replays a second the large cache would save over the small one. */
  replaysSavedPerSecond: number;
}

/** Cycles a second per source interval, over one window. */
type Rates = Array<{ intervalSeconds: number; perSecond: number }>;

export class CacheAdvisor {
  /** Cycles seen in the current window, by interval in seconds. */
  private counts = new Map<number, number>();
  private readonly intervals = new Map<string, number>();
  private windowStart: number;

  constructor(
    readonly bounds: CacheBounds,
    now: number,
  ) {
    this.windowStart = now;
  }

  /** One cycle of a source polled every `interval` (a Go duration, as in the spec) ran on this worker. */
  cycle(interval: string): void {
    const seconds = this.seconds(interval);
    if (seconds === undefined) return;
    this.counts.set(seconds, (this.counts.get(seconds) ?? 0) + 1);
  }

  /** Ends the window begun at the last review (or construction): the size a cache of `current` should have now. */
  review(now: number, current: number): CacheAdvice {
    const windowSeconds = Math.max((now - this.windowStart) / 1000, 1e-3);
    const rates: Rates = [...this.counts].map(([intervalSeconds, n]) => ({ intervalSeconds, perSecond: n / windowSeconds }));
    this.counts = new Map();
    this.windowStart = now;
    const saved = hitsPerSecond(rates, this.bounds.max) - hitsPerSecond(rates, this.bounds.min);
    const cpu = saved * REPLAY_CPU_SECONDS;
    const { min, max } = this.bounds;
    const size = cpu >= GROW_AT_CORE_SHARE ? max : cpu < SHRINK_BELOW_CORE_SHARE ? min : current;
    return {
      size,
      cyclesPerSecond: rates.reduce((sum, r) => sum + r.perSecond, 0),
      workingSet: Math.round(rates.reduce((sum, r) => sum + r.perSecond * r.intervalSeconds, 0)),
      replaysSavedPerSecond: saved,
    };
  }

  private seconds(interval: string): number | undefined {
    let seconds = this.intervals.get(interval);
    if (seconds === undefined) {
      try {
        seconds = durationToMillis(parseGoDuration(interval)) / 1000;
      } catch {
        return undefined; // the workflow refuses such a spec before any cycle; nothing to count
      }
      if (this.intervals.size < 1000) this.intervals.set(interval, seconds);
    }
    return seconds > 0 ? seconds : undefined;
  }
}

/**
 * Cycles a second an LRU cache of `capacity` workflows would serve from memory, for sources that come
 * due at fixed intervals. Sources with the shortest interval stay cached first: those of interval T
 * hit when the cache holds every workflow that cycles within T — all those with an interval up to T
 * (cycles a second × interval each) and, of the slower ones, those that cycle within T.
 */
export function hitsPerSecond(rates: Rates, capacity: number): number {
  const byInterval = [...rates].sort((a, b) => a.intervalSeconds - b.intervalSeconds);
  let held = 0;
  let hits = 0;
  for (let i = 0; i < byInterval.length; i++) {
    const { intervalSeconds, perSecond } = byInterval[i]!;
    const slower = byInterval.slice(i + 1).reduce((sum, r) => sum + r.perSecond, 0);
    if (held + perSecond * intervalSeconds + slower * intervalSeconds > capacity) break;
    held += perSecond * intervalSeconds;
    hits += perSecond;
  }
  return hits;
}
