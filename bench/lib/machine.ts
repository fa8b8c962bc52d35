/** What the numbers were measured on, printed before every run and stored in the JSON. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { findTemporalCli } from '../../src/dev/temporal-server.js';
import { ALLOCATOR } from './image-env.js';

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memGiB: number;
  kernel: string;
  node: string;
  git: string;
  tar: string;
  temporal: string;
  loadAvg: number[];
  /** Small files created per second in the temp dir (this VM's disk makes file creation the cost of a checkout). */
  fileCreatesPerSec: number;
  tmpDir: string;
  /** The malloc of the arena-source processes the benchmarks start (./image-env.ts). */
  allocator: string;
}

function version(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8' }).split('\n')[0]!.trim();
  } catch {
    return 'n/a';
  }
}

export function fileCreateRate(n = 400): number {
  const dir = mkdtempSync(join(tmpdir(), 'bench-fs-'));
  try {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) writeFileSync(join(dir, `f${i}`), 'x');
    return n / ((performance.now() - t0) / 1000);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function machineInfo(): MachineInfo {
  let cpuModel = cpus()[0]?.model ?? 'unknown';
  try {
    const m = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m?.[1]) cpuModel = m[1].trim();
  } catch {
    // not Linux
  }
  const temporal = findTemporalCli();
  return {
    cpuModel,
    cores: cpus().length,
    memGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    kernel: release(),
    node: process.version,
    git: version('git', ['--version']),
    tar: version('tar', ['--version']),
    temporal: temporal ? version(temporal, ['--version']) : 'not found',
    loadAvg: loadavg().map((x) => Math.round(x * 100) / 100),
    fileCreatesPerSec: Math.round(fileCreateRate()),
    tmpDir: tmpdir(),
    allocator: ALLOCATOR,
  };
}

export function describeMachine(m: MachineInfo): string {
  return [
    `machine: ${m.cpuModel}, ${m.cores} cores, ${m.memGiB} GiB, Linux ${m.kernel}`,
    `tools:   node ${m.node}, ${m.git}, ${m.tar}, ${m.temporal}; arena-source processes' malloc: ${m.allocator}`,
    `load:    ${m.loadAvg.join(' / ')} (1/5/15 min); temp dir ${m.tmpDir} creates ${m.fileCreatesPerSec} small files/s`,
  ].join('\n');
}

/** CPU seconds of a process: its own, and its waited-for children's (git, tar, …). Linux only. */
export function cpuSeconds(pid: number): { self: number; children: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may contain spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const tick = 100; // USER_HZ; 100 on every Linux we run on
  const n = (i: number) => Number(fields[i - 3]);
  return { self: (n(14) + n(15)) / tick, children: (n(16) + n(17)) / tick };
}

/**
 * Resident memory now and its peak (VmHWM), in bytes; `private` is what the process holds alone
 * (anonymous and shared-memory pages), `file` its file-backed pages (the node binary, libraries),
 * which another process mapping the same files shares.
 */
export function memory(pid: number): { rss: number; peak: number; private: number; file: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM'), private: kb('RssAnon') + kb('RssShmem'), file: kb('RssFile') };
}

/** Long-lived node processes started by `pid` (the worker's git helper), found through /proc. */
export function nodeChildren(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid && comm === 'node') out.push(Number(entry));
    } catch {
      // gone
    }
  }
  return out;
}

/**
 * Samples a process's CPU and memory over a window; with `withHelpers`, its node
 * child processes (the git helper) count as part of it, CPU and memory.
 */
export class ProcessMeter {
  private cpu0: Map<number, number>;
  private t0 = performance.now();
  private rss: number[] = [];
  private summed: number[] = [];
  private timer: NodeJS.Timeout;

  constructor(
    readonly pid: number,
    private readonly withHelpers = false,
    everyMs = 1000,
  ) {
    this.cpu0 = this.cpuByPid();
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
    this.timer.unref();
  }

  private pids(): number[] {
    return this.withHelpers ? [this.pid, ...nodeChildren(this.pid)] : [this.pid];
  }

  /** Own + reaped children's CPU seconds per process. */
  private cpuByPid(): Map<number, number> {
    const m = new Map<number, number>();
    for (const pid of this.pids()) {
      try {
        const c = cpuSeconds(pid);
        m.set(pid, c.self + c.children);
      } catch {
        // gone
      }
    }
    return m;
  }

  /**
   * The process's RSS, plus each helper's private memory: a helper (the worker's git host, a node
   * process too) maps the same node binary and libraries, whose pages the machine (and a pod's
   * cgroup) holds once. `summed` adds the helpers' whole RSS instead, as this benchmark did before
   * session 15 (it counted the node binary's pages twice, ≈ 40 MiB).
   */
  private sample(): void {
    let total = 0;
    let summed = 0;
    for (const pid of this.pids()) {
      try {
        const m = memory(pid);
        total += pid === this.pid ? m.rss : m.private;
        summed += m.rss;
      } catch {
        // exited
      }
    }
    if (total > 0) {
      this.rss.push(total);
      this.summed.push(summed);
    }
  }

  /**
   * CPU % of one core (the process and its children, helpers included), RSS average and max (helpers
   * by their private memory: sample()), peak (VmHWM; a helper's by its peak less its file pages now).
   * `rssMaxSummed` and `peakSummed` add the helpers' whole RSS, as before session 15.
   */
  stop(): { seconds: number; cpuPct: number; rssAvg: number; rssMax: number; peak: number; rssMaxSummed: number; peakSummed: number } {
    clearInterval(this.timer);
    this.sample();
    const seconds = (performance.now() - this.t0) / 1000;
    let cpu = 0;
    for (const [pid, now] of this.cpuByPid()) cpu += now - (this.cpu0.get(pid) ?? 0);
    let peak = NaN;
    let peakSummed = NaN;
    try {
      peak = peakSummed = memory(this.pid).peak;
      if (this.withHelpers) {
        for (const h of nodeChildren(this.pid)) {
          const m = memory(h);
          peak += m.peak - m.file;
          peakSummed += m.peak;
        }
      }
    } catch {
      // exited
    }
    return {
      seconds,
      cpuPct: (cpu / seconds) * 100,
      rssAvg: this.rss.reduce((a, b) => a + b, 0) / Math.max(1, this.rss.length),
      rssMax: Math.max(...this.rss),
      peak,
      rssMaxSummed: Math.max(...this.summed),
      peakSummed,
    };
  }
}
