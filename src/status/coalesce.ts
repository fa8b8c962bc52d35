/**
 * Status writes that would change nothing but the fetch times. A polling source whose
 * revision did not move ends each cycle with the same status apart from lastFetchTime and
 * nextFetchTime; sending that costs an API round trip (and a watch event to every
 * informer) per source per interval. Such a write is skipped unless this process has
 * not written the source's status for `maxAgeMs`, so the resource's fetch times stay at
 * most that stale while anything else (phase, artifact, conditions of any type,
 * observedGeneration, …) is written at once. Generic: it compares whatever fields the
 * status has, so new ones (kstatus conditions, say) count as changes without edits here.
 */
import { canonicalJson } from '../api/canonical.js';
import type { ArenaSourceStatus } from '../api/schema.js';

/** Refreshed on the resource at least this often when nothing else changes. */
export const FETCH_TIMES_MAX_AGE_MS = 10 * 60_000;
const FETCH_TIMES = new Set(['lastFetchTime', 'nextFetchTime']);

export class FetchTimeCoalescer {
  /** When this process last wrote each source's status (ms); only keys, no status copies. */
  private readonly writtenAt = new Map<string, number>();

  constructor(private readonly maxAgeMs = FETCH_TIMES_MAX_AGE_MS) {}

  /** False when `next` differs from `previous` (the status last written) only in its fetch times, written recently. */
  shouldWrite(key: string, previous: ArenaSourceStatus | undefined, next: ArenaSourceStatus, nowMs = Date.now()): boolean {
    if (!previous || !sameApartFromFetchTimes(previous, next)) return true;
    const at = this.writtenAt.get(key);
    return at === undefined || nowMs - at >= this.maxAgeMs;
  }

  written(key: string, nowMs = Date.now()): void {
    this.writtenAt.set(key, nowMs);
  }

  forget(key: string): void {
    this.writtenAt.delete(key);
  }
}

export function sameApartFromFetchTimes(a: ArenaSourceStatus, b: ArenaSourceStatus): boolean {
  return canonical(a) === canonical(b);
}

/** JSON with sorted keys and without the fetch times (at the top level only). */
function canonical(status: ArenaSourceStatus): string {
  return canonicalJson(Object.fromEntries(Object.entries(status).filter(([k]) => !FETCH_TIMES.has(k))));
}
