/**
 * 3. Change-to-Ready latency: from the moment a new commit is on the git server
 *    (its branch ref updated) to the moment the source's status.artifact.revision
 *    names it, read by query. With the `reconcile` signal sent right after the
 *    push, and with plain polling at a short interval. The worker is its own
 *    process; the Temporal dev server is ours.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { API_VERSION, KIND } from '../src/api/schema.js';
import { parseArenaSource } from '../src/api/validate.js';
import { applySource, connectClient, reconcileSource } from '../src/client.js';
import { startWorkerProcess, waitForPollers, type GitInfra, type TemporalServer } from './lib/infra.js';
import { changeFiles, quickCommit, smallRepo } from './lib/repos.js';
import { LATENCY_COLUMNS, latencyRow, waitForSource } from './lib/latency.js';
import { fmtMs, log, percentile, pool, sleep, type Table } from './lib/util.js';

export interface LatencyOptions {
  samples: number;
  intervalSeconds: number;
  lanes: number;
}

export interface LatencyResult {
  mode: string;
  samplesMs: number[];
}

const NS = 'bench';
const POLL_MS = 20;

interface Ctx {
  tmp: string;
  infra: GitInfra;
  gitRoot: string;
}

export async function runLatencyBench(ctx: Ctx, temporal: TemporalServer, opts: LatencyOptions): Promise<{ results: LatencyResult[]; tables: Table[] }> {
  const dataDir = await mkdtemp(join(ctx.tmp, 'latency-'));
  const taskQueue = `bench-latency-${randomUUID().slice(0, 8)}`;
  const worker = await startWorkerProcess({ temporalAddress: temporal.address, taskQueue, dataDir });
  const client = await connectClient({ address: temporal.address, namespace: 'default' });
  await waitForPollers(client, taskQueue);
  const results: LatencyResult[] = [];
  try {
    const apply = async (name: string, repo: string, interval: string) => {
      const source = parseArenaSource({
        apiVersion: API_VERSION,
        kind: KIND,
        metadata: { name, namespace: NS },
        spec: { type: 'git', interval, git: { url: ctx.infra.url(repo), ref: { branch: 'main' }, path: 'support' } },
      });
      await applySource(client, taskQueue, source);
    };

    // Reconcile signal: one source polling hourly, so only the signal can make it fetch.
    const sig = await smallRepo(ctx.gitRoot, 'lat-signal');
    await apply('signal', 'lat-signal', '1h');
    await waitForSource(client, { namespace: NS, name: 'signal' }, (s) => s?.status?.phase === 'Ready', 60_000, POLL_MS);
    const signalMs: number[] = [];
    for (let i = 0; i < opts.samples; i++) {
      const sha = await quickCommit(sig.bare, changeFiles('support', `sig-${i}`));
      const t0 = performance.now();
      await reconcileSource(client, { namespace: NS, name: 'signal' });
      await waitForSource(client, { namespace: NS, name: 'signal' }, (s) => s?.status?.artifact?.revision === `main@sha1:${sha}`, 60_000, POLL_MS);
      signalMs.push(performance.now() - t0);
    }
    results.push({ mode: 'reconcile signal right after the push', samplesMs: signalMs });
    log(`latency signal: p50 ${fmtMs(percentile(signalMs, 50))}`);

    // The same with nothing changed: a no-op cycle end to end (signal → status written).
    const noopMs: number[] = [];
    for (let i = 0; i < Math.min(10, opts.samples); i++) {
      const requestedAt = new Date(Date.UTC(2030, 0, 1, 0, 0, i)).toISOString();
      const t0 = performance.now();
      await reconcileSource(client, { namespace: NS, name: 'signal' }, requestedAt);
      await waitForSource(client, { namespace: NS, name: 'signal' }, (s) => s?.status?.lastHandledReconcileAt === requestedAt, 60_000, POLL_MS);
      noopMs.push(performance.now() - t0);
    }
    results.push({ mode: 'no-op cycle via reconcile signal (nothing changed)', samplesMs: noopMs });

    // Polling: lanes of sources on their own repositories, pushes at random points of the interval.
    const lanes = Math.max(1, Math.min(opts.lanes, opts.samples));
    const perLane = Math.ceil(opts.samples / lanes);
    const interval = `${opts.intervalSeconds}s`;
    const repos = await Promise.all(Array.from({ length: lanes }, (_, l) => smallRepo(ctx.gitRoot, `lat-poll-${l}`)));
    for (let l = 0; l < lanes; l++) await apply(`poll-${l}`, `lat-poll-${l}`, interval);
    for (let l = 0; l < lanes; l++) await waitForSource(client, { namespace: NS, name: `poll-${l}` }, (s) => s?.status?.phase === 'Ready', 60_000, POLL_MS);
    const pollMs: number[] = [];
    await pool(repos, lanes, async (repo, l) => {
      for (let k = 0; k < perLane && pollMs.length < opts.samples; k++) {
        await sleep(Math.random() * opts.intervalSeconds * 1000);
        const sha = await quickCommit(repo.bare, changeFiles('support', `poll-${l}-${k}`));
        const t0 = performance.now();
        await waitForSource(client, { namespace: NS, name: `poll-${l}` }, (s) => s?.status?.artifact?.revision === `main@sha1:${sha}`, opts.intervalSeconds * 1000 * 3 + 60_000, POLL_MS);
        pollMs.push(performance.now() - t0);
      }
    });
    results.push({ mode: `polling, interval ${interval} (±5% jitter), ${lanes} sources at once`, samplesMs: pollMs });
    log(`latency polling: p50 ${fmtMs(percentile(pollMs, 50))}`);

    for (const name of ['signal', ...repos.map((_, l) => `poll-${l}`)]) {
      await client.workflow.getHandle(`arena-source/${NS}/${name}`).terminate('benchmark done').catch(() => undefined);
    }
  } finally {
    await worker.stop();
    await client.connection.close();
    await rm(dataDir, { recursive: true, force: true });
  }
  return { results, tables: [latencyTable(results, opts)] };
}


function latencyTable(results: LatencyResult[], opts: LatencyOptions): Table {
  return {
    title: '3. Change-to-Ready latency: commit on the server → status.artifact.revision (query)',
    columns: LATENCY_COLUMNS,
    rows: results.map((r) => latencyRow(r.mode, r.samplesMs)),
    notes: [
      `worker: a separate process (node bin/arena-source.js worker); query polled every ${POLL_MS} ms; p99 is the nearest-rank value (with ${opts.samples} samples: the largest)`,
      `polling: pushes land at random points of the ${opts.intervalSeconds}s interval, so expect about interval/2 + one cycle on average`,
      'the commit is written into the served bare repository (fast-import), i.e. the moment a git push completes',
    ],
  };
}
