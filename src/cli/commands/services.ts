/** `worker` and `serve`: the long-running processes of a deployment, local backends. */
import { rm } from 'node:fs/promises';
import { DEFAULT_PACK_LIMITS } from '../../bundle/pack.js';
import { localPaths } from '../../local/stack.js';
import { LocalResourceStore } from '../../resources/local-store.js';
import { startArtifactServer } from '../../server/artifact-server.js';
import { LocalStatusStore } from '../../status/local-status-store.js';
import type { ArtifactStore } from '../../store/artifact-store.js';
import { FilesystemArtifactStore } from '../../store/fs-store.js';
import { S3ArtifactStore } from '../../store/s3-store.js';
import { redirectPresignedFromFlags, s3OptionsFromFlags, type StoreFlags } from '../store-options.js';
import { installRuntime, openWorkerConnection, startWorker, type RunningWorker, type WorkerRole } from '../../worker.js';
import { workflowCacheSize } from '../../workflow-cache.js';
import { workflowBundleFile } from '../../workflow-bundle.js';
import { createLogger } from '../../observability/logger.js';
import { startMetricsServer } from '../../observability/metrics.js';
import { Readiness, temporalCheck } from '../../observability/health.js';
import { connectClient } from '../../client.js';
import { ArenaSourceController } from '../../controller/controller.js';
import { loadKubeClients } from '../../kube/config.js';
import { VersionApi } from '@kubernetes/client-node';
import { KubeResourceReader } from '../../resources/kube-reader.js';
import { KubeStatusSink } from '../../status/kube-status-sink.js';
import { parseTtl, type RetentionPolicy } from '../../store/retention.js';
import { DEFAULTS, env, globalOptions, temporalSettingsFrom, type GlobalOptions } from '../config.js';
import { describeTemporal } from '../../temporal/settings.js';
import { ContentVolume } from '../../content/content-volume.js';
import { exitWhenDone, exitWithin, whenSignalled } from '../shutdown.js';
import { optionDefault } from '../options.js';
import { createWebhookReceiver, startWebhookServer } from '../../webhooks/receiver.js';
import { loadWebhookSecret } from '../../webhooks/secret.js';

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


export interface MetricsFlags {
  metricsHost?: string;
  metricsPort?: number;
}

/**
 * /metrics, /healthz and /readyz of a long-running process; `--metrics-port 0` picks a
 * free port, a negative one disables them.
 */
async function startMetrics(flags: MetricsFlags, defaultPort: number, readiness: Readiness) {
  const port = flags.metricsPort ?? defaultPort;
  if (port < 0) return undefined;
  return startMetricsServer(flags.metricsHost ?? '127.0.0.1', port, readiness);
}

/** After the grace time, the worker gives cancelled activities 10 s; this is the margin beyond. */
const WORKER_EXIT_MARGIN_MS = 20_000;
/** The controller's whole shutdown: in-flight reconciles get 5 s of it. */
const CONTROLLER_SHUTDOWN_MS = 10_000;

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
  // --max-cached-workflows, else sized from the pod's memory (cgroup v2 memory.max).
  const cache = role === 'activities' ? undefined : workflowCacheSize(flags.maxCachedWorkflows);
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
    ...(cache ? { maxCachedWorkflows: cache.maxCachedWorkflows } : {}),
    deps: {
      store: artifactStore(flags, paths.artifacts).store,
      artifactBaseUrl,
      ...backends(flags, paths),
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
  // The SDK has read the bundle file by now (the build's own stays).
  if (bundle?.owned) await rm(bundle.codePath, { force: true });
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
      ...(cache ? { maxCachedWorkflows: cache.maxCachedWorkflows, cacheSizedFrom: cache.from } : {}),
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
  await connection.close();
  await metrics?.close();
  log.info('worker stopped');
  exitWhenDone();
}

/** <data-dir>/artifacts, or an S3 bucket with --store s3 (ARENA_SOURCE_STORE=s3). */
function artifactStore(flags: StoreFlags, fsRoot: string): { store: ArtifactStore; where: string } {
  const s3 = s3OptionsFromFlags(flags);
  if (s3 === null) return { store: new FilesystemArtifactStore(fsRoot), where: fsRoot };
  const store = new S3ArtifactStore(s3);
  return { store, where: store.location };
}

