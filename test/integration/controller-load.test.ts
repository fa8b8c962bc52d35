/**
 * The controller under load, against a real kube-apiserver + etcd and Temporal: 200
 * sources deleted at once while their status is being written must all go (no finalizer
 * left behind) without a retry loop, counted from kube-apiserver's own request metrics;
 * and the `controller` command stops cleanly on SIGTERM in the middle of a reconcile storm.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ArenaSourceController } from '../../src/controller/controller.js';
import { loadKubeClients } from '../../src/kube/config.js';
import { KubeResourceReader } from '../../src/resources/kube-reader.js';
import { KubeStatusSink } from '../../src/status/kube-status-sink.js';
import { installArenaSourceCrd, startKube, kubeSkipReason, type Kube } from '../helpers/kube.js';
import { startTestEnv, type TestEnv } from '../helpers/env.js';
import { freePort, startCli } from '../helpers/processes.js';
import { temporalAddress, uniqueTaskQueue } from '../helpers/temporal.js';
import { waitFor } from '../helpers/wait.js';

const N = 200;
const API = '/apis/omnia.altairalabs.ai/v1alpha1';
const base = (ns: string) => `${API}/namespaces/${ns}/arenasources`;
const names = Array.from({ length: N }, (_, i) => `s${String(i).padStart(3, '0')}`);

/** Runs `fn` over `items`, `width` at a time. */
async function pool<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

