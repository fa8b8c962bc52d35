/**
 * `gitExec`: one git command with our environment and settings, from a helper
 * process; its stdout, or the typed error of classifyGitError with git's own
 * message. Credentials arrive in `env` from the caller (auth.ts), never in URLs
 * or argv, so they cannot leak into process lists.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { classifyGitError } from './errors.js';

export interface GitOptions {
  /** The git binary (default: `git` on PATH). */
  binary?: string;
  /** Extra environment for git (credential helpers, ssh command); values are never logged. */
  env?: Record<string, string>;
  timeoutMs: number;
}

/** The environment variables we set for git. */
const BASE_ENV: Record<string, string> = {
  GIT_TERMINAL_PROMPT: '0', // never wait for a password on a tty
  GIT_ASKPASS: 'true', // an empty answer fails fast instead of hanging
  GCM_INTERACTIVE: 'never',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_SSH_COMMAND: 'ssh -o BatchMode=yes',
};

/** Config for every git process started here: no background maintenance, no fsync of throwaway data, packs kept as packs. */
const FAST_CONFIG = ['gc.auto=0', 'maintenance.auto=false', 'core.fsync=none', 'fetch.unpackLimit=1', 'fetch.showForcedUpdates=false', 'advice.detachedHead=false'];

export interface ExecOptions {
  /** Extra `-c key=value` settings. */
  config?: string[];
  /** Written to git's stdin. */
  input?: string;
}

/** The environment of every git process: ours, then the caller's (credentials), over the worker's. */
function gitEnv(opts: GitOptions): Record<string, string> {
  return { ...process.env, ...BASE_ENV, ...(opts.env ?? {}) } as Record<string, string>;
}

/**
 * Runs one git process in `cwd` with our environment (credentials included) and
 * returns its stdout; failures become the typed errors of classifyGitError, with
 * git's own message.
 */
export async function gitExec(cwd: string | undefined, args: string[], opts: GitOptions, url: string, exec: ExecOptions = {}): Promise<string> {
  const request: SpawnRequest = {
    file: opts.binary ?? 'git',
    args: [...[...FAST_CONFIG, ...(exec.config ?? [])].flatMap((c) => ['-c', c]), ...args],
    ...(cwd !== undefined ? { cwd } : {}),
    env: gitEnv(opts),
    input: exec.input ?? '',
    timeoutMs: opts.timeoutMs,
  };
  let result: SpawnResult;
  try {
    result = await spawner.run(request);
  } catch (err) {
    throw classifyGitError(err, url);
  }
  if (result.timedOut) throw classifyGitError(new Error(`git ${args[0] ?? ''} timed out after ${opts.timeoutMs} ms`), url);
  if (result.code !== 0) throw classifyGitError(new Error(result.stderr.trim() || `git ${args[0] ?? ''} exited with ${result.code ?? result.signal}`), url);
  return Buffer.from(result.stdout).toString('utf8');
}

interface SpawnRequest {
  file: string;
  args: string[];
  cwd?: string;
  env: Record<string, string>;
  input: string;
  timeoutMs: number;
}

interface SpawnResult {
  code: number | null;
  signal: string | null;
  timedOut: boolean;
  stdout: Uint8Array;
  stderr: string;
}

/** Starts one process and collects its output; the same code runs in the helper below. */
function spawnCollect(req: SpawnRequest, done: (err: Error | null, result?: SpawnResult) => void): void {
  const child = spawn(req.file, req.args, { cwd: req.cwd, env: req.env, stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  let err = '';
  let timedOut = false;
  let finished = false;
  const finish = (e: Error | null, r?: SpawnResult) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    done(e, r);
  };
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, req.timeoutMs);
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    if (err.length < 64 * 1024) err += d;
  });
  child.stdin.on('error', () => undefined); // git may exit before reading its input
  child.once('error', (e) => finish(e));
  child.once('close', (code, signal) => finish(null, { code, signal, timedOut, stdout: Buffer.concat(out), stderr: err }));
  child.stdin.end(req.input);
}

/**
 * The helper process git is started from. Starting a process from a big one
 * copies its page tables while its event loop waits: a worker holding a thousand
 * cached workflows (~1 GiB) spends 15-60 ms of blocked time per git process on a
 * VM, the ~40 MiB helper ~4 ms. It starts only what it is sent over its private
 * IPC channel (the binary, arguments and environment built here), and exits with
 * the worker. ARENA_SOURCE_GIT_SPAWNER=off starts git from the worker itself.
 */
const HELPER_SOURCE = `
const { spawn } = require('node:child_process');
${spawnCollect.toString()}
process.on('disconnect', () => process.exit(0));
process.on('message', (m) => {
  spawnCollect(m.req, (err, result) => {
    if (process.connected) process.send(err ? { id: m.id, error: String(err && err.message) } : { id: m.id, result });
  });
});
`;

class Spawner {
  private helper: ChildProcess | undefined;
  private readonly pending = new Map<number, { resolve: (r: SpawnResult) => void; reject: (e: Error) => void }>();
  private seq = 0;

  run(req: SpawnRequest): Promise<SpawnResult> {
    const helper = /^(off|false|0|no)$/i.test(process.env.ARENA_SOURCE_GIT_SPAWNER ?? '') ? undefined : this.ensure();
    if (!helper) {
      return new Promise((resolve, reject) => spawnCollect(req, (err, result) => (err ? reject(err) : resolve(result!))));
    }
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      helper.channel?.ref();
      helper.send({ id, req }, (err) => {
        if (err) this.settle(id, err);
      });
    });
  }

  private settle(id: number, err: Error | null, result?: SpawnResult): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (this.pending.size === 0) this.helper?.channel?.unref();
    if (err) p.reject(err);
    else p.resolve(result!);
  }

  private ensure(): ChildProcess | undefined {
    if (this.helper?.connected) return this.helper;
    try {
      const helper = spawn(process.execPath, ['-e', HELPER_SOURCE], {
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
        serialization: 'advanced',
        env: { PATH: process.env.PATH ?? '' },
      });
      helper.on('message', (m: { id: number; error?: string; result?: SpawnResult }) =>
        this.settle(m.id, m.error !== undefined ? new Error(m.error) : null, m.result),
      );
      const gone = () => {
        if (this.helper === helper) this.helper = undefined;
        for (const id of [...this.pending.keys()]) this.settle(id, new Error('the git helper process exited'));
      };
      helper.once('exit', gone);
      helper.once('error', gone);
      helper.unref();
      helper.channel?.unref();
      this.helper = helper;
      return helper;
    } catch {
      return undefined;
    }
  }
}

const spawner = new Spawner();
