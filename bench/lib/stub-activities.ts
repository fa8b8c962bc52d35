/**
 * Activities that answer at once, for benchmarks that measure the workflow and the SDK
 * alone (replay cost, memory per cached workflow): the workflow code is the real one.
 */
import { Context } from '@temporalio/activity';
import { createHash } from 'node:crypto';
import { hereActivities } from '../../activities/here.js';
import type { HereActivities, PinnedActivities, SharedActivities } from '../../activities/types.js';
import { unchangedCycleStatus } from '../../src/api/status.js';
import { LastStatuses } from '../../src/status/last-statuses.js';
import { unchangedWithPrevious } from '../../activities/status.js';

export const STUB_REVISION = 'main@sha1:' + 'a'.repeat(40);

export function stubActivities(pinnedQueue: string): { shared: SharedActivities & HereActivities; pinned: PinnedActivities } {
  const lastWritten = new LastStatuses();
  const keyOf = (source: { namespace: string; name: string }) => `${source.namespace}/${source.name}`;
  const shared: SharedActivities = {
    async resolveRevision(input) {
      // As the real one: the previous status by its fingerprint, among what this worker wrote.
      const u = unchangedWithPrevious(input.ifUnchanged, (digest) => lastWritten.recall(keyOf(input.source), digest));
      const currentValid = input.current ? input.current.revision === STUB_REVISION : undefined;
      const writtenAt = new Date().toISOString();
      const written = currentValid && u ? unchangedCycleStatus(u, writtenAt) : undefined;
      if (written) lastWritten.remember(keyOf(input.source), written);
      return { revision: STUB_REVISION, ...(currentValid !== undefined ? { currentValid } : {}), ...(written ? { writtenAt } : {}) };
    },
    async fetchSource(input) {
      return { workerQueue: pinnedQueue, workDir: '/stub', bundleDir: '/stub/b', revision: input.revision };
    },
    async reportStatus(input) {
      lastWritten.remember(keyOf(input.source), input.status);
      // As the real one: a local call's result carries what it wrote (its input is not in the history).
      return Context.current().info.isLocal ? input : undefined;
    },
    async removeSource() {},
    async pruneArtifacts() {
      return { deleted: [], deferred: 0 };
    },
  };
  const pinned: PinnedActivities = {
    async packBundle() {
      return { archivePath: '/stub/a.tgz', checksum: `sha256:${createHash('sha256').update('x').digest('hex')}`, size: 1, files: 1 };
    },
    async uploadArtifact(input) {
      return { url: `http://stub/${input.checksum}`, checksum: input.checksum, size: 1 };
    },
    async discardWorkDir() {},
  };
  // As a real worker's: the fetch above names this queue, so pack and upload run locally.
  return { shared: { ...shared, ...hereActivities(pinnedQueue, pinned, shared.fetchSource) }, pinned };
}