/** Local files, or the API server when the worker runs for a cluster. */
function backends(flags: WorkerFlags, paths: ReturnType<typeof localPaths>) {
  if (!flags.kubernetes) {
    return { statusSink: new LocalStatusStore(paths.status), resources: new LocalResourceStore(paths.resources) };
  }
  const kube = loadKubeClients(flags.kubeconfig);
  return { statusSink: new KubeStatusSink(kube), resources: new KubeResourceReader(kube) };
}

export interface ControllerFlags extends Partial<GlobalOptions>, MetricsFlags {
  kubeconfig?: string;
  watchNamespaces?: string;
  resyncSeconds?: number;
  reconcileWorkers?: number;
}

export async function controllerCommand(flags: ControllerFlags): Promise<void> {
  const opts = globalOptions(flags);
  const log = createLogger();
  const readiness = new Readiness();
  const metrics = await startMetrics(flags, 9465, readiness);
  const temporal = temporalSettingsFrom(flags);
  const client = await connectClient(temporal, { warn: (m) => log.warn(m) }).catch(async (err) => {
    await metrics?.close();
    throw err;
  });
  log.info({ temporal: describeTemporal(temporal) }, 'connected to Temporal');
  const namespaces = (flags.watchNamespaces ?? '')
    .split(',')
    .map((n) => n.trim())
    .filter(Boolean);
  const kube = loadKubeClients(flags.kubeconfig);
  const controller = new ArenaSourceController({
    kube,
    client,
    taskQueue: opts.taskQueue,
    namespaces,
    ...(flags.resyncSeconds ? { resyncMs: flags.resyncSeconds * 1000 } : {}),
    ...(flags.reconcileWorkers ? { workers: flags.reconcileWorkers } : {}),
    log: (message) => log.info(message),
  });
  const signalled = whenSignalled();
  // Bounded from the signal on, even if it comes while the informers still list.
  void signalled.then(() => {
    readiness.stopping();
    exitWithin(CONTROLLER_SHUTDOWN_MS, (m) => log.error(m));
  });
  await controller.start();
  const version = kube.config.makeApiClient(VersionApi);
  readiness.set({
    temporal: temporalCheck(client.connection),
    kubernetes: async () => void (await version.getCode()),
    informers: async () => {
      const problem = controller.syncProblem();
      if (problem) throw new Error(problem);
    },
  });
  const signal = await signalled;
  log.info({ signal }, 'controller shutting down');
  await controller.stop(CONTROLLER_SHUTDOWN_MS / 2);
  await client.connection.close();
  await metrics?.close();
  log.info('controller stopped');
  exitWhenDone();
}

export interface ServeFlags extends Partial<GlobalOptions>, StoreFlags {
  host?: string;
  port?: number;
  /** The push webhook receiver's secret; unset (or the file absent): no receiver, no Temporal connection. */
  webhookSecretFile?: string;
  /** A port of its own for the receiver (only /hooks/… there); default: the artifact port. */
  webhookPort?: number;
}

export async function serveCommand(flags: ServeFlags): Promise<void> {
  const opts = globalOptions(flags);
  const { store, where } = artifactStore(flags, localPaths(opts.dataDir).artifacts);
  const redirect = redirectPresignedFromFlags(flags);
  const secret = await loadWebhookSecret(flags.webhookSecretFile);
  // The receiver needs Temporal (visibility and signals), never the Kubernetes API.
  const temporal = temporalSettingsFrom(flags);
  const client = secret ? await connectClient(temporal) : undefined;
  const receiver = client && secret ? createWebhookReceiver({ client, secret }) : undefined;
  const host = flags.host ?? DEFAULTS.artifactHost;
  const port = flags.port ?? DEFAULTS.artifactPort;
  const ownPort = flags.webhookPort !== undefined && flags.webhookPort !== port;
  const server = await startArtifactServer(store, {
    host,
    port,
    ...(redirect ? { redirectPresigned: true } : {}),
    ...(receiver && !ownPort ? { webhooks: receiver } : {}),
  });
  const hooks = receiver && ownPort ? await startWebhookServer(receiver, host, flags.webhookPort!) : undefined;
  console.log(`serving artifacts from ${where} at ${server.url}${redirect ? ' (GET redirects to presigned URLs)' : ''}`);
  if (receiver) console.log(`push webhooks at ${hooks?.url ?? server.url}/hooks/{github,gitlab,gitea,generic,registry} (Temporal ${temporal.address})`);
  else if (flags.webhookSecretFile) console.log(`push webhooks off: ${flags.webhookSecretFile} does not exist`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await Promise.all([server.close(), hooks?.close()]);
  await client?.connection.close();
}
