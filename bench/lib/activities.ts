/** The real activities, called directly (Temporal's mock activity context), for per-step timings. */
import { DefaultLogger } from '@temporalio/worker';
import { MockActivityEnvironment } from '@temporalio/testing';
import { join } from 'node:path';
import type { ActivityDeps } from '../../activities/deps.js';
import { bundleActivities } from '../../activities/bundle.js';
import { createSharedActivities } from '../../activities/index.js';
import { sourceActivities } from '../../activities/source.js';
import type { ContentTarget, SourceRef } from '../../activities/types.js';
import type { ArenaSourceSpec } from '../../src/api/schema.js';
import { DEFAULT_PACK_LIMITS } from '../../src/bundle/pack.js';
import { LocalResourceStore } from '../../src/resources/local-store.js';
import { LocalStatusStore } from '../../src/status/local-status-store.js';
import { FilesystemArtifactStore } from '../../src/store/fs-store.js';

const logger = new DefaultLogger('ERROR');

export function inActivity<R>(fn: () => Promise<R>): Promise<R> {
  return new MockActivityEnvironment(undefined, { logger }).run(fn);
}

/** Deps as a worker builds them, with `workRoot` as the worker's scratch space (its git cache lives there). */
export function benchDeps(tmp: string, workRoot: string): ActivityDeps {
  return {
    store: new FilesystemArtifactStore(join(tmp, 'artifacts')),
    artifactBaseUrl: 'http://127.0.0.1:9/artifacts',
    statusSink: new LocalStatusStore(join(tmp, 'status')),
    resources: new LocalResourceStore(join(tmp, 'resources')),
    workRoot,
    workerQueue: 'bench/worker/local',
    packLimits: { ...DEFAULT_PACK_LIMITS, maxBytes: 1024 ** 3, maxFiles: 100_000 },
  };
}

export function gitSpec(url: string, path: string, branch = 'main'): ArenaSourceSpec {
  return { type: 'git', interval: '1h', timeout: '600s', git: { url, ref: { branch }, ...(path ? { path } : {}) } };
}

export interface CycleResult {
  checksum: string;
  size: number;
  files: number;
  revision: string;
}

/** fetchSource → packBundle → uploadArtifact, as a changed cycle runs them. */
export async function fetchPackUpload(
  deps: ActivityDeps,
  source: SourceRef,
  spec: ArenaSourceSpec,
  revision: string,
  target?: ContentTarget,
): Promise<CycleResult> {
  const src = sourceActivities(deps);
  const bundle = bundleActivities(deps);
  const fetched = await inActivity(() => src.fetchSource({ source, spec, revision }));
  return packUpload(deps, source, fetched.workDir, fetched.bundleDir, fetched.revision, bundle, target);
}

/** packBundle → uploadArtifact of a checkout made some other way. */
export async function packUpload(
  deps: ActivityDeps,
  source: SourceRef,
  workDir: string,
  bundleDir: string,
  revision: string,
  bundle = bundleActivities(deps),
  target?: ContentTarget,
): Promise<CycleResult> {
  const packed = await inActivity(() => bundle.packBundle({ workDir, bundleDir }));
  const uploaded = await inActivity(() =>
    bundle.uploadArtifact({ source, workDir, archivePath: packed.archivePath, checksum: packed.checksum, ...(target ? { target } : {}) }),
  );
  return { checksum: uploaded.checksum, size: uploaded.size, files: packed.files, revision };
}

/**
 * A no-op cycle's only activity besides its two status writes: resolveRevision with the
 * stored artifact as `current` (one ls-remote, then a re-hash of the stored file), exactly
 * as the worker registers it. Returns whether the artifact was found current and intact.
 */
export async function noopCycle(deps: ActivityDeps, source: SourceRef, spec: ArenaSourceSpec, artifact: { revision: string; checksum: string }): Promise<boolean> {
  const shared = createSharedActivities(deps);
  const result = await inActivity(() => shared.resolveRevision({ source, spec, current: artifact }));
  return result.revision === artifact.revision && result.currentValid === true;
}
