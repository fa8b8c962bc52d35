/**
 * Prometheus metrics (prom-client) for worker, controller and artifact server,
 * and a tiny /metrics endpoint. Names follow Prometheus conventions; the README
 * lists them with PromQL for the no-op ratio.
 */
import http from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Readiness } from './health.js';

export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'arena_source_process_' });

const DURATION_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export const cyclesTotal = new Counter({
  name: 'arena_source_cycles_total',
  help: 'Reconcile cycles finished, by result (fetched: new fetch+pack+upload; noop: unchanged and verified; failed).',
  labelNames: ['result', 'type'] as const,
  registers: [registry],
});

export const cycleDuration = new Histogram({
  name: 'arena_source_cycle_duration_seconds',
  help: 'Duration of a reconcile cycle, from its start to its final status, by result.',
  labelNames: ['result', 'type'] as const,
  buckets: DURATION_BUCKETS,
  registers: [registry],
});

export const noopRatio = new Gauge({
  name: 'arena_source_noop_ratio',
  help: 'Share of cycles this process saw finish as no-ops (unchanged source), since start.',
  registers: [registry],
});

let cyclesSeen = 0;
let noopsSeen = 0;
/** One finished cycle: counts it, times it, and keeps the no-op ratio current. */
export function recordCycle(result: 'fetched' | 'noop' | 'failed', type: string, seconds: number): void {
  cyclesTotal.inc({ result, type });
  cycleDuration.observe({ result, type }, seconds);
  cyclesSeen += 1;
  if (result === 'noop') noopsSeen += 1;
  noopRatio.set(noopsSeen / cyclesSeen);
}

export const activityDuration = new Histogram({
  name: 'arena_source_activity_duration_seconds',
  help: 'Duration of each activity execution, by activity type and outcome.',
  labelNames: ['activity', 'outcome'] as const,
  buckets: DURATION_BUCKETS,
  registers: [registry],
});

export const artifactBytes = new Histogram({
  name: 'arena_source_artifact_size_bytes',
  help: 'Size of each artifact uploaded to the store.',
  buckets: [1e3, 1e4, 1e5, 1e6, 1e7, 1e8],
  registers: [registry],
});

/** Set once at start: what an operator sizing a worker needs to see (README, worker sizing). */
export const workflowCacheMax = new Gauge({
  name: 'arena_source_worker_cached_workflows_max',
  help: 'The most source workflows this worker may keep cached (--max-cached-workflows, else from its memory), and where the number came from.',
  labelNames: ['from'] as const,
  registers: [registry],
});

/** The cache in force, and why (src/workflow-cache-advisor.ts): it moves between the two bounds. */
export const workflowCacheSizeNow = new Gauge({
  name: 'arena_source_worker_cached_workflows',
  help: 'The workflow cache size in force: --min-cached-workflows, or the maximum while the sources this worker runs fit in it and the replays it saves are worth it.',
  registers: [registry],
});

export const workflowCacheSavings = new Gauge({
  name: 'arena_source_worker_cache_replays_saved_per_second',
  help: 'At the last cache review: replays a second the largest cache would save over the smallest, for the cycles this worker ran.',
  registers: [registry],
});

export const workflowCacheResizes = new Counter({
  name: 'arena_source_worker_cache_resizes_total',
  help: 'Times the worker replaced its workflow cache with one of the other bound (direction grow or shrink).',
  labelNames: ['direction'] as const,
  registers: [registry],
});

export const sourcesByPhase = new Gauge({
  name: 'arena_source_sources',
  help: 'Sources by phase, as last reported through this process.',
  labelNames: ['phase'] as const,
  registers: [registry],
});

export const controllerReconciles = new Counter({
  name: 'arena_source_controller_reconciles_total',
  help: 'Resources the controller reconciled, by result.',
  labelNames: ['result'] as const,
  registers: [registry],
});

export const artifactRequests = new Counter({
  name: 'arena_source_artifact_requests_total',
  help: 'Artifact server responses by method and status code.',
  labelNames: ['method', 'code'] as const,
  registers: [registry],
});

export const webhookDeliveries = new Counter({
  name: 'arena_source_webhook_deliveries_total',
  help: 'Push webhook deliveries by sender (github, gitlab, gitea, generic, registry) and status code.',
  labelNames: ['sender', 'code'] as const,
  registers: [registry],
});

export const webhookSourcesWoken = new Counter({
  name: 'arena_source_webhook_sources_woken_total',
  help: 'Reconcile signals sent to sources by push webhooks.',
  registers: [registry],
});

/** Tracks the last phase per source so sourcesByPhase is a count of sources, not of reports. */
const phases = new Map<string, string>();
export function recordPhase(key: string, phase: string | undefined): void {
  if (!phase) return;
  const previous = phases.get(key);
  if (previous === phase) return;
  if (previous) sourcesByPhase.dec({ phase: previous });
  sourcesByPhase.inc({ phase });
  phases.set(key, phase);
}
export function forgetSource(key: string): void {
  const previous = phases.get(key);
  if (previous) sourcesByPhase.dec({ phase: previous });
  phases.delete(key);
}

/**
 * The HTTP endpoint of a long-running process: /metrics, and with `readiness` also the
 * Kubernetes probes /healthz (liveness) and /readyz (src/observability/health.ts).
 */
export async function startMetricsServer(
  host: string,
  port: number,
  readiness?: Readiness,
): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const text = (code: number, body: string) => res.writeHead(code, { 'Content-Type': 'text/plain; charset=utf-8' }).end(body);
    if (path === '/metrics') {
      registry
        .metrics()
        .then((body) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(body))
        .catch((err: Error) => text(500, err.message));
    } else if (readiness && path === '/healthz') {
      text(200, 'ok\n');
    } else if (readiness && path === '/readyz') {
      readiness
        .report()
        .then((r) => text(r.ready ? 200 : 503, r.text))
        .catch((err: Error) => text(503, err.message));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  const address = server.address() as { port: number };
  return {
    url: `http://${host}:${address.port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Probes and scrapes keep connections alive; a closing process does not wait for them.
        server.closeAllConnections();
      }),
  };
}
