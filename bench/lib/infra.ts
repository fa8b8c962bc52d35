/**
 * What the benchmarks run against: the project's real git smart-HTTP server
 * behind a byte-counting TCP proxy, a git process counter (GIT_TRACE2_EVENT sees
 * every git process, children included), a Temporal dev server of our own, and
 * the worker as a separate process (`node bin/arena-source.js worker`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Client } from '@temporalio/client';
import { startTemporalDevServer } from '../../src/dev/temporal-server.js';
import { createMemoryCgroup } from '../../test/helpers/cgroup.js';
import { freePort } from '../../test/helpers/free-port.js';
import { GitHttpServer, type GitRepoStats } from '../../src/dev/demo-git/git-http-server.js';
import { IMAGE_ENV } from './image-env.js';
import { fmtBytes, log, sleep } from './util.js';

export { freePort };

/** Forwards TCP to `target` and counts bytes each way. */
export class CountingProxy {
  bytesUp = 0;
  bytesDown = 0;
  connections = 0;
  private readonly sockets = new Set<Socket>();

  private constructor(private readonly server: Server, readonly port: number) {}

  static async start(targetPort: number): Promise<CountingProxy> {
    let self!: CountingProxy;
    const server = createServer((client) => {
      self.connections++;
      const upstream = connect(targetPort, '127.0.0.1');
      // No Nagle: a proxy that holds small writes back meets the peer's delayed ACK (+40 ms a request).
      client.setNoDelay(true);
      upstream.setNoDelay(true);
      self.sockets.add(client);
      self.sockets.add(upstream);
      client.on('data', (d: Buffer) => {
        self.bytesUp += d.length;
        if (!upstream.write(d)) client.pause();
      });
      upstream.on('drain', () => client.resume());
      upstream.on('data', (d: Buffer) => {
        self.bytesDown += d.length;
        if (!client.write(d)) upstream.pause();
      });
      client.on('drain', () => upstream.resume());
      const close = () => {
        client.destroy();
        upstream.destroy();
        self.sockets.delete(client);
        self.sockets.delete(upstream);
      };
      client.on('end', () => upstream.end());
      upstream.on('end', () => client.end());
      client.on('error', close);
      upstream.on('error', close);
      client.on('close', close);
      upstream.on('close', close);
    });
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    self = new CountingProxy(server, (server.address() as { port: number }).port);
    return self;
  }

  reset(): void {
    this.bytesUp = 0;
    this.bytesDown = 0;
    this.connections = 0;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((res) => this.server.close(() => res()));
  }
}

export interface GitCounts {
  bytesUp: number;
  bytesDown: number;
  /** HTTP requests the git server answered (ref advertisements, ls-refs, fetches, pushes). */
  requests: number;
  fetches: number;
  lsRefs: number;
  advertisements: number;
}

/** The git HTTP server with its proxy; repositories are reached through the proxy. */
export class GitInfra {
  private readonly repos = new Set<string>();
  private constructor(
    readonly root: string,
    readonly server: GitHttpServer,
    readonly proxy: CountingProxy,
  ) {}

  static async start(root: string): Promise<GitInfra> {
    const server = await GitHttpServer.start({ root });
    const port = Number(new URL(server.url).port);
    const proxy = await CountingProxy.start(port);
    return new GitInfra(root, server, proxy);
  }

  /** Clone URL through the counting proxy. */
  url(repo: string): string {
    this.repos.add(repo);
    return `http://127.0.0.1:${this.proxy.port}/${repo}.git`;
  }

  reset(): void {
    this.proxy.reset();
    this.server.resetStats();
  }

  counts(): GitCounts {
    const sum: GitRepoStats = { advertisements: 0, lsRefs: 0, fetches: 0, pushes: 0 };
    for (const r of this.repos) {
      const s = this.server.stats(r);
      sum.advertisements += s.advertisements;
      sum.lsRefs += s.lsRefs;
      sum.fetches += s.fetches;
      sum.pushes += s.pushes;
    }
    return {
      bytesUp: this.proxy.bytesUp,
      bytesDown: this.proxy.bytesDown,
      requests: sum.advertisements + sum.lsRefs + sum.fetches + sum.pushes,
      fetches: sum.fetches,
      lsRefs: sum.lsRefs,
      advertisements: sum.advertisements,
    };
  }

