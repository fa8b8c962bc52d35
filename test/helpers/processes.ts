/** Child processes the fault tests start, stop and kill: `arena-source` commands and a Temporal dev server. */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { resolve } from 'node:path';
import { findTemporalCli } from '../../src/dev/temporal-server.js';
import { DEV_SERVER_FLAGS, SEARCH_ATTRIBUTE_FLAGS } from '../../src/dev/server-settings.js';
import { waitFor } from './wait.js';
import { freePort } from '../../src/devgit/free-port.js';
export { freePort };

export const BIN = resolve('bin/arena-source.js');


export interface Proc {
  child: ChildProcess;
  output(): string;
  /** SIGKILL: no cleanup, as when a node dies. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

export function startProcess(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out = (out + d).slice(-200_000)));
  child.stderr!.on('data', (d) => (out = (out + d).slice(-200_000)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const signal = async (sig: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    await exited;
  };
  return { child, output: () => out, kill: () => signal('SIGKILL'), stop: () => signal('SIGTERM') };
}

export function startCli(args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  return startProcess('node', [BIN, ...args], { ARENA_SOURCE_LOG_LEVEL: 'info', ...env });
}

/** A Temporal dev server this test owns (so it can restart it), persisted in `dbFile`. */
export async function startTemporal(port: number, dbFile: string): Promise<Proc> {
  const bin = findTemporalCli();
  if (!bin) throw new Error('temporal CLI not found (run scripts/ensure-tools.sh)');
  const proc = startProcess(bin, [
    'server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--headless', '--log-level', 'error',
    '--db-filename', dbFile, ...SEARCH_ATTRIBUTE_FLAGS,
    ...DEV_SERVER_FLAGS,
  ]);
  await waitFor('temporal port open', () => portOpen(port), (open) => open, 60_000, 200);
  return proc;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), res(true)));
    s.once('error', () => res(false));
  });
}
