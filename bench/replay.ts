/**
 * 7. Replay cost of an evicted workflow, by the length of its run: what a
 *    bounded workflow cache costs in CPU, and so what short runs (continue-as-new
 *    every K cycles) save. One source cycles every second against stub activities
 *    (the workflow code is the real one; activities answer at once) for the longest
 *    K measured; its history, cut after the k-th cycle, is replayed `reps` times
 *    per k by one replay worker, and the CPU this process spends is divided by reps.
 */
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { Worker } from '@temporalio/worker';
import { API_VERSION, KIND } from '../src/api/group-version.js';
import { applySource, connectClient, getCounters } from '../src/client.js';
import { connectWorker, workflowBundle } from '../src/worker.js';
import { workflowIdFor } from '../workflows/definitions.js';
import type { TemporalServer } from './lib/infra.js';
import { stubActivities } from './lib/stub-activities.js';
import { fmtMs, fmtNum, log, sleep, type Table } from './lib/util.js';

export interface ReplayCase {
  cycles: number;
  events: number;
  cpuMsPerReplay: number;
  wallMsPerReplay: number;
  load: number;
}

const EVENT_TIMER_STARTED = 17;

export async function runReplayBench(temporal: TemporalServer, opts: { cycles: number[]; reps: number }): Promise<{ cases: ReplayCase[]; tables: Table[] }> {
  const taskQueue = `bench-replay-${randomUUID().slice(0, 8)}`;
  const pinnedQueue = `${taskQueue}/pinned`;
  const client = await connectClient({ address: temporal.address, namespace: 'default' });
  const connection = await connectWorker(temporal.address);
  const { shared, pinned } = stubActivities(pinnedQueue);
  const bundle = await workflowBundle();
  const workers = [
    await Worker.create({ connection, taskQueue, workflowBundle: bundle, activities: shared }),
    await Worker.create({ connection, taskQueue: pinnedQueue, activities: pinned }),
  ];
  const running = Promise.all(workers.map((w) => w.run()));
  const ref = { namespace: 'bench', name: 'replay' };
  const longest = Math.max(...opts.cycles);
  let history;
  try {
    await applySource(
      client,
      taskQueue,
      { apiVersion: API_VERSION, kind: KIND, metadata: { name: ref.name, namespace: ref.namespace }, spec: { type: 'git', interval: '1s', git: { url: 'https://example.com/r.git' } } },
      { cyclesPerRun: longest + 10 },
    );
    log(`replay: recording ${longest} cycles of one source at 1s`);
    while ((await getCounters(client, ref).catch(() => ({ cycles: 0 }))).cycles < longest + 2) await sleep(1000);
    history = await client.workflow.getHandle(workflowIdFor(ref)).fetchHistory();
    await client.workflow.getHandle(workflowIdFor(ref)).terminate('recorded');
  } finally {
    for (const w of workers) w.shutdown();
    await running;
    await connection.close();
    await client.connection.close();
  }
  const events = history.events ?? [];
  const cases: ReplayCase[] = [];
  const recorded = events.filter((e) => Number(e.eventType) === EVENT_TIMER_STARTED).length;
  for (const k of opts.cycles.filter((c) => c <= recorded)) {
    // Cut after the k-th cycle's timer: every command of that workflow task is in.
    let timers = 0;
    const end = events.findIndex((e) => Number(e.eventType) === EVENT_TIMER_STARTED && ++timers === k);
    const cut = { ...history, events: events.slice(0, end + 1) };
    const histories = Array.from({ length: opts.reps }, (_, i) => ({ workflowId: `replay-${k}-${i}`, history: cut }));
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for await (const r of Worker.runReplayHistories({ workflowBundle: bundle, replayName: `k${k}` }, histories)) {
      if (r.error) throw r.error;
    }
    const cpu = process.cpuUsage(cpu0);
    cases.push({
      cycles: k,
      events: end + 1,
      cpuMsPerReplay: (cpu.user + cpu.system) / 1000 / opts.reps,
      wallMsPerReplay: (performance.now() - t0) / opts.reps,
      load: loadavg()[0]!,
    });
    log(`replay: ${k} cycles (${end + 1} events): ${fmtMs(cases.at(-1)!.cpuMsPerReplay)} CPU per replay`);
  }
  return {
    cases,
    tables: [
      {
        title: '8. Replaying an evicted workflow, by the length of its run',
        columns: ['cycles in the run', 'history events', 'CPU per replay', 'wall per replay', 'load'],
        rows: cases.map((c) => [String(c.cycles), fmtNum(c.events), fmtMs(c.cpuMsPerReplay), fmtMs(c.wallMsPerReplay), c.load.toFixed(2)]),
        notes: [
          `${opts.reps} replays per length by one replay worker (Worker.runReplayHistories), CPU of this process (the SDK's core and the workflow sandbox); unchanged cycles of one source`,
        ],
      },
    ],
  };
}
