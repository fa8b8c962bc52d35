/**
 * Child of bench/fork.ts: grows to about `ballast` MiB of touched memory (half
 * Buffers, half JS objects, as a worker's cache is), then starts `git --version`
 * `reps` times and prints how long each spawn() held the event loop (libuv forks
 * on Linux: the page tables are copied while this thread waits).
 */
import { spawn } from 'node:child_process';

const [ballastMiB = 0, reps = 40] = process.argv.slice(2).map(Number);
const keep: unknown[] = [];
for (let i = 0; i < ballastMiB / 2; i++) keep.push(Buffer.alloc(1024 * 1024, i & 0xff));
for (let i = 0; i < ballastMiB / 2; i++) keep.push(Array.from({ length: 16 * 1024 }, (_, j) => ({ j, s: `x${j}` })).slice(0, 8 * 1024));

const blocked: number[] = [];
for (let i = 0; i < reps; i++) {
  const t0 = performance.now();
  const child = spawn('git', ['--version'], { stdio: 'ignore' });
  blocked.push(performance.now() - t0);
  await new Promise((resolve) => child.once('exit', resolve));
}
const rss = process.memoryUsage().rss;
process.stdout.write(JSON.stringify({ ballastMiB, rss, blocked, kept: keep.length }) + '\n');
