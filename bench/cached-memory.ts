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
}
export interface CachedMemoryCase {
  kind: 'arena' | 'plain';
  sizes: [number, number];
  /** Bytes per cached workflow, (after at the larger N − after at the smaller) / (difference in N). */
  perWorkflow: { rss: number; heapUsed: number; heapTotal: number; outsideHeap: number };
  runs: ChildResult[];
  load: number;
}

async function measure(kind: 'arena' | 'plain', n: number, address: string): Promise<ChildResult> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', CHILD, kind, String(n), address], {
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
