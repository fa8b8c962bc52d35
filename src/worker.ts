/**
 * Temporal worker construction, in one place. A worker process polls two task
 * queues: the shared one (workflows, and activities any worker can run) and its
 * own (pack and upload of the checkouts it holds on local disk). This is
 * Temporal's worker-specific task queue pattern: a lost worker makes the pinned
 * activity time out on schedule-to-start, and the workflow fetches again elsewhere.
 * A role splits the two jobs over processes: `workflows` runs workflow code and the
 * local activities it calls (resolveRevision, reportStatus, pruneArtifacts: short
 * calls), `activities` runs the remote ones (fetch, pack, upload: it starts the git
 * clones and packs); `all` does both.
 */
import { NativeConnection, Runtime, Worker, makeTelemetryFilterString, type WorkflowBundleOption } from '@temporalio/worker';
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPinnedActivities, createSharedActivities, type ActivityDeps } from '../activities/index.js';
import { observabilityInterceptors } from './observability/interceptors.js';
import { workflowBundle } from './workflow-bundle.js';
import { CacheAdvisor } from './workflow-cache-advisor.js';
import { cycleCounter, reviewCacheEvery, type AdaptiveCache } from './workflow-cache-review.js';
import { createLogger, temporalLogger } from './observability/logger.js';
import type { ConnectOptions } from './temporal/connection.js';
import { WorkerConnection } from './temporal/worker-connection.js';
import { plainSettings, type TemporalSettings } from './temporal/settings.js';

export const WORKER_ROLES = ['all', 'workflows', 'activities'] as const;
export type WorkerRole = (typeof WORKER_ROLES)[number];

export interface WorkerConfig {
  /** A WorkerConnection moves the workers to a new connection when its certificate files change. */
  connection: NativeConnection | WorkerConnection;
  namespace: string;
  taskQueue: string;
  /** Scratch space root; each worker process uses its own subdirectory. */
  workRoot?: string;
  deps: Omit<ActivityDeps, 'workRoot' | 'workerQueue'>;
  maxConcurrentActivities?: number;
  /**
   * Workflows kept in memory between cycles. An evicted one is replayed from its
   * history at its next cycle: less memory, more CPU. Unset: the SDK's default.
   */
  maxCachedWorkflows?: number;
  /**
   * Instead of a fixed maxCachedWorkflows: the cache between these bounds that pays for itself
   * (src/workflow-cache-advisor.ts), reviewed every reviewEveryMs. A new size replaces the SDK worker
   * that runs the workflows: the new one starts polling, then the old one drains.
   */
  workflowCache?: AdaptiveCache;
  /** Which tasks this process polls (default `all`). */
  role?: WorkerRole;
  /** The workflow code (default: bundled in this process, once). */
  bundle?: WorkflowBundleOption;
  /**
   * On shutdown, how long in-flight activities may run on before they are cancelled
   * (default 0: at once). The worker then gives them 10 s more to stop.
   */
  shutdownGraceMs?: number;
}

export interface RunningWorker {
  workerQueue: string;
  /** Resolves when every SDK worker it started has stopped (rejects with the first one's failure). */
  done: Promise<void>;
  /** Stops polling, lets in-flight tasks finish (within the grace time), resolves with `done`. */
  shutdown(): Promise<void>;
  /** The state of each worker this role runs (`RUNNING` while polling). */
  states(): { shared: State; pinned?: State };
  /** The workflow cache's size now (undefined: the SDK's default, or no workflows on this role). */
  cachedWorkflows(): number | undefined;
  /** Replaces the SDK worker running the workflows with one caching `size` (what a cache review does; only with workflowCache). */
  resizeWorkflowCache(size: number): Promise<void>;
}

type State = ReturnType<Worker['getState']>;

/** After the grace time, cancelled activities get this long to stop before the worker gives up on them. */
const SHUTDOWN_FORCE_AFTER_GRACE_MS = 10_000;

export { workflowBundle } from './workflow-bundle.js';
export type { AdaptiveCache } from './workflow-cache-review.js';

let runtimeInstalled = false;
/**
 * Routes the SDK's logs (worker runtime, workflow `log`, activity `Context.log`) through
 * our structured logger. Must run before the first connection; later calls are no-ops.
 */
export function installRuntime(level = process.env.ARENA_SOURCE_LOG_LEVEL ?? 'warn'): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  const logger = temporalLogger(createLogger(level));
  try {
    Runtime.install({
      logger,
      telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'WARN' }) } },
    });
  } catch {
    // Already installed by the embedding program: keep its choice.
  }
}

/**
 * The worker's connection from resolved settings (src/temporal/connection.ts); installs
 * the runtime first (it must precede any connection).
 */
export async function openWorkerConnection(settings: TemporalSettings, opts?: ConnectOptions): Promise<WorkerConnection> {
  installRuntime();
  return WorkerConnection.connect(settings, opts);
}

/** A plaintext connection to `address` (tests and the embedded dev server): nothing to rotate. */
export async function connectWorker(address: string): Promise<NativeConnection> {
  return (await openWorkerConnection(plainSettings(address))).current;
}

