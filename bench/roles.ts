/**
 * 8. A worker process's memory by role, before any source: `all`, `workflows`
 *    (workflow code only) and `activities` (the process that starts git).
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { connectClient } from '../src/client.js';
import { startWorkerProcess, waitForPollers, type TemporalServer } from './lib/infra.js';
import { memory } from './lib/machine.js';
import { fmtBytes, sleep, type Table } from './lib/util.js';

export interface RoleCase {
  role: string;
  /** 3 s after it polls. */
  rss: number;
  /** A minute later: its start-up garbage (loading the workflow bundle) collected. */
  settledRss: number;
  /** VmHWM: the start-up's peak. */
  peak: number;
  load: number;
}

/** How long an idle worker is left before its settled RSS is read. */
const SETTLE_MS = 60_000;

const POLLED: Record<string, number[]> = { all: [1, 2], workflows: [1], activities: [2] };

export async function runRolesBench(tmp: string, temporal: TemporalServer): Promise<{ cases: RoleCase[]; tables: Table[] }> {
  const client = await connectClient({ address: temporal.address, namespace: 'default' });
  const cases: RoleCase[] = [];
  try {
    for (const role of ['all', 'workflows', 'activities']) {
      const dataDir = await mkdtemp(join(tmp, `role-${role}-`));
      const taskQueue = `bench-role-${role}-${randomUUID().slice(0, 8)}`;
      const worker = await startWorkerProcess({ temporalAddress: temporal.address, taskQueue, dataDir, role });
      try {
        await waitForPollers(client, taskQueue, 180_000, POLLED[role]);
        await sleep(3000);
        const early = memory(worker.pid).rss;
        await sleep(SETTLE_MS);
        const settled = memory(worker.pid);
        cases.push({ role, rss: early, settledRss: settled.rss, peak: settled.peak, load: loadavg()[0]! });
      } finally {
        await worker.stop();
        await rm(dataDir, { recursive: true, force: true });
      }
    }
  } finally {
    await client.connection.close();
  }
  return {
    cases,
    tables: [
      {
        title: '9. Worker process RSS by role, polling, before any source',
        columns: ['role', 'RSS', 'RSS a minute later', 'peak (VmHWM)', 'load'],
        rows: cases.map((c) => [c.role, fmtBytes(c.rss), fmtBytes(c.settledRss), fmtBytes(c.peak), c.load.toFixed(2)]),
        notes: ['`node bin/arena-source.js worker --role R`; the workflow bundle is built by a child process (workflow-bundle.ts), so webpack does not stay in the worker'],
      },
    ],
  };
}
