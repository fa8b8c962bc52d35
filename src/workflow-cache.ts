/**
 * How many source workflows a worker keeps cached, from the memory it may use.
 * A cached workflow costs memory; an evicted one costs CPU at its next cycle
 * (it is replayed from its run's history, which short runs keep to a few
 * cycles). The constants are benchmark 4's figures (README, Performance).
 */
import { totalmem } from 'node:os';
import { setFlagsFromString } from 'node:v8';

const MiB = 1024 * 1024;
/** RSS of a worker polling with no source (Node, the Temporal core, the workflow bundle, activities). */
export const WORKER_BASE_BYTES = 200 * MiB;
/**
 * What one more cached workflow costs the worker at its peak on jemalloc, as the image runs node, with
 * what grows with the sources beside it: 336 KiB per source at 1,000 all cached (benchmark 4, session
 * 10), rounded up. 256 KiB before, from the steady phase: the chart's 1 GiB then cached 2,272, and
 * 10,000 sources at 10m peaked at 1,088 MiB, over the pod's limit; with 1,500 cached they peaked at
 * 939 MiB. On glibc's malloc it is more (400-600 KiB): a worker started outside the image without
 * jemalloc should set --max-cached-workflows. Late in a run a cached workflow holds ≈ 6 KiB more per
 * cycle (benchmark 11b and 4, session 14: ≈ 110 KiB more by the 20th cycle), still under this.
 */
export const CACHED_WORKFLOW_BYTES = 384 * 1024;
/** Share of the pod's memory the worker plans to use: the rest is headroom for activities (git, packing) and GC. */
const PLANNED_SHARE = 0.75;
/**
 * Without a cgroup limit (a laptop, `arena-source dev`, a VM), the worker plans for a quarter of the
 * machine's memory, at most 2 GiB: benchmark 4 at 1,000 sources and 1m with a fixed 100 replayed an
 * evicted workflow every cycle and held a core (96%) to save ~300 MiB.
 */
export const NO_LIMIT_MEMORY_BYTES = Math.min(totalmem() / 4, 2 * 1024 * MiB);
/** The SDK refuses fewer than 2 (0 disables the cache, which replays every task). */
const MIN_CACHED = 2;
/**
 * The cache a worker keeps while a larger one would not pay for itself (src/workflow-cache-advisor.ts):
 * it serves the few workflow tasks of a cycle with work, seconds apart. Benchmark 4 (session 17):
 * 10,000 sources at 10m with 100 cached peaked at 285 MiB against 552 with 1,514, at less CPU.
 */
export const MIN_CACHED_WORKFLOWS = 100;

/**
 * The memory limit this process runs under (a pod's resources.limits.memory), in bytes; undefined without
 * one. Node asks libuv, which reads the process's cgroup (v2 memory.max, or v1 memory.limit_in_bytes on
 * nodes still on cgroup v1): the same figure V8 sizes the main thread's heap from. Unconstrained, Node
 * answers 0 or a number past the machine's memory.
 */
export function memoryLimit(constrained = process.constrainedMemory?.() ?? 0, machine = totalmem()): number | undefined {
  return constrained > 0 && constrained < machine ? constrained : undefined;
}

/** Cached workflows that fit in `memoryBytes` next to the worker itself. */
export function cachedWorkflowsFor(memoryBytes: number): number {
  const budget = memoryBytes * PLANNED_SHARE - WORKER_BASE_BYTES;
  return Math.max(MIN_CACHED, Math.floor(budget / CACHED_WORKFLOW_BYTES));
}

export interface CacheSize {
  maxCachedWorkflows: number;
  /** The size kept unless the maximum pays for itself: MIN_CACHED_WORKFLOWS or the flag, at most the maximum. */
  minCachedWorkflows: number;
  /** Where the number came from, for the start-up log. */
  from: 'flag' | 'memory limit (cgroup)' | 'machine memory (no limit found)';
  memoryBytes?: number;
}

/**
 * The maximum: --max-cached-workflows when given, else from the cgroup's memory limit, else from
 * NO_LIMIT_MEMORY_BYTES. The minimum: --min-cached-workflows, else MIN_CACHED_WORKFLOWS, never above
 * the maximum (equal bounds: a fixed cache).
 */
export function workflowCacheSize(flag?: number, limit = memoryLimit(), minFlag?: number): CacheSize {
  const max: Omit<CacheSize, 'minCachedWorkflows'> =
    flag !== undefined && Number.isFinite(flag)
      ? { maxCachedWorkflows: flag, from: 'flag' }
      : limit !== undefined
        ? { maxCachedWorkflows: cachedWorkflowsFor(limit), from: 'memory limit (cgroup)', memoryBytes: limit }
        : { maxCachedWorkflows: cachedWorkflowsFor(NO_LIMIT_MEMORY_BYTES), from: 'machine memory (no limit found)', memoryBytes: NO_LIMIT_MEMORY_BYTES };
  const min = minFlag !== undefined && Number.isFinite(minFlag) ? Math.max(MIN_CACHED, minFlag) : MIN_CACHED_WORKFLOWS;
  return { ...max, minCachedWorkflows: Math.min(min, max.maxCachedWorkflows) };
}

/**
 * The old-generation limit for the workflow threads' V8 heaps, in MiB: room for the cache's live
 * JavaScript (≈ 80 KiB per cached workflow, benchmark 11) twice over, plus the bundle and the SDK.
 * V8 sizes a thread's heap from the machine's memory (≈ 4 GiB on a 24 GiB machine) and, while
 * workflows are evicted and replayed, lets garbage pile up toward it: at 2 000 sources with 300
 * cached, a 192 MiB limit kept the worker's peak at 397 MiB where it reached ≈ 500 without one.
 */
const WORKFLOW_HEAP_BASE_BYTES = 128 * MiB;
const WORKFLOW_HEAP_PER_CACHED_BYTES = 160 * 1024;

export function workflowHeapLimitMiB(maxCachedWorkflows: number): number {
  return Math.ceil((WORKFLOW_HEAP_BASE_BYTES + maxCachedWorkflows * WORKFLOW_HEAP_PER_CACHED_BYTES) / MiB);
}

/** Whether node was started with its own --max-old-space-size (flags or NODE_OPTIONS), which then stands. */
export function heapLimitGiven(execArgv = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): boolean {
  return [...execArgv, ...nodeOptions.split(/\s+/)].some((a) => /^--max[-_]old[-_]space[-_]size\b/.test(a));
}

/**
 * Caps the heaps of the workflow threads the SDK starts from now on (V8 reads the flag when it makes an
 * isolate; this thread's own heap keeps its limit). Returns the limit set, or undefined when node was
 * given one.
 */
export function limitWorkflowHeaps(maxCachedWorkflows: number): number | undefined {
  if (heapLimitGiven()) return undefined;
  const mib = workflowHeapLimitMiB(maxCachedWorkflows);
  setFlagsFromString(`--max-old-space-size=${mib}`);
  return mib;
}
