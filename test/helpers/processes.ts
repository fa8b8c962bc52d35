/** Child processes the fault tests start, stop and kill: `arena-source` commands. */
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { freePort } from './free-port.js';
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

/** The JSON lines (pino) of a process's or pod's log, other lines skipped. */
export function jsonLogLines(text: string): Array<Record<string, any>> {
  return text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, any>);
}
