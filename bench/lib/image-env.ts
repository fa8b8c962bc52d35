/**
 * The environment the image gives its processes (deploy/Dockerfile), so that the benchmarks measure
 * what a pod runs: jemalloc preloaded when this machine has it (`ensure-tools.sh bench` installs
 * libjemalloc2), else glibc with MALLOC_ARENA_MAX=2 as a fallback.
 */
import { existsSync } from 'node:fs';
import { arch } from 'node:os';

const MULTIARCH: Record<string, string> = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' };
const JEMALLOC = `/usr/lib/${MULTIARCH[arch()] ?? 'x86_64-linux-gnu'}/libjemalloc.so.2`;

const glibcAsked = process.env.BENCH_ALLOCATOR === 'glibc';
const useJemalloc = !glibcAsked && existsSync(JEMALLOC);

/**
 * Why the benchmarks cannot measure what the image runs, if they cannot: on glibc a worker holding 1,000
 * sources peaks 1.3–1.8× higher than on jemalloc (benchmark 4: 500 against 386 MiB in session 17, 948
 * against 516 in session 9), so a figure measured on glibc by accident would mislead.
 * BENCH_ALLOCATOR=glibc measures glibc on purpose.
 */
export function allocatorProblem(): string | undefined {
  if (useJemalloc || glibcAsked) return undefined;
  return (
    `${JEMALLOC} is missing: the image runs node on jemalloc, and the benchmarks run arena-source the same way. ` +
    'Install it (`bash scripts/ensure-tools.sh bench`, or `apt-get install libjemalloc2`), or set BENCH_ALLOCATOR=glibc to measure glibc.'
  );
}

/** Which allocator the benchmark's arena-source processes use (printed with the results). */
export const ALLOCATOR = useJemalloc ? `jemalloc${process.env.BENCH_MALLOC_CONF ? ` (MALLOC_CONF=${process.env.BENCH_MALLOC_CONF})` : ''}` : 'glibc (MALLOC_ARENA_MAX=2)';

/** BENCH_MALLOC_CONF replaces the image's jemalloc settings, to measure others (e.g. dirty_decay_ms). */
export const IMAGE_ENV: Record<string, string> = useJemalloc
  ? { LD_PRELOAD: JEMALLOC, MALLOC_CONF: process.env.BENCH_MALLOC_CONF ?? 'background_thread:true' }
  : { MALLOC_ARENA_MAX: '2' };
