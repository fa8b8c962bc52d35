import { bundleActivities } from './bundle.js';
import type { ActivityDeps } from './deps.js';
import { withFailures } from './failure.js';
import { withHeartbeat } from './heartbeat.js';
import { retentionActivities } from './retention.js';
import { sourceActivities } from './source.js';
import { statusActivities } from './status.js';
import type { PinnedActivities, ResolveRevisionInput, ResolveRevisionResult, SharedActivities } from './types.js';

export type { ActivityDeps } from './deps.js';

/** Activities for the shared task queue (any worker). */
export function createSharedActivities(deps: ActivityDeps): SharedActivities {
  const { verifyArtifact } = bundleActivities(deps);
  const sources = sourceActivities(deps);
  /** One activity for the whole no-op check: ask the source, and if nothing moved, re-verify the stored bytes. */
  async function resolveRevision(input: ResolveRevisionInput): Promise<ResolveRevisionResult> {
    const result = await sources.resolveRevision(input);
    if (input.current && input.current.revision === result.revision) {
      result.currentValid = await verifyArtifact({ source: input.source, artifact: { ...input.current, url: '', lastUpdateTime: '' } });
    }
    return result;
  }
  const all = { ...sources, resolveRevision, ...statusActivities(deps), ...retentionActivities(deps) };
  return withFailures(withHeartbeat(all, ['resolveRevision', 'fetchSource']));
}

/** Activities for this worker's own queue (the checkouts it holds). */
export function createPinnedActivities(deps: ActivityDeps): PinnedActivities {
  const { packBundle, uploadArtifact, discardWorkDir } = bundleActivities(deps);
  return withFailures(withHeartbeat({ packBundle, uploadArtifact, discardWorkDir }, ['packBundle', 'uploadArtifact']));
}
