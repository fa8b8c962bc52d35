/**
 * Temporal worker construction, in one place. A worker process polls two task
 * queues: the shared one (workflows, and activities any worker can run) and its
 * own (pack and upload of the checkouts it holds on local disk). This is
 * Temporal's worker-specific task queue pattern: a lost worker makes the pinned
 * activity time out on schedule-to-start, and the workflow fetches again elsewhere.
 */
import { NativeConnection, Runtime, Worker, bundleWorkflowCode, makeTelemetryFilterString, type WorkflowBundle } from '@temporalio/worker';
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createPinnedActivities, createSharedActivities, type ActivityDeps } from '../activities/index.js';

export interface WorkerConfig {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  /** Scratch space root; each worker process uses its own subdirectory. */
  workRoot?: string;
  deps: Omit<ActivityDeps, 'workRoot' | 'workerQueue'>;
  maxConcurrentActivities?: number;
}

export interface RunningWorker {
  workerQueue: string;
  /** Resolves when both workers have stopped. */
  done: Promise<void>;
  shutdown(): Promise<void>;
}

let bundle: Promise<WorkflowBundle> | undefined;

/** Bundles the workflow code once per process (webpack takes seconds; tests start many workers). */
export function workflowBundle(): Promise<WorkflowBundle> {
  bundle ??= bundleWorkflowCode({
    workflowsPath: fileURLToPath(new URL('../workflows/index.js', import.meta.url)),
    logger: quietLogger,
  });
  return bundle;
}

/** One line per warning: what happened, to which workflow/activity, and the error's message. */
function line(level: string, message: string, meta?: Record<string, unknown>): string {
  const fields = ['workflowId', 'activityType', 'taskQueue']
    .filter((k) => meta?.[k] !== undefined)
    .map((k) => `${k}=${String(meta![k])}`);
  const error = meta?.error instanceof Error ? `: ${meta.error.message}` : '';
  return `${level} ${message}${error}${fields.length ? ` (${fields.join(' ')})` : ''}`;
}

const quietLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (message: string, meta?: Record<string, unknown>) => {
    if (/No workflows registered/.test(message)) return; // expected on the pinned queue
    console.warn(line('warn', message, meta));
  },
  error: (message: string, meta?: Record<string, unknown>) => console.error(line('error', message, meta)),
};

let runtimeInstalled = false;
/** The SDK's runtime logs every poll at INFO; keep warnings and errors only. */
export function installQuietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  try {
    Runtime.install({
      logger: quietLogger,
      telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'WARN' }) } },
    });
  } catch {
    // Already installed by the embedding program: keep its choice.
  }
}

/** The worker's connection; installs the quiet runtime first (it must precede any connection). */
export async function connectWorker(address: string): Promise<NativeConnection> {
  installQuietRuntime();
  return NativeConnection.connect({ address });
}

export async function startWorker(config: WorkerConfig): Promise<RunningWorker> {
  installQuietRuntime();
  const id = `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  const workerQueue = `${config.taskQueue}/worker/${id}`;
  const baseRoot = config.workRoot ?? join(tmpdir(), 'arena-source-work');
  await sweepStaleWorkDirs(baseRoot);
  const workRoot = join(baseRoot, id);
  await mkdir(workRoot, { recursive: true });
  const deps: ActivityDeps = { ...config.deps, workRoot, workerQueue };

  const shared = await Worker.create({
    connection: config.connection,
    namespace: config.namespace,
    taskQueue: config.taskQueue,
    workflowBundle: await workflowBundle(),
    activities: createSharedActivities(deps),
    maxConcurrentActivityTaskExecutions: config.maxConcurrentActivities ?? 20,
  });
  const pinned = await Worker.create({
    connection: config.connection,
    namespace: config.namespace,
    taskQueue: workerQueue,
    activities: createPinnedActivities(deps),
    maxConcurrentActivityTaskExecutions: config.maxConcurrentActivities ?? 20,
  });
  const done = Promise.all([shared.run(), pinned.run()]).then(async () => {
    await rm(workRoot, { recursive: true, force: true });
  });
  return {
    workerQueue,
    done,
    async shutdown() {
      for (const w of [shared, pinned]) if (w.getState() === 'RUNNING') w.shutdown();
      await done;
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