  async close(): Promise<void> {
    await this.proxy.close();
    await this.server.close();
  }
}

/** Processes this run started, stopped on exit or on a signal (see run.ts). */
export const cleanups = new Set<() => Promise<void>>();

let traceSeq = 0;

/**
 * Runs `fn` with GIT_TRACE2_EVENT set (this process's git children inherit it; the
 * git server's CGI environment was fixed at its start, so server-side processes are
 * not counted) and returns how many git processes started, children included
 * (git remote-http, index-pack, …).
 */
export async function countGitProcesses<T>(fn: () => Promise<T>): Promise<{ value: T; gitProcesses: number }> {
  const file = join(tmpdir(), `bench-trace2-${process.pid}-${traceSeq++}.json`);
  const before = process.env.GIT_TRACE2_EVENT;
  process.env.GIT_TRACE2_EVENT = file;
  try {
    const value = await fn();
    return { value, gitProcesses: await countStarts(file) };
  } finally {
    if (before === undefined) delete process.env.GIT_TRACE2_EVENT;
    else process.env.GIT_TRACE2_EVENT = before;
    await rm(file, { force: true });
  }
}

export async function countStarts(file: string): Promise<number> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.split('\n').filter((l) => l.includes('"event":"start"')).length;
}

export interface TemporalServer {
  address: string;
  pid: number;
  stop(): Promise<void>;
}

/** The dev server (in memory, headless), with the settings `arena-source dev` uses (eager activities) unless `eager` is false. */
export async function startTemporal(eager = true): Promise<TemporalServer> {
  const server = await startTemporalDevServer({ port: await freePort(), eager });
  cleanups.add(server.stop);
  return {
    address: server.address,
    pid: server.child.pid!,
    stop: async () => {
      cleanups.delete(server.stop);
      await server.stop();
    },
  };
}

export interface WorkerProcess {
  pid: number;
  metricsUrl: string;
  output(): string;
  /** When it runs in a memory cgroup: the most the cgroup was charged (RSS and page cache, as the kubelet sees it). */
  cgroupPeakBytes?(): Promise<number | undefined>;
  stop(): Promise<void>;
}

/** `node bin/arena-source.js worker …` as its own process, so /proc shows its CPU and memory alone. */
export async function startWorkerProcess(opts: {
  temporalAddress: string;
  taskQueue: string;
  dataDir: string;
  env?: NodeJS.ProcessEnv;
  concurrency?: number;
  /** More worker flags (e.g. --kubernetes --kubeconfig FILE). */
  args?: string[];
  role?: string;
  /** Run it in a memory cgroup with this limit, as a pod's resources.limits.memory (test/helpers/cgroup.ts). */
  memoryLimitBytes?: number;
}): Promise<WorkerProcess> {
  const metricsPort = await freePort();
  const args = [
    // Node flags NODE_OPTIONS refuses (e.g. BENCH_WORKER_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" to profile the worker).
    ...(process.env.BENCH_WORKER_NODE_ARGS?.split(/\s+/).filter(Boolean) ?? []),
    resolve('bin/arena-source.js'), 'worker',
    '--temporal-address', opts.temporalAddress,
    '--task-queue', opts.taskQueue,
    '--data-dir', opts.dataDir,
    '--artifact-base-url', 'http://127.0.0.1:9/artifacts',
    '--metrics-port', String(metricsPort),
    ...(opts.concurrency ? ['--concurrency', String(opts.concurrency)] : []),
    ...(opts.args ?? []),
    ...(opts.role ? ['--role', opts.role] : []),
  ];
  const cgroup = opts.memoryLimitBytes ? await createMemoryCgroup(`arena-source-bench-${process.pid}-${metricsPort}`, opts.memoryLimitBytes) : undefined;
  const started = cgroup ? cgroup.wrap(process.execPath, args) : { command: process.execPath, args };
  const child = spawn(started.command, started.args, {
    // The allocator as the image sets it (deploy/Dockerfile).
    env: { ...process.env, ARENA_SOURCE_LOG_LEVEL: 'warn', ...IMAGE_ENV, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out = (out + d).slice(-20_000)));
  child.stderr!.on('data', (d) => (out = (out + d).slice(-20_000)));
  const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`worker exited: ${out}`);
    const ok = await fetch(metricsUrl).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`worker not ready: ${out}`);
    await sleep(200);
  }
  log(`worker pid ${child.pid} on ${opts.taskQueue}${cgroup ? ` in a ${fmtBytes(cgroup.limitBytes)} memory cgroup (v${cgroup.version})` : ''}`);
  const stop = async () => {
    await stopChild(child);
    await cgroup?.remove();
  };
  cleanups.add(stop);
  return {
    pid: child.pid!,
    metricsUrl,
    output: () => out,
    ...(cgroup ? { cgroupPeakBytes: () => cgroup.peakBytes() } : {}),
    stop: async () => {
      cleanups.delete(stop);
      await stop();
    },
  };
}

