/**
 * The embedded default, minus the Temporal server: a filesystem artifact store,
 * the artifact server in front of it, the workspace content volume (a local
 * directory), local ConfigMaps/Secrets/Namespaces and status, one
 * worker and a client. `arena-source dev` runs it; the tests run it too, so they
 * exercise exactly what a new user starts.
 */
import type { Client } from '@temporalio/client';
import { localPaths } from './paths.js';
import { DEFAULT_PACK_LIMITS, type PackLimits } from '../bundle/pack.js';
import { connectClient } from '../client.js';
import { LocalResourceStore } from '../resources/local-store.js';
import { startArtifactServer, type RunningArtifactServer } from '../server/artifact-server.js';
import { LocalStatusStore } from '../status/local-status-store.js';
import type { StatusSink } from '../status/types.js';
import type { ResourceReader } from '../resources/types.js';
import type { ArtifactStore } from '../store/artifact-store.js';
import { FilesystemArtifactStore } from '../store/fs-store.js';
import { ContentVolume } from '../content/content-volume.js';
import type { ActivityDeps } from '../../activities/deps.js';
import { openWorkerConnection, startWorker, type AdaptiveCache, type RunningWorker } from '../worker.js';
import { createWebhookReceiver, type WebhookReceiverOptions } from '../webhooks/receiver.js';
import type { WorkerConnection } from '../temporal/worker-connection.js';
import { plainSettings, type TemporalSettings } from '../temporal/settings.js';

export interface LocalStackOptions {
  dataDir: string;
  temporalAddress: string;
  temporalNamespace?: string;
  /** Full connection settings (TLS, API key) of an external Temporal; default plaintext to temporalAddress. */
  temporal?: TemporalSettings;
  taskQueue: string;
  artifactHost?: string;
  artifactPort?: number;
  /** Public base URL of artifacts, when the server is reached through another address. */
  artifactBaseUrl?: string;
  packLimits?: Partial<PackLimits>;
  retention?: ActivityDeps['retention'];
  /** Start no worker (e.g. when workers run elsewhere). */
  noWorker?: boolean;
  /** Other backends for the worker (e.g. the API server's ConfigMaps/Secrets and status subresource). */
  backends?: { statusSink: StatusSink; resources: ResourceReader };
  /** Artifact store of the worker and the artifact server instead of <dataDir>/artifacts (e.g. an S3 store). */
  store?: ArtifactStore;
  /** Omnia's workspace content volume; default <dataDir>/workspace-content. */
  contentRoot?: string;
  /** Content versions kept per source (default 10). */
  contentKeep?: number;
  /** Run the push webhook receiver on the artifact server's port (/hooks/…) with this secret. */
  webhooks?: Omit<WebhookReceiverOptions, 'client'>;
  /** The worker's adaptive workflow cache (as `worker` runs it); unset: the SDK's fixed default. */
  workflowCache?: AdaptiveCache;
}

export interface LocalStack {
  client: Client;
  /** The filesystem store under <dataDir>/artifacts (unused when opts.store is given). */
  store: FilesystemArtifactStore;
  /** The store the worker and the artifact server use: opts.store, else `store`. */
  artifactStore: ArtifactStore;
  resources: LocalResourceStore;
  statuses: LocalStatusStore;
  /** The workspace content volume the worker writes versions to. */
  content: ContentVolume;
  artifactServer: RunningArtifactServer;
  worker?: RunningWorker;
  /** Starts one more worker process-equivalent on the same queue (for tests of several workers). */
  addWorker(): Promise<RunningWorker>;
  close(): Promise<void>;
}

export async function startLocalStack(opts: LocalStackOptions): Promise<LocalStack> {
  const paths = localPaths(opts.dataDir);
  const temporal = opts.temporal ?? plainSettings(opts.temporalAddress, opts.temporalNamespace);
  const namespace = temporal.namespace;
  const store = new FilesystemArtifactStore(paths.artifacts);
  const artifactStore = opts.store ?? store;
  const resources = new LocalResourceStore(paths.resources);
  const statuses = new LocalStatusStore(paths.status);
  const content = new ContentVolume(opts.contentRoot ?? paths.content, {
    ...(opts.contentKeep !== undefined ? { keep: opts.contentKeep } : {}),
    ...(opts.retention?.ttlMs !== undefined ? { ttlMs: opts.retention.ttlMs } : {}),
  });
  const client = await connectClient(temporal);
  const artifactServer = await startArtifactServer(artifactStore, {
    host: opts.artifactHost ?? '127.0.0.1',
    port: opts.artifactPort ?? 0,
    ...(opts.webhooks ? { webhooks: createWebhookReceiver({ ...opts.webhooks, client }) } : {}),
  });
  const connections: WorkerConnection[] = [];
  const workers: RunningWorker[] = [];

  async function addWorker(): Promise<RunningWorker> {
    const connection = await openWorkerConnection(temporal);
    connections.push(connection);
    const worker = await startWorker({
      connection,
      namespace,
      taskQueue: opts.taskQueue,
      workRoot: paths.work,
      ...(opts.workflowCache ? { workflowCache: opts.workflowCache } : {}),
      deps: {
        store: artifactStore,
        artifactBaseUrl: opts.artifactBaseUrl ?? artifactServer.url,
        statusSink: opts.backends?.statusSink ?? statuses,
        resources: opts.backends?.resources ?? resources,
        packLimits: { ...DEFAULT_PACK_LIMITS, ...opts.packLimits },
        ...(opts.retention ? { retention: opts.retention } : {}),
        content,
      },
    });
    workers.push(worker);
    return worker;
  }

  const worker = opts.noWorker ? undefined : await addWorker();
  return {
    client,
    store,
    artifactStore,
    resources,
    statuses,
    content,
    artifactServer,
    ...(worker ? { worker } : {}),
    addWorker,
    async close() {
      await Promise.allSettled(workers.map((w) => w.shutdown()));
      await Promise.allSettled(connections.map((c) => c.close()));
      await client.connection.close();
      await artifactServer.close();
    },
  };
}
