/**
 * 11. Memory per cached workflow, by part: arena-source's workflow beside the plain
 *     baseline (a sleep loop: the SDK's floor), each at two sizes, each in a process of its
 *     own (bench/cached-memory-child.ts). The difference between the sizes, divided by the
 *     difference in workflows, is what one more cached workflow costs: in V8 (the workflow
 *     sandbox's objects and the worker's per-run pipeline) and outside it (the Temporal
 *     core's run state, the allocator).
 */
import { execFile } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { IMAGE_ENV } from './lib/image-env.js';
import type { TemporalServer } from './lib/infra.js';
import { fmtBytes, fmtNum, log, type Table } from './lib/util.js';

const CHILD = fileURLToPath(new URL('./cached-memory-child.js', import.meta.url));

interface Sample {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
}
interface ChildResult {
  kind: 'arena' | 'plain';
  n: number;
  before: Sample;
  after: Sample;
  samples?: Array<Sample & { cycles: number }>;
}
/** What a cached workflow gains per cycle of its run (11b): least-squares slopes over the growth run's samples, divided by N. */
export interface CycleGrowthCase {
  kind: 'arena' | 'plain';
  n: number;
  intervalS: number;
  cycles: number;
  perCycle: { rss: number; heapUsed: number; outsideHeap: number };
  run: ChildResult;
  load: number;
}
export interface CachedMemoryCase {
  kind: 'arena' | 'plain';
  sizes: [number, number];
  /** Bytes per cached workflow, (after at the larger N − after at the smaller) / (difference in N). */
  perWorkflow: { rss: number; heapUsed: number; heapTotal: number; outsideHeap: number };
  runs: ChildResult[];
  load: number;
}

async function measure(kind: 'arena' | 'plain', n: number, address: string, growth?: { intervalS: number; cycles: number }): Promise<ChildResult> {
  const args = [kind, String(n), address, ...(growth ? [String(growth.intervalS), String(growth.cycles)] : [])];
  const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', CHILD, ...args], {
    env: { ...process.env, ARENA_SOURCE_LOG_LEVEL: 'warn', ...IMAGE_ENV },
    maxBuffer: 16 * 1024 * 1024,
    timeout: 900_000,
  });
  const line = stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (!line) throw new Error(`cached-memory-child ${kind} ${n} printed no result: ${stdout.slice(-2000)}`);
  return JSON.parse(line) as ChildResult;
}

export async function runCachedMemoryBench(temporal: TemporalServer, sizes: [number, number]): Promise<{ cases: CachedMemoryCase[]; tables: Table[] }> {
  const cases: CachedMemoryCase[] = [];
  for (const kind of ['plain', 'arena'] as const) {
    const runs: ChildResult[] = [];
    for (const n of sizes) {
      runs.push(await measure(kind, n, temporal.address));
      log(`memory: ${kind} with ${n} cached: RSS ${fmtBytes(runs.at(-1)!.after.rss)}, V8 heap ${fmtBytes(runs.at(-1)!.after.heapUsed)}`);
    }
    const [small, large] = runs as [ChildResult, ChildResult];
    const per = (f: (s: Sample) => number) => (f(large.after) - f(small.after)) / (large.n - small.n);
    cases.push({
      kind,
      sizes,
      perWorkflow: {
        rss: per((s) => s.rss),
        heapUsed: per((s) => s.heapUsed),
        heapTotal: per((s) => s.heapTotal),
        outsideHeap: per((s) => s.rss - s.heapTotal),
      },
      runs,
      load: loadavg()[0]!,
    });
  }
  const [plain, arena] = cases as [CachedMemoryCase, CachedMemoryCase];
  const row = (label: string, c: CachedMemoryCase) => [
    label,
    fmtBytes(c.runs[0]!.after.rss),
    fmtBytes(c.runs[1]!.after.rss),
    fmtBytes(c.perWorkflow.rss),
    fmtBytes(c.perWorkflow.heapUsed),
    fmtBytes(c.perWorkflow.heapTotal),
    fmtBytes(c.perWorkflow.outsideHeap),
    c.load.toFixed(2),
  ];
  const ratio = (f: (c: CachedMemoryCase) => number) => `${fmtNum(f(arena) / f(plain), 2)}×`;
  return {
    cases,
    tables: [
      {
        title: `11. Memory per cached workflow: arena-source's workflow vs a plain sleep loop (the SDK's floor), ${sizes[0]} and ${sizes[1]} cached`,
        columns: ['workflow', `RSS at ${sizes[0]}`, `RSS at ${sizes[1]}`, 'RSS per workflow', 'V8 used per workflow', 'V8 committed per workflow', 'outside V8 per workflow', 'load'],
        rows: [
          row('plain: sleep loop (baseline)', plain),
          row('arena-source (first cycle done)', arena),
          ['ratio arena-source / plain', '', '', ratio((c) => c.perWorkflow.rss), ratio((c) => c.perWorkflow.heapUsed), ratio((c) => c.perWorkflow.heapTotal), ratio((c) => c.perWorkflow.outsideHeap), ''],
        ],
        notes: [
          'one process per row and size, every workflow cached, workflows in the main thread (debugMode: one V8 heap), activities stubbed; per workflow = (larger − smaller) / difference in N, after three GCs',
          `malloc as the image runs it (${IMAGE_ENV.LD_PRELOAD ? 'jemalloc' : 'glibc'}); outside V8 = RSS − V8 committed heap (the Temporal core's run state, the allocator)`,
        ],
      },
    ],
  };
}

