/** `worker` and `serve`: the long-running processes of a deployment, local backends. */
import { DEFAULT_PACK_LIMITS } from '../../bundle/pack.js';
import { localPaths } from '../../local/stack.js';
import { LocalResourceStore } from '../../resources/local-store.js';
import { startArtifactServer } from '../../server/artifact-server.js';
import { LocalStatusStore } from '../../status/local-status-store.js';
import { FilesystemArtifactStore } from '../../store/fs-store.js';
import { connectWorker, startWorker } from '../../worker.js';
import { DEFAULTS, env, globalOptions, type GlobalOptions } from '../config.js';

export interface WorkerFlags extends Partial<GlobalOptions> {
  artifactBaseUrl?: string;
  maxBundleBytes?: number;
  maxBundleFiles?: number;
  workDir?: string;
  concurrency?: number;
}

export async function workerCommand(flags: WorkerFlags): Promise<void> {
  const opts = globalOptions(flags);
  const paths = localPaths(opts.dataDir);
  const artifactBaseUrl =
    flags.artifactBaseUrl ?? env('ARENA_SOURCE_ARTIFACT_BASE_URL') ?? `http://${DEFAULTS.artifactHost}:${DEFAULTS.artifactPort}`;
  const connection = await connectWorker(opts.temporalAddress);
  const worker = await startWorker({
    connection,
    namespace: opts.temporalNamespace,
    taskQueue: opts.taskQueue,
    workRoot: flags.workDir ?? paths.work,
    ...(flags.concurrency ? { maxConcurrentActivities: flags.concurrency } : {}),
    deps: {
      store: new FilesystemArtifactStore(paths.artifacts),
      artifactBaseUrl,
      statusSink: new LocalStatusStore(paths.status),
      resources: new LocalResourceStore(paths.resources),
      packLimits: {
        maxBytes: flags.maxBundleBytes ?? DEFAULT_PACK_LIMITS.maxBytes,
        maxFiles: flags.maxBundleFiles ?? DEFAULT_PACK_LIMITS.maxFiles,
      },
    },
  });
  console.log(`worker polling ${opts.taskQueue} (and ${worker.workerQueue}) on ${opts.temporalAddress}; artifacts at ${artifactBaseUrl}`);
  const stop = () => void worker.shutdown();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await worker.done;
  await connection.close();
}

export interface ServeFlags extends Partial<GlobalOptions> {
  host?: string;
  port?: number;
}

export async function serveCommand(flags: ServeFlags): Promise<void> {
  const opts = globalOptions(flags);
  const server = await startArtifactServer(new FilesystemArtifactStore(localPaths(opts.dataDir).artifacts), {
    host: flags.host ?? DEFAULTS.artifactHost,
    port: flags.port ?? DEFAULTS.artifactPort,
  });
  console.log(`serving artifacts from ${localPaths(opts.dataDir).artifacts} at ${server.url}`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
}
