/**
 * 6. Fork cost: how long starting one git process holds a Node process's event
 *    loop, by the process's size. Decides whether git needs a helper process
 *    (src/sources/git/host.ts) or can start from the worker (small workers).
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadavg } from 'node:os';
import { fmtBytes, fmtMs, median, percentile, type Table } from './lib/util.js';

export interface ForkCase {
  ballastMiB: number;
  rss: number;
  p50: number;
  p90: number;
  max: number;
  load: number;
}

const PROBE = fileURLToPath(new URL('./fork-probe.js', import.meta.url));

export function runForkBench(sizesMiB: number[], reps = 40): { cases: ForkCase[]; tables: Table[] } {
  const cases: ForkCase[] = [];
  for (const size of sizesMiB) {
    const out = execFileSync(process.execPath, [PROBE, String(size), String(reps)], { encoding: 'utf8', maxBuffer: 1 << 20 });
    const r = JSON.parse(out) as { rss: number; blocked: number[] };
    const samples = r.blocked.slice(2); // the first spawns warm up libuv's and the loader's paths
    cases.push({ ballastMiB: size, rss: r.rss, p50: median(samples), p90: percentile(samples, 90), max: Math.max(...samples), load: loadavg()[0]! });
  }
  return {
    cases,
    tables: [
      {
        title: '7. Event loop held by one spawn() of git, by process size',
        columns: ['process RSS', 'p50', 'p90', 'max', 'load'],
        rows: cases.map((c) => [fmtBytes(c.rss), fmtMs(c.p50), fmtMs(c.p90), fmtMs(c.max), c.load.toFixed(2)]),
        notes: [`${reps} sequential \`git --version\` per size (first 2 dropped); ballast half Buffers, half small JS objects`],
      },
    ],
  };
}
