import { bundleActivities } from './bundle.js';
import { contentPlaces } from './content.js';
import type { ActivityDeps } from './deps.js';
import { withFailures } from './failure.js';
import { withHeartbeat } from './heartbeat.js';
import { retentionActivities } from './retention.js';
import { sourceActivities } from './source.js';
import { statusActivities, unchangedWithPrevious } from './status.js';
import { Context } from '@temporalio/activity';
import { fetchingStatusOf, unchangedCycleStatus } from '../src/api/status.js';
import type { ArenaSourceStatus } from '../src/api/schema.js';
import { hereActivities } from './here.js';
import type { HereActivities, PinnedActivities, ResolveRevisionInput, ResolveRevisionResult, SharedActivities, UnchangedStatus } from './types.js';

export type { ActivityDeps } from './deps.js';

/** Activities for the shared task queue (any worker), and the pinned steps as local activities. */
export function createSharedActivities(deps: ActivityDeps): SharedActivities & HereActivities {
  const bundle = bundleActivities(deps);
  const sources = sourceActivities(deps);
  const places = contentPlaces(deps);
  const { reportUnchanged, lastWritten, ...statusWriters } = statusActivities(deps);
  /**
   * One activity for the whole no-op check: ask the source, and if nothing moved, re-verify the
   * stored bytes and (with a content volume) that HEAD still names the artifact's version.
   */
  async function resolveRevision(input: ResolveRevisionInput): Promise<ResolveRevisionResult> {
    let result = await sources.resolveRevision(input);
    const { current, target } = input;
    const unchanged = unchangedWithPrevious(input.ifUnchanged, (digest) => lastWritten(input.source, digest));
    if (current && current.revision === result.revision) {
      const { version, ...artifact } = current;
      result.currentValid = await bundle.verifyArtifact({ source: input.source, artifact: { ...artifact, url: '', lastUpdateTime: '' } });
      if (!result.currentValid && input.spec.type === 'oci' && input.spec.oci?.ref?.semver) {
        // An OCI semver cycle took the digest from the stored revision (src/sources/oci.ts); about to
        // re-fetch, ask the registry what the tag names now instead.
        result = await sources.resolveRevision({ ...input, current: undefined });
        if (result.revision !== current.revision) return result;
        result.currentValid = false;
      }
      if (deps.content && target) {
        // No version yet (the volume was just configured) or HEAD moved or lost: publish again.
        const check = version ? await deps.content.check(await places.locate(input.source, target.targetPath), version) : undefined;
        result.currentValid &&= check?.current === true;
        if (check) result.content = { versionCount: check.versionCount };
      }
      if (result.currentValid && unchanged) {
        const writtenAt = await writeUnchanged(input, unchanged, result);
        if (writtenAt) result.writtenAt = writtenAt;
      }
    }
    const changed = !(current && current.revision === result.revision && result.currentValid);
    const fetching = changed && input.ifChanged?.unlessRevision !== result.revision ? fetchingStatusAsked(input, unchanged) : undefined;
    if (fetching && (await writeChanged(input, fetching))) result.changedWritten = true;
    return result;
  }

  /** The Fetching status the workflow asked for: given whole, or to be computed as the workflow did (ResolveRevisionInput.ifChanged). */
  function fetchingStatusAsked(input: ResolveRevisionInput, unchanged: UnchangedStatus | undefined): ArenaSourceStatus | undefined {
    const asked = input.ifChanged;
    if (asked?.status) return asked.status;
    return asked?.at && unchanged ? fetchingStatusOf(unchanged, asked.at) : undefined;
  }

  /** The Fetching status of a cycle with work; a failed write is left to the workflow (it writes it with reportStatus). */
  async function writeChanged(input: ResolveRevisionInput, status: ArenaSourceStatus): Promise<boolean> {
    try {
      await statusWriters.reportStatus({ source: input.source, status });
      return true;
    } catch (err) {
      Context.current().log.warn('Fetching status could not be written; the workflow writes it', { error: String(err) });
      return false;
    }
  }

  /** The unchanged cycle's status, written from here: when it was written, or undefined (the workflow then writes it with reportStatus). */
  async function writeUnchanged(input: ResolveRevisionInput, unchanged: UnchangedStatus, result: ResolveRevisionResult): Promise<string | undefined> {
    const now = new Date().toISOString();
    const status = unchangedCycleStatus(unchanged, now, result.content);
    if (!status) return undefined;
    try {
      const cycle = { result: 'noop' as const, type: unchanged.type, durationMs: Date.now() - unchanged.startedAt };
      await reportUnchanged({ source: input.source, status, cycle }, unchanged.previous);
      return now;
    } catch (err) {
      Context.current().log.warn('status of an unchanged cycle could not be written; the workflow writes it', { error: String(err) });
      return undefined;
    }
  }
  const all = { ...sources, resolveRevision, ...statusWriters, ...retentionActivities(deps), ...hereActivities(deps.workerQueue, bundle, deps.fetchesHere === false ? undefined : sources.fetchSource) };
  return withFailures(withHeartbeat(all, ['resolveRevision', 'fetchSource']));
}

/** Activities for this worker's own queue (the checkouts it holds). */
export function createPinnedActivities(deps: ActivityDeps): PinnedActivities {
  const { packBundle, uploadArtifact, discardWorkDir } = bundleActivities(deps);
  return withFailures(withHeartbeat({ packBundle, uploadArtifact, discardWorkDir }, ['packBundle', 'uploadArtifact']));
}