/** Least-squares slope of y over x. */
function slope(points: Array<[number, number]>): number {
  const mx = points.reduce((a, [x]) => a + x, 0) / points.length;
  const my = points.reduce((a, [, y]) => a + y, 0) / points.length;
  const sxy = points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0);
  const sxx = points.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  return sxy / sxx;
}

/**
 * 11b. What a cached workflow gains per cycle of its run: N workflows cycling every `intervalS`, one
 * sample per cycle for `cycles` cycles (fewer than a run's 20, so no continue-as-new falls inside).
 * A run's memory grows until its continue-as-new: this times the cycles into the run is what benchmark
 * 11's first-cycle figure leaves out.
 */
export async function runCycleGrowthBench(temporal: TemporalServer, opts: { n: number; intervalS: number; cycles: number }): Promise<{ cases: CycleGrowthCase[]; tables: Table[] }> {
  const cases: CycleGrowthCase[] = [];
  for (const kind of ['plain', 'arena'] as const) {
    const run = await measure(kind, opts.n, temporal.address, { intervalS: opts.intervalS, cycles: opts.cycles });
    const samples = run.samples ?? [];
    const per = (f: (s: Sample) => number) => slope(samples.map((x) => [x.cycles, f(x)])) / opts.n;
    cases.push({
      kind,
      n: opts.n,
      intervalS: opts.intervalS,
      cycles: opts.cycles,
      perCycle: { rss: per((x) => x.rss), heapUsed: per((x) => x.heapUsed), outsideHeap: per((x) => x.rss - x.heapTotal) },
      run,
      load: loadavg()[0]!,
    });
    log(`memory growth: ${kind}, ${opts.n} cycling every ${opts.intervalS}s: ${fmtBytes(cases.at(-1)!.perCycle.rss)} RSS per workflow per cycle`);
  }
  const row = (label: string, c: CycleGrowthCase) => [
    label,
    fmtBytes(c.run.samples?.[0]?.rss ?? NaN),
    fmtBytes(c.run.samples?.at(-1)?.rss ?? NaN),
    fmtBytes(c.perCycle.rss),
    fmtBytes(c.perCycle.heapUsed),
    fmtBytes(c.perCycle.outsideHeap),
    fmtBytes(c.perCycle.rss * 19),
    c.load.toFixed(2),
  ];
  const [plain, arena] = cases as [CycleGrowthCase, CycleGrowthCase];
  return {
    cases,
    tables: [
      {
        title: `11b. Memory a cached workflow gains per cycle of its run: ${opts.n} workflows cycling every ${opts.intervalS} s, ${opts.cycles} cycles`,
        columns: ['workflow', 'RSS after cycle 1', `RSS after cycle ${opts.cycles}`, 'RSS per workflow per cycle', 'V8 used', 'outside V8', 'by the 20th cycle (× 19)', 'load'],
        rows: [row('plain: sleep loop (baseline)', plain), row('arena-source (unchanged cycles)', arena)],
        notes: [
          'one process per row, every workflow cached, debugMode, activities stubbed; per cycle = least-squares slope of the per-cycle samples (each after three GCs) / N',
          "a run continues as new after 20 cycles and starts again from benchmark 11's figure",
        ],
      },
    ],
  };
}
