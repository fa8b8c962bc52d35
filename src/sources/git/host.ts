/**
 * Where git processes are started from: a small Node process of ours, not the
 * worker. Starting a process copies the page tables of the one that starts it
 * while its event loop waits (libuv forks on Linux), and a worker holding many
 * cached workflows is big: measured on a 2-core VM, a 1.3 GiB process had its
 * event loop blocked 63-117 ms per git process started from itself, 1-10 ms
 * with this host (~55 MiB). Small workers do not remove the reason: README
 * benchmark 6 measured 25 ms p50 per spawn from a 163 MiB process (an idle
 * `--role activities` worker is 179 MiB) against 1.8 ms from a 48 MiB one.
 * simple-git cannot start git from another process,
 * so it runs in the host (host-main.ts), which gets each request (arguments and
 * environment, built by the worker) over its IPC channel. If the host cannot be
 * started, git runs from the worker itself.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runGit, type GitReply, type GitRequest } from './run.js';

const ENTRY = fileURLToPath(new URL('./host-main.js', import.meta.url));

class GitHost {
  private child: ChildProcess | undefined;
  private ready: Promise<boolean> | undefined;
  private readonly pending = new Map<number, (reply: GitReply) => void>();
  private seq = 0;
  /** A host never came up (say, host-main.js is missing): stop trying. */
  private broken = false;

  async run(req: GitRequest): Promise<GitReply> {
    const child = (await this.start()) ? this.child : undefined;
    if (!child?.connected) return runGit(req);
    const id = ++this.seq;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      child.channel?.ref();
      child.send({ id, req }, (err) => {
        if (err) this.settle(id, { ok: false, message: `git host: ${err.message}`, timedOut: false });
      });
    });
  }

  private settle(id: number, reply: GitReply): void {
    const resolve = this.pending.get(id);
    if (!resolve) return;
    this.pending.delete(id);
    if (this.pending.size === 0) this.child?.channel?.unref();
    resolve(reply);
  }

  /** Resolves true once a host is listening; false if none could be started. */
  private start(): Promise<boolean> {
    if (this.broken) return Promise.resolve(false);
    if (this.ready && this.child?.connected) return this.ready;
    let child: ChildProcess;
    try {
      // No inherited execArgv (heap limits, inspector); stdout unused, stderr kept for crashes.
      child = fork(ENTRY, [], { execArgv: [], stdio: ['ignore', 'ignore', 'inherit', 'ipc'], env: { PATH: process.env.PATH ?? '' } });
    } catch {
      return Promise.resolve(false);
    }
    this.child = child;
    let up = false;
    this.ready = new Promise<boolean>((resolve) => {
      child.on('message', (m: { ready?: boolean; id?: number; reply?: GitReply }) => {
        if (m.ready) {
          up = true;
          resolve(true);
          // Its channel keeps this process alive only while a request is out.
          if (this.pending.size === 0) child.channel?.unref();
        } else if (m.id !== undefined && m.reply) this.settle(m.id, m.reply);
      });
      const gone = () => {
        if (!up) this.broken = true;
        resolve(false);
        if (this.child === child) this.child = undefined;
        for (const id of [...this.pending.keys()]) this.settle(id, { ok: false, message: 'the git host process exited', timedOut: false });
      };
      child.once('exit', gone);
      child.once('error', gone);
    });
    child.unref();
    return this.ready;
  }
}

const host = new GitHost();

/** Runs one git process from the host process (or, without one, from here). */
export function runGitInHost(req: GitRequest): Promise<GitReply> {
  return host.run(req);
}