export async function startWorker(config: WorkerConfig): Promise<RunningWorker> {
  installRuntime();
  const id = `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  const workerQueue = `${config.taskQueue}/worker/${id}`;
  const baseRoot = config.workRoot ?? join(tmpdir(), 'arena-source-work');
  await sweepStaleWorkDirs(baseRoot);
  const workRoot = join(baseRoot, id);
  await mkdir(workRoot, { recursive: true });
  const grace = config.shutdownGraceMs ?? 0;
  const shutdownTimes = { shutdownGraceTime: grace, shutdownForceTime: grace + SHUTDOWN_FORCE_AFTER_GRACE_MS };

  const following = config.connection instanceof WorkerConnection ? config.connection : undefined;
  const connectionNow = () => (following ? following.current : (config.connection as NativeConnection));
  const role = config.role ?? 'all';
  const runsWorkflows = role !== 'activities';
  const runsActivities = role !== 'workflows';
  const concurrency = config.maxConcurrentActivities ?? 20;
  const deps: ActivityDeps = { ...config.deps, workRoot, workerQueue, fetchesHere: runsActivities };
  const bundle = runsWorkflows ? (config.bundle ?? (await workflowBundle())) : undefined;
  const adaptive = runsWorkflows ? config.workflowCache : undefined;
  if (adaptive && !following) throw new Error('an adaptive workflow cache needs a WorkerConnection: each resize opens a connection for its worker');
  const advisor = adaptive ? new CacheAdvisor(adaptive, Date.now()) : undefined;
  const activityInterceptors = advisor ? [observabilityInterceptors, cycleCounter(advisor)] : [observabilityInterceptors];

  // Once for every SDK worker this process starts: what they remember (the statuses last written, the
  // git caches, the archive memo) outlives a cache resize.
  const sharedActivities = createSharedActivities(deps);
  // The SDK fixes a worker's cache size when it is created: a new size is a new worker (resizeTo).
  const createShared = (maxCachedWorkflows: number | undefined, connection: NativeConnection) => {
    if (maxCachedWorkflows !== undefined) adaptive?.beforeCreate?.(maxCachedWorkflows);
    return Worker.create({
      connection,
      namespace: config.namespace,
      taskQueue: config.taskQueue,
      ...(bundle ? { workflowBundle: bundle } : {}),
      // Workflows call resolve, status and prune as local activities: wherever workflows run, activities
      // are registered; a `workflows` worker runs only those local ones (it polls no activity tasks).
      activities: sharedActivities,
      interceptors: { activity: activityInterceptors },
      ...(runsActivities ? { maxConcurrentActivityTaskExecutions: concurrency } : { enableNonLocalActivities: false }),
      ...(runsWorkflows ? { maxConcurrentLocalActivityExecutions: concurrency } : {}),
      ...shutdownTimes,
      ...(maxCachedWorkflows !== undefined ? { maxCachedWorkflows } : {}),
    });
  };
  let cacheSize = runsWorkflows ? (adaptive?.min ?? config.maxCachedWorkflows) : undefined;
  let shared = await createShared(cacheSize, connectionNow());
  // The worker's own queue holds pack and upload of its checkouts: only where activities run.
  const pinned = runsActivities
    ? await Worker.create({
        connection: connectionNow(),
        namespace: config.namespace,
        taskQueue: workerQueue,
        activities: createPinnedActivities(deps),
        interceptors: { activity: [observabilityInterceptors] },
        maxConcurrentActivityTaskExecutions: config.maxConcurrentActivities ?? 20,
        ...shutdownTimes,
      })
    : undefined;

  // Every SDK worker this process runs, until it stops: `done` resolves when none is left, or rejects
  // with the first one's failure.
  const live = new Set<Worker>();
  let settle!: { resolve: () => void; reject: (err: unknown) => void };
  const allStopped = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  /** `own`: the worker is on a connection of its own (a resize's), closed when it stops. */
  const run = (w: Worker, own?: NativeConnection) => {
    live.add(w);
    if (own) following!.followOnOwn(w, own);
    else following?.follow([w]);
    w.run().then(
      async () => {
        live.delete(w);
        if (own) await following!.unfollowOwn(w);
        else following?.unfollow([w]);
        if (live.size === 0) settle.resolve();
      },
      (err) => settle.reject(err),
    );
  };
  const stop = (w: Worker) => {
    if (w.getState() === 'RUNNING') w.shutdown();
  };
  const done = allStopped.then(() => rm(workRoot, { recursive: true, force: true }));
  for (const w of pinned ? [shared, pinned] : [shared]) run(w);

  let stopping = false;
  let resizing: Promise<void> | undefined;
  /** Starts a worker with the new cache, then lets the old one drain (in-flight tasks finish within the grace time). */
  const resizeTo = (size: number) =>
    (resizing = (async () => {
      const own = await following!.open();
      const next = await createShared(size, own).catch(async (err) => {
        await own.close().catch(() => undefined);
        throw err;
      });
      run(next, own);
      const old = shared;
      shared = next;
      cacheSize = size;
      stop(old);
    })().finally(() => (resizing = undefined)));
  const stopReviews =
    advisor && adaptive ? reviewCacheEvery(adaptive, advisor, () => (stopping ? undefined : cacheSize!), resizeTo) : undefined;

  return {
    workerQueue,
    done,
    async shutdown() {
      stopping = true;
      stopReviews?.();
      await resizing?.catch(() => undefined);
      for (const w of live) stop(w);
      await done;
    },
    states: () => ({ shared: shared.getState(), ...(pinned ? { pinned: pinned.getState() } : {}) }),
    cachedWorkflows: () => cacheSize,
    async resizeWorkflowCache(size) {
      if (!adaptive) throw new Error('resizeWorkflowCache needs a worker started with workflowCache');
      if (!stopping) await resizeTo(size);
    },
  };
}

/** Work directories of crashed workers are removed after a day; live ones are never that old. */
async function sweepStaleWorkDirs(root: string): Promise<void> {
  const cutoff = Date.now() - 24 * 3600 * 1000;
  for (const entry of await readdir(root).catch(() => [] as string[])) {
    const dir = join(root, entry);
    const info = await stat(dir).catch(() => null);
    if (info && info.mtimeMs < cutoff) await rm(dir, { recursive: true, force: true });
  }
}
