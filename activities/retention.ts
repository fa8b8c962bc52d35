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
import type { ContentVolume } from '../src/content/content-volume.js';
import type { ResourceReader } from '../src/resources/types.js';
import { contentPlaces } from './content.js';
import type { PruneArtifactsInput, PruneArtifactsResult } from './types.js';

export interface RetentionDeps {
  store: ArtifactStore;
  /** The content volume and where namespaces' workspace labels are read (both or neither). */
  content?: ContentVolume;
  resources?: ResourceReader;
  /** Default: keep 2, TTL 1 h. */
  retention?: Partial<RetentionPolicy>;
  /** Longest one call may take. Default 20 s (under a 30 s start-to-close timeout). */
  retentionTimeoutMs?: number;
}

export function retentionActivities(deps: RetentionDeps) {
  const policy: RetentionPolicy = { ...DEFAULT_RETENTION, ...deps.retention };
  const timeoutMs = deps.retentionTimeoutMs ?? 20_000;
  const places = deps.content && deps.resources ? contentPlaces({ resources: deps.resources }) : undefined;
  async function prune({ source, current, target }: PruneArtifactsInput): Promise<PruneArtifactsResult> {
    const r = await applyRetention(deps.store, source, current, policy);
    const versions =
      deps.content && places && target ? await deps.content.prune(await places.locate(source, target.targetPath), target.history) : undefined;
    const due = [r.nextDueAt, versions?.nextDueAt].filter((d): d is string => d !== undefined).sort()[0];
    return {
      deleted: r.deleted,
      deferred: r.deferred.length,
      ...(due ? { nextDueAt: due } : {}),
      ...(versions ? { versionCount: versions.versionCount } : {}),
    };
  }
  return {
    async pruneArtifacts(input: PruneArtifactsInput): Promise<PruneArtifactsResult> {
      const { source } = input;
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
        return await Promise.race([prune(input), timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
