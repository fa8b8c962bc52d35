import { bundleActivities } from './bundle.js';
import type { ActivityDeps } from './deps.js';
import { withFailures } from './failure.js';
import { withHeartbeat } from './heartbeat.js';
import { retentionActivities } from './retention.js';
import { sourceActivities } from './source.js';
import { statusActivities } from './status.js';
import type { PinnedActivities, SharedActivities } from './types.js';

export type { ActivityDeps } from './deps.js';

/** Activities for the shared task queue (any worker). */
export function createSharedActivities(deps: ActivityDeps): SharedActivities {
  const { verifyArtifact } = bundleActivities(deps);
  const all = { ...sourceActivities(deps), ...statusActivities(deps), ...retentionActivities(deps), verifyArtifact };
  return withFailures(withHeartbeat(all, ['resolveRevision', 'fetchSource', 'verifyArtifact']));
}

/** Activities for this worker's own queue (the checkouts it holds). */
export function createPinnedActivities(deps: ActivityDeps): PinnedActivities {
  const { packBundle, uploadArtifact, discardWorkDir } = bundleActivities(deps);
  return withFailures(withHeartbeat({ packBundle, uploadArtifact, discardWorkDir }, ['packBundle', 'uploadArtifact']));
}
