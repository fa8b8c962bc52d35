/** `worker`: executes the source workflows and their activities (fetch, pack, upload, status). */
import { rm } from 'node:fs/promises';
import type { ActivityDeps } from '../../../activities/deps.js';
import { DEFAULT_PACK_LIMITS } from '../../bundle/pack.js';
import { ContentVolume } from '../../content/content-volume.js';
import { localPaths } from '../../local/paths.js';
import { createLogger } from '../../observability/logger.js';
import { workflowCacheMax, workflowCacheResizes, workflowCacheSavings, workflowCacheSizeNow } from '../../observability/metrics.js';
import { Readiness, temporalCheck } from '../../observability/health.js';
import { LocalResourceStore } from '../../resources/local-store.js';
import { LocalStatusStore } from '../../status/local-status-store.js';
import { parseTtl, type RetentionPolicy } from '../../store/retention.js';
import { describeTemporal } from '../../temporal/settings.js';
import { installRuntime, openWorkerConnection, startWorker, type AdaptiveCache, type RunningWorker, type WorkerRole } from '../../worker.js';
import { workflowBundleFile } from '../../workflow-bundle.js';
import { limitWorkflowHeaps, workflowCacheSize, type CacheSize } from '../../workflow-cache.js';
import { DEFAULTS, env, globalOptions, temporalSettingsFrom, type GlobalOptions } from '../config.js';
import { startMetrics, type MetricsFlags } from '../metrics-endpoint.js';
import { optionDefault } from '../options.js';
import { exitWhenDone, exitWithin, whenSignalled } from '../shutdown.js';
import { openArtifactStore, type StoreFlags } from '../store-options.js';

export interface WorkerFlags extends Partial<GlobalOptions>, MetricsFlags, StoreFlags {
  /** Read ConfigMaps/Secrets from the API server and write status to the ArenaSource resources. */
  kubernetes?: boolean;
  kubeconfig?: string;
  artifactBaseUrl?: string;
  maxBundleBytes?: number;
  maxBundleFiles?: number;
  workDir?: string;
  concurrency?: number;
  maxCachedWorkflows?: number;
  minCachedWorkflows?: number;
  cacheReviewInterval?: string;
  role?: WorkerRole;
  orasPath?: string;
  ociCaFile?: string;
  retentionKeep?: number;
  retentionTtl?: string;
  contentRoot?: string;
  contentKeep?: number;
  shutdownGrace?: string;
}

/**
 * --content-root (env ARENA_SOURCE_CONTENT_ROOT; off when unset) and --content-keep (env
 * ARENA_SOURCE_CONTENT_KEEP, default 10): Omnia's workspace content volume. A replaced
 * version waits out the same TTL as a replaced artifact.
 */
export function contentVolume(flags: Pick<WorkerFlags, 'contentRoot' | 'contentKeep' | 'retentionTtl'>): ContentVolume | undefined {
  const root = flags.contentRoot;
  if (!root) return undefined;
  const keep = flags.contentKeep;
  const ttlMs = retentionPolicy(flags).ttlMs;
  return new ContentVolume(root, { ...(keep !== undefined ? { keep } : {}), ...(ttlMs !== undefined ? { ttlMs } : {}) });
}

/** --shutdown-grace: how long in-flight activities may finish on SIGTERM (default from the options table). */
function shutdownGraceMs(flags: WorkerFlags): number {
  return parseTtl(flags.shutdownGrace ?? String(optionDefault('--shutdown-grace')));
}

/** --retention-keep / --retention-ttl (env ARENA_SOURCE_RETENTION_KEEP / _TTL); defaults keep 2 for 1h. */
function retentionPolicy(flags: Pick<WorkerFlags, 'retentionKeep' | 'retentionTtl'>): Partial<RetentionPolicy> {
  const keep = flags.retentionKeep;
  const ttl = flags.retentionTtl;
  return { ...(keep !== undefined ? { keep } : {}), ...(ttl ? { ttlMs: parseTtl(ttl) } : {}) };
}

