/**
 * pruneArtifacts: artifact retention for one source (src/store/retention.ts),
 * after a cycle published a new artifact. Runs on any worker of the shared
 * queue; safe to repeat and to run late (deletion is idempotent, the current
 * artifact is never deleted). Bounded in time: it gives up after `timeoutMs`
 * with a retryable StorageFailed, and whatever it did not delete is deleted
 * by the next cycle's call.
 */
import { StorageFailedError } from '../src/errors.js';
import type { ArtifactStore } from '../src/store/artifact-store.js';
import { applyRetention, DEFAULT_RETENTION, type RetentionPolicy } from '../src/store/retention.js';
import type { SourceRef } from './types.js';

export interface PruneArtifactsInput {
  source: SourceRef;
  /** The artifact in status (its checksum "sha256:…", or its key); "" for none. Never deleted. */
  current: string;
}

export interface PruneArtifactsResult {
  /** Keys deleted now. */
  deleted: string[];
  /** How many older artifacts wait for their TTL. */
  deferred: number;
  /** When the first of them becomes deletable (ISO time). */
  nextDueAt?: string;
}

export interface RetentionDeps {
  store: ArtifactStore;
  /** Default: keep 2, TTL 1 h. */
  retention?: Partial<RetentionPolicy>;
  /** Longest one call may take. Default 20 s (under a 30 s start-to-close timeout). */
  retentionTimeoutMs?: number;
}

export function retentionActivities(deps: RetentionDeps) {
  const policy: RetentionPolicy = { ...DEFAULT_RETENTION, ...deps.retention };
  const timeoutMs = deps.retentionTimeoutMs ?? 20_000;
  return {
    async pruneArtifacts({ source, current }: PruneArtifactsInput): Promise<PruneArtifactsResult> {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new StorageFailedError(
                `pruning artifacts of ${source.namespace}/${source.name} took longer than ${timeoutMs} ms; the next cycle continues it`,
              ),
            ),
          timeoutMs,
        );
      });
      try {
        const r = await Promise.race([applyRetention(deps.store, source, current, policy), timeout]);
        return { deleted: r.deleted, deferred: r.deferred.length, ...(r.nextDueAt ? { nextDueAt: r.nextDueAt } : {}) };
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