/** kube-apiserver's apiserver_request_total for ArenaSources, summed by "VERB subresource code". */
async function arenaRequests(kube: Kube): Promise<Map<string, number>> {
  const text = (await kube.request('GET', '/metrics')).text;
  const counts = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_request_total{') || !line.includes('resource="arenasources"')) continue;
    const label = (name: string) => line.match(new RegExp(`[{,]${name}="([^"]*)"`))?.[1] ?? '';
    const key = `${label('verb')} ${label('subresource') || '-'} ${label('code')}`;
    counts.set(key, (counts.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return counts;
}

function delta(before: Map<string, number>, after: Map<string, number>, match: (key: string) => boolean): number {
  let sum = 0;
  for (const [key, n] of after) if (match(key)) sum += n - (before.get(key) ?? 0);
  return sum;
}

describe('controller under load on a real API server', { skip: kubeSkipReason() }, () => {
  let kube: Kube;
  let env: TestEnv;

  const createAll = (ns: string, spec: Record<string, unknown>) =>
    pool(names, 16, async (name) => {
      const res = await kube.request('POST', base(ns), {
        apiVersion: 'omnia.altairalabs.ai/v1alpha1',
        kind: 'ArenaSource',
        metadata: { name, namespace: ns },
        spec,
      });
      assert.equal(res.status, 201, res.text);
    });
  const items = async (ns: string) => ((await kube.request('GET', base(ns))).body?.items ?? []) as any[];

  before(async () => {
    kube = await startKube();
    await installArenaSourceCrd(kube);
    for (const ns of ['load', 'storm']) assert.equal((await kube.request('POST', '/api/v1/namespaces', { metadata: { name: ns } })).status, 201);
    const clients = loadKubeClients(kube.kubeconfigPath);
    env = await startTestEnv('kube-load', { backends: { statusSink: new KubeStatusSink(clients), resources: new KubeResourceReader(clients) } });
  });

  after(async () => {
    await env?.close();
    await kube?.close();
  });

  it(`${N} sources deleted at once while their status is written: every finalizer released, no retry loop`, async (t) => {
    const logs: string[] = [];
    const controller = new ArenaSourceController({
      kube: loadKubeClients(kube.kubeconfigPath),
      client: env.stack.client,
      taskQueue: env.taskQueue,
      namespaces: ['load'],
      log: (m) => logs.push(m),
    });
    await controller.start();
    try {
      const cm = await kube.request('POST', '/api/v1/namespaces/load/configmaps', { metadata: { name: 'packs' }, data: { 'pack.json': '{"id":"k"}' } });
      assert.equal(cm.status, 201, cm.text);
      const t0 = Date.now();
      // Suspended: each workflow starts and writes status but fetches nothing, so this file does not
      // starve the test files running beside it; a deletion still goes through the workflow.
      await createAll('load', { type: 'configmap', interval: '1h', configMap: { name: 'packs' }, suspend: true });
      // Each has our finalizer and a workflow that has written status: what a deletion has to undo.
      await waitFor('all with a finalizer and status', () => items('load'),
        (list) => list.length === N && list.every((o) => o.metadata.finalizers?.includes('omnia.altairalabs.ai/arena-source') && o.status?.phase), 300_000);
      const readyMs = Date.now() - t0;
      const before = await arenaRequests(kube);
      const deleteStart = Date.now();
      // Someone else writes status the whole time (as a slow worker would): each write moves the
      // resourceVersion, which a finalizer patch guarded by it would trip over.
      let writing = true;
      let statusWrites = 0;
      const writer = (async () => {
        while (writing) {
          await pool(names, 8, async (name) => {
            if (!writing) return;
            const res = await kube.request('PATCH', `${base('load')}/${name}/status`, { status: { lastFetchTime: new Date().toISOString() } }, 'application/merge-patch+json');
            if (res.status === 200) statusWrites++;
          });
        }
      })();
      await pool(names, 32, async (name) => {
        const res = await kube.request('DELETE', `${base('load')}/${name}`);
        assert.equal(res.status, 200, res.text);
      });
      try {
        await waitFor('all gone', () => items('load'), (list) => list.length === 0, 300_000);
      } finally {
        writing = false;
        await writer;
      }
      const afterCounts = await arenaRequests(kube);

      // One finalizer patch per source, give or take a few conflicts; a hot loop would be hundreds more.
      const finalizerPatches = delta(before, afterCounts, (k) => k.startsWith('PATCH - '));
      const conflicts = delta(before, afterCounts, (k) => k.startsWith('PATCH - 409') || k.startsWith('PATCH - 422'));
      const gets = delta(before, afterCounts, (k) => k.startsWith('GET - '));
      assert.ok(statusWrites > 0, 'status was written during the deletion');
      assert.ok(finalizerPatches >= N && finalizerPatches <= N + 20, `finalizer patches: ${finalizerPatches} (${conflicts} conflicts)`);
      // The workers' status sinks read an object's uid for its Events; the controller reads only after a failure.
      assert.ok(gets <= N, `GETs of single ArenaSources: ${gets}`);
      t.diagnostic(`all started in ${readyMs} ms, deleted in ${Date.now() - deleteStart} ms; finalizer patches ${finalizerPatches} (${conflicts} conflicts), GETs ${gets}, concurrent status writes ${statusWrites}`);
      assert.equal(logs.filter((l) => /failed/.test(l)).length <= 20, true, logs.filter((l) => /failed/.test(l)).slice(0, 5).join('\n'));
      assert.equal(logs.filter((l) => /: deleted \(/.test(l)).length, N);
    } finally {
      await controller.stop();
    }
  });

  it('SIGTERM in the middle of a reconcile storm: the controller command drains and exits cleanly within its bound', async () => {
    // A task queue no worker polls: every reconcile still adds a finalizer and signals-with-start.
    const taskQueue = uniqueTaskQueue('storm');
    const proc = startCli(
      ['controller', '--kubeconfig', kube.kubeconfigPath, '--watch-namespaces', 'storm', '--metrics-port', String(await freePort())],
      { TEMPORAL_ADDRESS: temporalAddress(), ARENA_SOURCE_TASK_QUEUE: taskQueue },
    );
    try {
      await waitFor('controller watching', async () => proc.output(), (o) => /controller watching/.test(o), 60_000);
      await createAll('storm', { type: 'configmap', interval: '1h', configMap: { name: 'packs' } });
      // Annotation edits keep re-queueing keys while the first reconciles are still going.
      const storm = pool(names, 16, async (name) => {
        await kube.request('PATCH', `${base('storm')}/${name}`, { metadata: { annotations: { 'omnia.altairalabs.ai/reconcile-requested-at': 'now' } } }, 'application/merge-patch+json');
      });
      await waitFor('reconciles under way', async () => proc.output(), (o) => /handed to its workflow/.test(o), 60_000);
      const exited = new Promise<number | null>((resolve) => proc.child.once('exit', (code) => resolve(code)));
      proc.child.kill('SIGTERM');
      const code = await exited;
      await storm;
      // Exit code 1 would be the bound forcing the exit (shutdown did not finish within 10 s).
      assert.equal(code, 0, proc.output().slice(-3_000));
      assert.match(proc.output(), /controller stopped/);
      assert.ok((await items('storm')).length === N);
    } finally {
      await proc.kill();
      for await (const wf of env.stack.client.workflow.list({ query: `TaskQueue = '${taskQueue}' AND ExecutionStatus = 'Running'` })) {
        await env.stack.client.workflow.getHandle(wf.workflowId).terminate('test finished').catch(() => undefined);
      }
    }
  });
});