/** After the grace time, the worker gives cancelled activities 10 s; this is the margin beyond. */
const WORKER_EXIT_MARGIN_MS = 20_000;

export async function workerCommand(flags: WorkerFlags): Promise<void> {
  const opts = globalOptions(flags);
  installRuntime(env('ARENA_SOURCE_LOG_LEVEL') ?? 'info');
  const log = createLogger();
  const graceMs = shutdownGraceMs(flags);
  const readiness = new Readiness();
  let worker: RunningWorker | undefined;
  // The SDK's runtime also shuts its workers down on SIGTERM; this adds the readiness, the log,
  // the bound, and a prompt exit when the signal comes before there is a worker to drain.
  void whenSignalled().then((signal) => {
    readiness.stopping();
    if (!worker) {
      log.info({ signal }, 'stopped before the worker started');
      process.exit(0);
    }
    log.info({ signal, graceSeconds: graceMs / 1000 }, 'worker shutting down: no new tasks, in-flight activities finish or are cancelled');
    exitWithin(graceMs + WORKER_EXIT_MARGIN_MS, (m) => log.error(m));
    void worker.shutdown();
  });
  const metrics = await startMetrics(flags, 9464, readiness);
  const paths = localPaths(opts.dataDir);
  const artifactBaseUrl =
    flags.artifactBaseUrl ?? `http://${DEFAULTS.artifactHost}:${DEFAULTS.artifactPort}`;
  const temporal = temporalSettingsFrom(flags);
  // A connection that cannot work (TLS, certificate, API key) ends the process with the error,
  // instead of leaving it up behind its metrics server.
  const connection = await openWorkerConnection(temporal, {
    warn: (m) => log.warn(m),
    info: (m, fields) => log.info(fields ?? {}, m),
  }).catch(async (err) => {
    await metrics?.close();
    throw err;
  });
  const content = contentVolume(flags);
  const role = flags.role ?? 'all';
  // --max-cached-workflows, else sized from the pod's memory limit (its cgroup, v2 or v1); the worker
  // holds that many only while it pays (src/workflow-cache-advisor.ts), else --min-cached-workflows.
  const cache = role === 'activities' ? undefined : workflowCacheSize(flags.maxCachedWorkflows, undefined, flags.minCachedWorkflows);
  if (cache) workflowCacheMax.set({ from: cache.from }, cache.maxCachedWorkflows);
  let workflowHeapMiB: number | undefined;
  const workflowCache = cache ? adaptiveCache(cache, flags, log, (mib) => (workflowHeapMiB = mib)) : undefined;
  // The build's bundle, or bundled by a child process: webpack would leave this long-running process ~80 MiB bigger.
  const bundle = role === 'activities' ? undefined : await workflowBundleFile(flags.workDir ?? paths.work);
  worker = await startWorker({
    role,
    ...(bundle ? { bundle: { codePath: bundle.codePath } } : {}),
    connection,
    namespace: temporal.namespace,
    taskQueue: opts.taskQueue,
    workRoot: flags.workDir ?? paths.work,
    shutdownGraceMs: graceMs,
    ...(flags.concurrency ? { maxConcurrentActivities: flags.concurrency } : {}),
    ...(workflowCache ? { workflowCache } : {}),
    deps: {
      store: (await openArtifactStore(flags, paths.artifacts)).store,
      artifactBaseUrl,
      ...(await backends(flags, paths)),
      ...(flags.orasPath || flags.ociCaFile
        ? { oras: { ...(flags.orasPath ? { binary: flags.orasPath } : {}), ...(flags.ociCaFile ? { caFile: flags.ociCaFile } : {}) } }
        : {}),
      packLimits: {
        maxBytes: flags.maxBundleBytes ?? DEFAULT_PACK_LIMITS.maxBytes,
        maxFiles: flags.maxBundleFiles ?? DEFAULT_PACK_LIMITS.maxFiles,
      },
      retention: retentionPolicy(flags),
      ...(content ? { content } : {}),
    },
  });
  const running = worker;
  readiness.set({
    temporal: temporalCheck(connection),
    workers: async () => {
      const states = running.states();
      if (states.shared !== 'RUNNING' || (states.pinned ?? 'RUNNING') !== 'RUNNING') throw new Error(`shared ${states.shared}, pinned ${states.pinned ?? 'none'}`);
    },
  });
  log.info(
    {
      taskQueue: opts.taskQueue,
      role,
      ...(cache
        ? { maxCachedWorkflows: cache.maxCachedWorkflows, cacheSizedFrom: cache.from, minCachedWorkflows: cache.minCachedWorkflows, cachedWorkflows: worker.cachedWorkflows() }
        : {}),
      ...(workflowHeapMiB ? { workflowHeapMiB } : {}),
      ...(bundle ? { workflowBundle: bundle.owned ? 'bundled at start' : 'prebuilt' } : {}),
      workerQueue: worker.workerQueue,
      temporal: describeTemporal(temporal),
      artifactBaseUrl,
      metrics: metrics?.url,
      contentRoot: content?.root,
    },
    'worker started',
  );
  await worker.done;
  // Read again by each SDK worker a cache resize starts; the build's own stays.
  if (bundle?.owned) await rm(bundle.codePath, { force: true });
  await connection.close();
  await metrics?.close();
  log.info('worker stopped');
  exitWhenDone();
}

