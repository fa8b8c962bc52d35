/**
 * A local Temporal dev server (`temporal server start-dev`) as a child process:
 * for `arena-source dev`, the test runner, tests that restart or kill it, the
 * soak and the bench — one way to start it, with the same settings everywhere.
 *
 * The binary comes from TEMPORAL_CLI_PATH, the cache `.ci/run` and `npm start`
 * build (~/.cache/arena-source/bin) or PATH. Readiness is the namespace
 * answering over gRPC, with a generous deadline: a dev server on a loaded
 * 2-core machine can take longer than the Temporal SDK's fixed 5 s.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { Connection } from '@temporalio/client';
import { DEV_SERVER_FLAGS, SEARCH_ATTRIBUTE_FLAGS } from './server-settings.js';

export const DEFAULT_STARTUP_TIMEOUT_MS = 90_000;

export interface TemporalDevServerOptions {
  /** The `temporal` CLI; default findTemporalCli(). */
  binary?: string;
  ip?: string;
  port: number;
  /** Serve the Web UI on this port; without it the server is headless. */
  uiPort?: number;
  /** SQLite file, so workflows survive a restart; without it everything is in memory. */
  dbFilename?: string;
  /** A namespace to create besides `default`. */
  namespace?: string;
  /** Eager activity execution (DEV_SERVER_FLAGS); default true. */
  eager?: boolean;
  /** How long to wait for the namespace to answer; default 90 s. */
  startupTimeoutMs?: number;
  /** Aborting while starting stops the server and rejects. */
  signal?: AbortSignal;
}

export interface TemporalDevServer {
  address: string;
  uiUrl?: string;
  binary: string;
  child: ChildProcess;
  /** The last 16 kB the server printed. */
  output(): string;
  /** SIGTERM, then SIGKILL after 10 s. */
  stop(): Promise<void>;
  /** SIGKILL at once, as when a node dies. */
  kill(): Promise<void>;
}

export function findTemporalCli(): string | undefined {
  const candidates = [
    process.env.TEMPORAL_CLI_PATH,
    join(homedir(), '.cache', 'arena-source', 'bin', 'temporal'),
    ...(process.env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, 'temporal')),
  ];
  for (const candidate of candidates) {
    if (!candidate) continue;
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // try the next one
    }
  }
  return undefined;
}

export async function startTemporalDevServer(opts: TemporalDevServerOptions): Promise<TemporalDevServer> {
  const binary = opts.binary ?? findTemporalCli();
  if (!binary) {
    throw new Error(
      'the `temporal` CLI was not found (TEMPORAL_CLI_PATH, ~/.cache/arena-source/bin/temporal, PATH): ' +
        '`bash scripts/ensure-tools.sh` builds it from its Go module',
    );
  }
  const ip = opts.ip ?? '127.0.0.1';
  const namespace = opts.namespace ?? 'default';
  const args = [
    'server', 'start-dev', '--ip', ip, '--port', String(opts.port),
    ...(opts.uiPort !== undefined ? ['--ui-port', String(opts.uiPort)] : ['--headless']),
    ...(opts.dbFilename !== undefined ? ['--db-filename', opts.dbFilename] : []),
    ...(namespace !== 'default' ? ['--namespace', namespace] : []),
    '--log-level', 'error',
    ...SEARCH_ATTRIBUTE_FLAGS,
    ...(opts.eager === false ? [] : DEV_SERVER_FLAGS),
  ];
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d: Buffer | string) => (out = (out + d.toString()).slice(-16_000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  child.on('error', (err) => keep(`cannot start ${binary}: ${err.message}\n`));
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const signal = async (sig: NodeJS.Signals, forceAfterMs?: number) => {
    if (child.pid === undefined) return;
    if (running(child)) child.kill(sig);
    const force = forceAfterMs !== undefined ? setTimeout(() => child.kill('SIGKILL'), forceAfterMs) : undefined;
    await exited;
    clearTimeout(force);
  };
  const server: TemporalDevServer = {
    address: `${ip}:${opts.port}`,
    ...(opts.uiPort !== undefined ? { uiUrl: `http://${ip}:${opts.uiPort}` } : {}),
    binary,
    child,
    output: () => out,
    stop: () => signal('SIGTERM', 10_000),
    kill: () => signal('SIGKILL'),
  };
  try {
    await waitUntilServing(server, namespace, opts.startupTimeoutMs ?? DEFAULT_STARTUP_TIMEOUT_MS, opts.signal);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}

function running(child: ChildProcess): boolean {
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null;
}

async function waitUntilServing(server: TemporalDevServer, namespace: string, timeoutMs: number, abort?: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    if (abort?.aborted) throw new Error('interrupted while the Temporal dev server was starting');
    if (!running(server.child)) {
      throw new Error(`the Temporal dev server exited while starting:\n${server.output().trim()}`);
    }
    try {
      const conn = await Connection.connect({ address: server.address, connectTimeout: 2_000 });
      try {
        await conn.workflowService.describeNamespace({ namespace });
        return;
      } finally {
        await conn.close();
      }
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) {
      throw new Error(`the Temporal dev server at ${server.address} did not answer within ${timeoutMs} ms (${last}):\n${server.output().trim()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
