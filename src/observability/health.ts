/**
 * Probes of the long-running processes, served next to /metrics: /healthz answers
 * whenever the event loop does (liveness); /readyz runs the process's named checks,
 * each bounded by a timeout, and answers 503 naming the failing ones until all pass
 * (readiness). Before the checks are set the process is starting; once it begins
 * shutting down it stays unready.
 */

/** Resolves when the dependency is usable; rejects with why not. */
export type ReadinessCheck = () => Promise<void>;

export interface ReadinessReport {
  ready: boolean;
  /** One line per check: `ok <name>` or `failed <name>: <reason>`. */
  text: string;
}

const CHECK_TIMEOUT_MS = 3_000;

export class Readiness {
  private checks?: Record<string, ReadinessCheck>;
  private stoppingSince?: string;

  /** The checks that must all pass; until this is called the process reports `starting`. */
  set(checks: Record<string, ReadinessCheck>): void {
    this.checks = checks;
  }

  /** From now on unready: the process is draining and should get no new work. */
  stopping(reason = 'shutting down'): void {
    this.stoppingSince ??= reason;
  }

  async report(): Promise<ReadinessReport> {
    if (this.stoppingSince) return { ready: false, text: `${this.stoppingSince}\n` };
    if (!this.checks) return { ready: false, text: 'starting\n' };
    const results = await Promise.all(
      Object.entries(this.checks).map(async ([name, check]) => {
        try {
          await withTimeout(check(), CHECK_TIMEOUT_MS);
          return { ok: true, line: `ok ${name}` };
        } catch (err) {
          return { ok: false, line: `failed ${name}: ${(err as Error)?.message ?? String(err)}` };
        }
      }),
    );
    return { ready: results.every((r) => r.ok), text: results.map((r) => r.line).join('\n') + '\n' };
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms}ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A Temporal connection (client or worker side) that can be asked for its server's info. */
export interface TemporalPingable {
  withDeadline<R>(deadline: number | Date, fn: () => Promise<R>): Promise<R>;
  workflowService: { getSystemInfo(request: object): Promise<unknown> };
}

/** Readiness check: the Temporal frontend answers GetSystemInfo on this connection. */
export function temporalCheck(connection: TemporalPingable): ReadinessCheck {
  return async () => {
    await connection.withDeadline(Date.now() + CHECK_TIMEOUT_MS, () => connection.workflowService.getSystemInfo({}));
  };
}
