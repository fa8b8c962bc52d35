/**
 * The status this worker last wrote for each source, found by its fingerprint. A local resolve is
 * sent the fingerprint of the status its unchanged cycle starts from instead of the status itself: the
 * Temporal core keeps every local activity's input until the run continues as new, so a whole status
 * per cycle made each cached workflow ≈ 2.7 KiB heavier per cycle of its run (README, benchmark 11b).
 * A source not found here (a restarted worker, a workflow that moved) is a miss: the resolve then leaves
 * the status write to the workflow, which sends it whole, and it is remembered again.
 */
import type { ArenaSourceStatus } from '../api/schema.js';
import { statusDigest } from '../api/status.js';

/** Sources remembered at most (least recently written out first): ≈ 2 KiB each. */
const MAX_SOURCES = 20_000;

export class LastStatuses {
  private readonly byKey = new Map<string, { digest: string; status: ArenaSourceStatus }>();

  constructor(private readonly maxSources = MAX_SOURCES) {}

  remember(key: string, status: ArenaSourceStatus): void {
    this.byKey.delete(key);
    this.byKey.set(key, { digest: statusDigest(status), status });
    if (this.byKey.size > this.maxSources) this.byKey.delete(this.byKey.keys().next().value!);
  }

  /** The status last written for `key` if its fingerprint is `digest`, else undefined. */
  recall(key: string, digest: string): ArenaSourceStatus | undefined {
    const last = this.byKey.get(key);
    return last?.digest === digest ? last.status : undefined;
  }

  forget(key: string): void {
    this.byKey.delete(key);
  }
}