/** `node bin/arena-source.js serve` with the push webhook receiver on its own port, as deployed. */
export async function startServeProcess(opts: { temporalAddress: string; dataDir: string; secretFile: string }): Promise<{ hooksUrl: string; stop(): Promise<void> }> {
  const [port, hookPort] = [await freePort(), await freePort()];
  const args = [resolve('bin/arena-source.js'), 'serve', '--temporal-address', opts.temporalAddress, '--data-dir', opts.dataDir, '--port', String(port)];
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ARENA_SOURCE_WEBHOOK_SECRET_FILE: opts.secretFile, ARENA_SOURCE_WEBHOOK_PORT: String(hookPort) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out = (out + d).slice(-20_000)));
  child.stderr!.on('data', (d) => (out = (out + d).slice(-20_000)));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`serve exited: ${out}`);
    if (await fetch(`http://127.0.0.1:${hookPort}/healthz`).then((r) => r.ok, () => false)) break;
    if (Date.now() > deadline) throw new Error(`serve not ready: ${out}`);
    await sleep(200);
  }
  const stop = () => stopChild(child);
  cleanups.add(stop);
  return {
    hooksUrl: `http://127.0.0.1:${hookPort}/hooks`,
    stop: async () => {
      cleanups.delete(stop);
      await stop();
    },
  };
}

/**
 * Waits until the worker polls `taskQueue` for workflow and activity tasks: its
 * metrics endpoint answers before it has bundled its workflow code.
 */
export async function waitForPollers(client: Client, taskQueue: string, timeoutMs = 180_000, types = [1, 2]): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const counts = await Promise.all(
      types.map((taskQueueType) =>
        client.workflowService
          .describeTaskQueue({ namespace: client.options.namespace, taskQueue: { name: taskQueue }, taskQueueType })
          .then((r) => r.pollers?.length ?? 0, () => 0),
      ),
    );
    if (counts.every((n) => n > 0)) return;
    if (Date.now() > deadline) throw new Error(`no worker polls ${taskQueue} after ${timeoutMs / 1000} s`);
    await sleep(250);
  }
}

/** Every sample of metric `name` on a Prometheus text endpoint, with its labels. */
export async function scrapeSamples(url: string, name: string): Promise<Array<{ labels: Record<string, string>; value: number }>> {
  const text = await fetch(url).then((r) => r.text());
  const samples: Array<{ labels: Record<string, string>; value: number }> = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(\{([^}]*)\})?\s+([0-9.eE+-]+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    samples.push({ labels, value: Number(m[4]) });
  }
  return samples;
}

/** The sum of metric `name`'s samples whose labels include `match`. */
export async function scrapeCounter(url: string, name: string, match: Record<string, string> = {}): Promise<number> {
  const samples = await scrapeSamples(url, name);
  return samples.filter((s) => Object.entries(match).every(([k, v]) => s.labels[k] === v)).reduce((total, s) => total + s.value, 0);
}

/** SIGTERM, then SIGKILL after 15 s; resolves once the process has exited. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  child.kill('SIGTERM');
  const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(killer);
}
