/**
 * One measurement of benchmark 11, in a process of its own (so nothing else lives in its
 * heap): a worker with N workflows cached, each past its first cycle. Workflows run in the
 * main thread (the SDK's debugMode), so one V8 heap holds both the workflow sandbox and the
 * worker's side; RSS minus the committed heap is what lives outside V8 (the Temporal core,
 * the allocator). Prints one JSON line.
 *
 *   node --expose-gc dist/bench/cached-memory-child.js <arena|plain> <N> <temporal address> [<interval s> <cycles>]
 *
 * With an interval and a cycle count, the workflows cycle that often and the process samples its
 * memory once per interval for that many cycles (printed as `samples`, each with the cycles done):
 * what a cached workflow gains per cycle of its run, until its next continue-as-new.
 */
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { API_VERSION, KIND } from '../src/api/group-version.js';
import { applySource, connectClient, getSource } from '../src/client.js';
import { connectWorker, workflowBundle } from '../src/worker.js';
import { stubActivities } from './lib/stub-activities.js';
import { pool, sleep } from './lib/util.js';
import { cyclesQuery } from './workflows/sleep-loop.js';

const [kind, nArg, address, intervalArg, cyclesArg] = process.argv.slice(2);
const n = Number(nArg);
/** Seconds between cycles: an hour (nothing cycles again while measured), or the growth run's interval. */
const intervalS = intervalArg ? Number(intervalArg) : 3600;
const growthCycles = cyclesArg ? Number(cyclesArg) : 0;
if ((kind !== 'arena' && kind !== 'plain') || !(n > 0) || !address) throw new Error('usage: cached-memory-child <arena|plain> <N> <address>');
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');

const settle = async () => {
  for (let i = 0; i < 3; i++) {
    gc();
    await sleep(500);
  }
};
const sample = () => {
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external };
};

const taskQueue = `bench-memory-${randomUUID().slice(0, 8)}`;
const pinnedQueue = `${taskQueue}/pinned`;
const client = await connectClient({ address, namespace: 'default' });
const connection = await connectWorker(address);
const bundle =
  kind === 'arena'
    ? await workflowBundle()
    : await bundleWorkflowCode({ workflowsPath: fileURLToPath(new URL('./workflows/sleep-loop.js', import.meta.url)), logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } });
const { shared, pinned } = stubActivities(pinnedQueue);
// Every workflow stays cached: the cache is larger than N.
const workers = [await Worker.create({ connection, taskQueue, workflowBundle: bundle, activities: shared, debugMode: true, maxCachedWorkflows: n + 100 })];
if (kind === 'arena') workers.push(await Worker.create({ connection, taskQueue: pinnedQueue, activities: pinned }));
const running = Promise.all(workers.map((w) => w.run()));
await sleep(1000);
await settle();
const before = sample();

const ids = Array.from({ length: n }, (_, i) => `m${String(i).padStart(5, '0')}`);
// A namespace of its own per run: workflows of an earlier run (same ids) would take the signals.
const ref = (id: string) => ({ namespace: taskQueue, name: id });
await pool(ids, 32, async (id) => {
  if (kind === 'arena') {
    await applySource(client, taskQueue, {
      apiVersion: API_VERSION,
      kind: KIND,
      metadata: ref(id),
      spec: { type: 'git', interval: `${intervalS}s`, git: { url: 'https://example.com/r.git' } },
    });
  } else {
    await client.workflow.start('sleepLoop', { taskQueue, workflowId: `${taskQueue}-${id}`, args: [intervalS * 1000] });
  }
});
// Past the first cycle: an arena-source workflow has fetched, packed, uploaded and is on its timer.
const cycled = async (id: string) =>
  kind === 'arena'
    ? (await getSource(client, ref(id)).catch(() => undefined))?.status?.artifact !== undefined
    : (await client.workflow.getHandle(`${taskQueue}-${id}`).query(cyclesQuery).catch(() => 0)) >= 1;
let pending = ids;
while (pending.length > 0) {
  const done = new Set<string>();
  await pool(pending, 16, async (id) => void ((await cycled(id)) && done.add(id)));
  pending = pending.filter((id) => !done.has(id));
  if (pending.length > 0) await sleep(1000);
}
await sleep(3000); // the last workflow tasks and local activities complete
await settle();
const after = sample();
// The growth run: one sample per interval, each after GCs, tagged with the cycles done since `after`.
const samples: Array<ReturnType<typeof sample> & { cycles: number }> = [];
const t0 = Date.now();
for (let i = 1; i <= growthCycles; i++) {
  await sleep(t0 + i * intervalS * 1000 - Date.now());
  await settle();
  samples.push({ ...sample(), cycles: (Date.now() - t0) / (intervalS * 1000) });
}
console.log(JSON.stringify({ kind, n, before, after, ...(growthCycles ? { samples } : {}) }));
for (const w of workers) w.shutdown();
await running;
await connection.close();
await client.connection.close();
process.exit(0);
