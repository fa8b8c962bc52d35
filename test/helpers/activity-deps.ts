/** Activity dependencies on local backends under one directory, for tests that call activities directly. */
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import type { ActivityDeps } from '../../activities/deps.js';
import { DEFAULT_PACK_LIMITS } from '../../src/bundle/pack.js';
import { LocalResourceStore } from '../../src/resources/local-store.js';
import { LocalStatusStore } from '../../src/status/local-status-store.js';
import { FilesystemArtifactStore } from '../../src/store/fs-store.js';

export type LocalActivityDeps = ActivityDeps & { resources: LocalResourceStore };

/** Artifacts, status, resources (Secrets, ConfigMaps) and work directories under `dir`; `workDir` names the last. */
export function localActivityDeps(dir: string, workDir = 'work'): LocalActivityDeps {
  return {
    store: new FilesystemArtifactStore(join(dir, 'artifacts')),
    artifactBaseUrl: 'http://127.0.0.1:1',
    statusSink: new LocalStatusStore(join(dir, 'status')),
    resources: new LocalResourceStore(join(dir, 'resources')),
    workRoot: join(dir, workDir),
    workerQueue: 'q/worker/test',
    packLimits: DEFAULT_PACK_LIMITS,
  };
}

/** Errors only: the activities' expected failures would each be logged at WARN. */
const logger = new DefaultLogger('ERROR');

/** Runs `fn` as an activity (Temporal's activity test environment), for tests that call activities directly. */
export function inActivity<R>(fn: () => Promise<R>): Promise<R> {
  return new MockActivityEnvironment(undefined, { logger }).run(fn);
}
