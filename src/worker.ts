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
  /** Resolves when both workers have stopped. */
  done: Promise<void>;
  /** Stops polling, lets in-flight tasks finish (within the grace time), resolves with `done`. */
  shutdown(): Promise<void>;
  /** The state of each worker this role runs (`RUNNING` while polling). */
  states(): { shared: State; pinned?: State };
}

type State = ReturnType<Worker['getState']>;

/** After the grace time, cancelled activities get this long to stop before the worker gives up on them. */
const SHUTDOWN_FORCE_AFTER_GRACE_MS = 10_000;

export { workflowBundle } from './workflow-bundle.js';

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
  const connection = following ? following.current : (config.connection as NativeConnection);
  const role = config.role ?? 'all';
  const runsWorkflows = role !== 'activities';
  const runsActivities = role !== 'workflows';
  const concurrency = config.maxConcurrentActivities ?? 20;
  const deps: ActivityDeps = { ...config.deps, workRoot, workerQueue, fetchesHere: runsActivities };

  const shared = await Worker.create({
    connection,
    namespace: config.namespace,
    taskQueue: config.taskQueue,
    ...(runsWorkflows ? { workflowBundle: config.bundle ?? (await workflowBundle()) } : {}),
    // Workflows call resolve, status and prune as local activities: wherever workflows run, activities
    // are registered; a `workflows` worker runs only those local ones (it polls no activity tasks).
    activities: createSharedActivities(deps),
    interceptors: { activity: [observabilityInterceptors] },
    ...(runsActivities ? { maxConcurrentActivityTaskExecutions: concurrency } : { enableNonLocalActivities: false }),
    ...(runsWorkflows ? { maxConcurrentLocalActivityExecutions: concurrency } : {}),
    ...shutdownTimes,
    ...(runsWorkflows && config.maxCachedWorkflows !== undefined ? { maxCachedWorkflows: config.maxCachedWorkflows } : {}),
  });
  // The worker's own queue holds pack and upload of its checkouts: only where activities run.
  const pinned = runsActivities
    ? await Worker.create({
        connection,
        namespace: config.namespace,
        taskQueue: workerQueue,
        activities: createPinnedActivities(deps),
        interceptors: { activity: [observabilityInterceptors] },
        maxConcurrentActivityTaskExecutions: config.maxConcurrentActivities ?? 20,
        ...shutdownTimes,
      })
    : undefined;
  const workers = pinned ? [shared, pinned] : [shared];
  following?.follow(workers);
  const done = Promise.all(workers.map((w) => w.run())).then(async () => {
    following?.unfollow(workers);
    await rm(workRoot, { recursive: true, force: true });
  });
  return {
    workerQueue,
    done,
    async shutdown() {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      await done;
    },
    states: () => ({ shared: shared.getState(), ...(pinned ? { pinned: pinned.getState() } : {}) }),
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
