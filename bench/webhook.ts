/**
 * 6. Push-to-Ready through a webhook: a commit lands on the git server, a signed
 *    GitHub push delivery goes to `arena-source serve --webhook-port` (its own
 *    process, as deployed), which finds the source through Temporal visibility
 *    and signals it; measured until the source's status names the new revision.
 *    Every source polls hourly, so polling never helps. Beside it, in the same
 *    run and alternating with it, the baseline: the reconcile signal sent
 *    straight after the push (bench 3's first row). Bystander sources on other
 *    repositories make the visibility query pick from more than one.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { API_VERSION, KIND } from '../src/api/schema.js';
import { parseArenaSource } from '../src/api/validate.js';
import { applySource, connectClient, reconcileSource } from '../src/client.js';
import { startServeProcess, startWorkerProcess, waitForPollers, type GitInfra, type TemporalServer } from './lib/infra.js';
import { changeFiles, quickCommit, smallRepo } from './lib/repos.js';
import { LATENCY_COLUMNS, latencyRow, waitForSource } from './lib/latency.js';
import { fmtMs, log, percentile, sleep, type Table } from './lib/util.js';

export interface WebhookBenchOptions {
  samples: number;
  bystanders: number;
}

export interface WebhookResult {
  mode: string;
  samplesMs: number[];
}

const NS = 'bench-hooks';
const POLL_MS = 20;
const SECRET = randomUUID();

export async function runWebhookBench(
  ctx: { tmp: string; infra: GitInfra; gitRoot: string },
  temporal: TemporalServer,
  opts: WebhookBenchOptions,
): Promise<{ results: WebhookResult[]; tables: Table[] }> {
  const dataDir = await mkdtemp(join(ctx.tmp, 'webhook-'));
  const taskQueue = `bench-webhook-${randomUUID().slice(0, 8)}`;
  const secretFile = join(dataDir, 'webhook-secret');
  await writeFile(secretFile, SECRET);
  const worker = await startWorkerProcess({ temporalAddress: temporal.address, taskQueue, dataDir });
  const serve = await startServeProcess({ temporalAddress: temporal.address, dataDir, secretFile });
  const client = await connectClient({ address: temporal.address, namespace: 'default' });
  await waitForPollers(client, taskQueue);
  const names: string[] = [];
  try {
    const apply = async (name: string, repo: string) => {
      names.push(name);
      const source = parseArenaSource({
        apiVersion: API_VERSION,
        kind: KIND,
        metadata: { name, namespace: NS },
        spec: { type: 'git', interval: '1h', git: { url: ctx.infra.url(repo), ref: { branch: 'main' }, path: 'support' } },
      });
      await applySource(client, taskQueue, source);
    };
    const hook = await smallRepo(ctx.gitRoot, 'wh-hook');
    const sig = await smallRepo(ctx.gitRoot, 'wh-signal');
    await apply('hook', 'wh-hook');
    await apply('signal', 'wh-signal');
    const repos = Math.max(1, Math.ceil(opts.bystanders / 5));
    for (let r = 0; r < repos; r++) await smallRepo(ctx.gitRoot, `wh-other-${r}`);
    for (let b = 0; b < opts.bystanders; b++) await apply(`bystander-${b}`, `wh-other-${b % repos}`);
    for (const name of names) await waitForSource(client, { namespace: NS, name }, (s) => s?.status?.phase === 'Ready', 180_000, POLL_MS);
    await waitVisible(client, ctx.infra.url('wh-hook'));

    const webhookMs: number[] = [];
    const answerMs: number[] = [];
    const signalMs: number[] = [];
    const viaWebhook = async (i: number) => {
      const sha = await quickCommit(hook.bare, changeFiles('support', `hook-${i}`));
      const body = JSON.stringify({ ref: 'refs/heads/main', repository: { clone_url: ctx.infra.url('wh-hook'), default_branch: 'main' } });
      const t0 = performance.now();
      const res = await fetch(`${serve.hooksUrl}/github`, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          'X-GitHub-Event': 'push',
          'X-GitHub-Delivery': randomUUID(),
          'X-Hub-Signature-256': `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`,
        },
        body,
      });
      const answer = (await res.json()) as { woken?: string[] };
      answerMs.push(performance.now() - t0);
      if (answer.woken?.length !== 1) throw new Error(`the webhook woke ${JSON.stringify(answer)}, not the one source`);
      await waitForSource(client, { namespace: NS, name: 'hook' }, (s) => s?.status?.artifact?.revision === `main@sha1:${sha}`, 60_000, POLL_MS);
      webhookMs.push(performance.now() - t0);
    };
    const viaSignal = async (i: number) => {
      const sha = await quickCommit(sig.bare, changeFiles('support', `sig-${i}`));
      const t0 = performance.now();
      await reconcileSource(client, { namespace: NS, name: 'signal' });
      await waitForSource(client, { namespace: NS, name: 'signal' }, (s) => s?.status?.artifact?.revision === `main@sha1:${sha}`, 60_000, POLL_MS);
      signalMs.push(performance.now() - t0);
    };
    // One sample of each per round, each going first in every other round; a pause lets the last
    // cycle's retention step finish, so neither mode starts while the other's source still works.
    for (let i = 0; i < opts.samples; i++) {
      for (const run of i % 2 === 0 ? [viaWebhook, viaSignal] : [viaSignal, viaWebhook]) {
        await run(i);
        await sleep(300);
      }
    }
    log(`webhook: p50 ${fmtMs(percentile(webhookMs, 50))}, signal: p50 ${fmtMs(percentile(signalMs, 50))}`);
    const results: WebhookResult[] = [
      { mode: 'push → signed GitHub webhook → Ready', samplesMs: webhookMs },
      { mode: 'push → reconcile signal → Ready (baseline)', samplesMs: signalMs },
      { mode: 'webhook answered (verify, visibility query, signal)', samplesMs: answerMs },
    ];
    return { results, tables: [table(results, opts)] };
  } finally {
    for (const name of names) await client.workflow.getHandle(`arena-source/${NS}/${name}`).terminate('benchmark done').catch(() => undefined);
    await serve.stop();
    await worker.stop();
    await client.connection.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}


/** Visibility is eventually consistent: the first delivery must find the source. */
async function waitVisible(client: Client, url: string): Promise<void> {
  const { gitRepositoryKey } = await import('../src/api/repository-key.js');
  const query = `ArenaSourceRepository = '${gitRepositoryKey(url)}' AND ExecutionStatus = 'Running'`;
  for (let i = 0; i < 300; i++) {
    if ((await client.workflow.count(query)).count > 0) return;
    await sleep(100);
  }
  throw new Error(`visibility never listed ${url}`);
}

function table(results: WebhookResult[], opts: WebhookBenchOptions): Table {
  return {
    title: '6. Push-to-Ready through a webhook: commit on the server → status.artifact.revision (query)',
    columns: LATENCY_COLUMNS,
    rows: results.map((r) => latencyRow(r.mode, r.samplesMs)),
    notes: [
      `interval 1h on every source: only the webhook (or the signal) makes one fetch; ${opts.bystanders} bystander sources on other repositories`,
      'receiver: `arena-source serve --webhook-port` as its own process; worker: its own process; the two modes alternate (one sample each per round, each first in every other round, 300 ms apart)',
      `p99 is the nearest-rank value (with ${opts.samples} samples: ${opts.samples < 100 ? 'the largest' : 'the 99th percentile'})`,
    ],
  };
}
