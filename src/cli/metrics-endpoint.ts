/** The /metrics, /healthz and /readyz endpoint of the long-running commands (worker, controller). */
import { startMetricsServer } from '../observability/metrics.js';
import type { Readiness } from '../observability/health.js';

export interface MetricsFlags {
  metricsHost?: string;
  metricsPort?: number;
}

/**
 * /metrics, /healthz and /readyz of a long-running process; `--metrics-port 0` picks a
 * free port, a negative one disables them.
 */
export async function startMetrics(flags: MetricsFlags, defaultPort: number, readiness: Readiness) {
  const port = flags.metricsPort ?? defaultPort;
  if (port < 0) return undefined;
  return startMetricsServer(flags.metricsHost ?? '127.0.0.1', port, readiness);
}
