/** `controller`: maps the cluster's ArenaSource resources onto their workflows. */
import { VersionApi } from '../../kube/kubernetes-client.js';
import { connectClient } from '../../client.js';
import { ArenaSourceController } from '../../controller/controller.js';
import { loadKubeClients } from '../../kube/config.js';
import { createLogger } from '../../observability/logger.js';
import { Readiness, temporalCheck } from '../../observability/health.js';
import { describeTemporal } from '../../temporal/settings.js';
import { globalOptions, temporalSettingsFrom, type GlobalOptions } from '../config.js';
import { startMetrics, type MetricsFlags } from '../metrics-endpoint.js';
import { exitWhenDone, exitWithin, whenSignalled } from '../shutdown.js';

/** The controller's whole shutdown: in-flight reconciles get 5 s of it. */
const CONTROLLER_SHUTDOWN_MS = 10_000;

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