/**
 * The cache between --min-cached-workflows and the maximum: each SDK worker's workflow threads get a
 * heap sized to its cache (before the SDK starts them), and every choice is logged and measured.
 */
function adaptiveCache(cache: CacheSize, flags: WorkerFlags, log: ReturnType<typeof createLogger>, heapSet: (mib: number | undefined) => void): AdaptiveCache {
  const bounds = { min: cache.minCachedWorkflows, max: cache.maxCachedWorkflows };
  return {
    ...bounds,
    reviewEveryMs: parseTtl(flags.cacheReviewInterval ?? String(optionDefault('--cache-review-interval'))),
    beforeCreate: (size) => {
      heapSet(limitWorkflowHeaps(size));
      workflowCacheSizeNow.set(size);
    },
    onReview: (advice) => {
      workflowCacheSavings.set(advice.replaysSavedPerSecond);
      log.debug({ ...advice, bounds }, 'workflow cache reviewed');
    },
    onResize: ({ from, size, ...advice }) => {
      workflowCacheResizes.inc({ direction: size > from ? 'grow' : 'shrink' });
      log.info({ from, to: size, ...advice }, 'workflow cache resized');
    },
    onResizeFailed: (err, { from, size }) => {
      workflowCacheSizeNow.set(from);
      log.warn({ err, from, to: size }, 'workflow cache not resized: the worker keeps its cache');
    },
  };
}

/** Local files, or the API server when the worker runs for a cluster (--kubernetes). */
async function backends(flags: WorkerFlags, paths: ReturnType<typeof localPaths>): Promise<Pick<ActivityDeps, 'statusSink' | 'resources'>> {
  if (!flags.kubernetes) {
    return { statusSink: new LocalStatusStore(paths.status), resources: new LocalResourceStore(paths.resources) };
  }
  // The Kubernetes client (≈ 40 MiB of RSS once loaded) only for a worker that talks to a cluster.
  const [{ loadKubeClients }, { KubeStatusSink }, { KubeResourceReader }] = await Promise.all([
    import('../../kube/config.js'),
    import('../../status/kube-status-sink.js'),
    import('../../resources/kube-reader.js'),
  ]);
  const kube = loadKubeClients(flags.kubeconfig);
  return { statusSink: new KubeStatusSink(kube), resources: new KubeResourceReader(kube) };
}
