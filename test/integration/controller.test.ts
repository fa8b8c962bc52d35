/**
 * The controller against a real kube-apiserver + etcd, a real Temporal dev server
 * and a real git server: `kubectl apply` an ArenaSource and watch its status fill in.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ArenaSourceController } from '../../src/controller/controller.js';
import { bareRepoPath, commitFiles, seedRepo } from '../../src/dev/demo-git/repo.js';
import { loadKubeClients } from '../../src/kube/config.js';
import { KubeResourceReader } from '../../src/resources/kube-reader.js';
import { KubeStatusSink } from '../../src/status/kube-status-sink.js';
import { installArenaSourceCrd, startKube, kubeSkipReason, type Kube } from '../helpers/kube.js';
import { startTestEnv, type TestEnv } from '../helpers/env.js';
import { waitFor } from '../helpers/wait.js';
import { packJson, validPack } from '../helpers/promptpack.js';
import { runsOf } from '../helpers/history.js';

const NS = 'arena';
const BASE = `/apis/omnia.altairalabs.ai/v1alpha1/namespaces/${NS}/arenasources`;
// Valid PromptPacks (the Events assertion expects FetchSucceeded, not the InvalidBundle warning); each v a new revision.
const pack = (v: string) => packJson({ ...validPack('k'), description: `revision ${v}` });

describe('controller on a real API server', { skip: kubeSkipReason() }, () => {
  let kube: Kube;
  let env: TestEnv;
  let controller: ArenaSourceController;
  let repoUrl: string;
  const logs: string[] = [];

  const getCr = async (name: string) => (await kube.request('GET', `${BASE}/${name}`)).body;
  const waitCr = (name: string, what: string, ok: (o: any) => boolean, timeoutMs = 30_000) =>
    waitFor(`${name}: ${what}`, () => getCr(name), ok, timeoutMs);
  const create = async (name: string, spec: Record<string, unknown>) => {
    const res = await kube.request('POST', BASE, {
      apiVersion: 'omnia.altairalabs.ai/v1alpha1',
      kind: 'ArenaSource',
      metadata: { name, namespace: NS },
      spec,
    });
    assert.equal(res.status, 201, res.text);
    return res.body;
  };
  const patch = async (name: string, body: unknown) => {
    const res = await kube.request('PATCH', `${BASE}/${name}`, body, 'application/merge-patch+json');
    assert.equal(res.status, 200, res.text);
  };
  const startController = async () => {
    const c = new ArenaSourceController({
      kube: loadKubeClients(kube.kubeconfigPath),
      client: env.stack.client,
      taskQueue: env.taskQueue,
      namespaces: [NS],
      log: (m) => logs.push(m),
    });
    await c.start();
    return c;
  };

  before(async () => {
    kube = await startKube();
    await installArenaSourceCrd(kube);
    assert.equal((await kube.request('POST', '/api/v1/namespaces', { metadata: { name: NS } })).status, 201);
    const clients = loadKubeClients(kube.kubeconfigPath);
    env = await startTestEnv('kube', { backends: { statusSink: new KubeStatusSink(clients), resources: new KubeResourceReader(clients) } });
    await seedRepo(env.gitRoot, 'prompts', { 'a/pack.json': pack('a1'), 'b/pack.json': pack('b1') });
    repoUrl = env.git.repoUrl('prompts');
    controller = await startController();
  });

  after(async () => {
    await controller?.stop();
    await env?.close();
    await kube?.close();
  });

  it('apply → finalizer, status Ready on the resource with a downloadable artifact, and Events', async () => {
    await create('support', { type: 'git', interval: '1h', git: { url: repoUrl, path: 'a' } });
    const cr = await waitCr('support', 'Ready', (o) => o.status?.phase === 'Ready');
    assert.ok(cr.metadata.finalizers.includes('omnia.altairalabs.ai/arena-source'));
    assert.match(cr.status.artifact.revision, /^main@sha1:[0-9a-f]{40}$/);
    assert.equal(cr.status.observedGeneration, cr.metadata.generation);
    assert.ok(cr.status.conditions.every((c: any) => c.observedGeneration === cr.metadata.generation));
    const dl = await env.download(cr.status.artifact.url);
    assert.equal(dl.sha256, cr.status.artifact.checksum);
    const events = (await kube.request('GET', `/api/v1/namespaces/${NS}/events`)).body.items
      .filter((e: any) => e.involvedObject.name === 'support' && e.involvedObject.uid === cr.metadata.uid)
      .map((e: any) => e.reason);
    assert.ok(events.includes('FetchStarted') && events.includes('FetchSucceeded'), events.join(','));
  });

  it('a spec edit produces a new artifact and observedGeneration follows', async () => {
    const before = await getCr('support');
    await patch('support', { spec: { git: { path: 'b' } } });
    const cr = await waitCr('support', 'new checksum', (o) => o.status?.artifact?.checksum !== before.status.artifact.checksum && o.status?.observedGeneration === before.metadata.generation + 1);
    assert.equal(cr.status.phase, 'Ready');
  });

  it('suspend and resume through spec.suspend', async () => {
    await patch('support', { spec: { suspend: true } });
    const suspended = await waitCr('support', 'Suspended', (o) => o.status?.conditions?.find((c: any) => c.type === 'Ready')?.reason === 'Suspended');
    assert.equal(suspended.status.phase, 'Pending');
    await patch('support', { spec: { suspend: false } });
    await waitCr('support', 'Ready again', (o) => o.status?.phase === 'Ready');
  });

  it('the reconcile-requested-at annotation fetches now and is echoed', async () => {
    const sha = await commitFiles(bareRepoPath(env.gitRoot, 'prompts'), { 'b/pack.json': pack('b2') }, { branch: 'main', message: 'b2' });
    await patch('support', { metadata: { annotations: { 'omnia.altairalabs.ai/reconcile-requested-at': '2026-11-25T12:00:00Z' } } });
    const cr = await waitCr('support', 'reconciled', (o) => o.status?.lastHandledReconcileAt === '2026-11-25T12:00:00Z');
    assert.equal(cr.status.artifact.revision, `main@sha1:${sha}`);
  });

  it('ConfigMap sources: revision is the resourceVersion; an edit is a new revision; a wrong key is an error naming it', async () => {
    const cm = await kube.request('POST', `/api/v1/namespaces/${NS}/configmaps`, { metadata: { name: 'packs' }, data: { 'pack.json': pack('1') } });
    assert.equal(cm.status, 201);
    await create('from-cm', { type: 'configmap', interval: '1s', configMap: { name: 'packs' } });
    const first = await waitCr('from-cm', 'Ready', (o) => o.status?.phase === 'Ready');
    assert.equal(first.status.artifact.revision, cm.body.metadata.resourceVersion);
    const edited = await kube.request('PATCH', `/api/v1/namespaces/${NS}/configmaps/packs`, { data: { 'pack.json': pack('2') } }, 'application/merge-patch+json');
    await waitCr('from-cm', 'new revision', (o) => o.status?.artifact?.revision === edited.body.metadata.resourceVersion);
    await create('wrong-key', { type: 'configmap', interval: '1m', configMap: { name: 'packs', key: 'missing.json' } });
    const failed = await waitCr('wrong-key', 'Error', (o) => o.status?.phase === 'Error');
    assert.match(failed.status.conditions.find((c: any) => c.type === 'Ready').message, /has no key 'missing\.json'/);
  });

  it('a restarted controller re-lists and converges on what changed while it was down', async () => {
    await controller.stop();
    await create('while-down', { type: 'git', interval: '1h', git: { url: repoUrl, path: 'a' } });
    controller = await startController();
    await waitCr('while-down', 'Ready', (o) => o.status?.phase === 'Ready');
  });

  it('two controllers and two workers at once: one workflow, one artifact, one finalizer', async () => {
    const second = await startController();
    const extraWorker = await env.stack.addWorker();
    try {
      await create('twice', { type: 'git', interval: '1h', git: { url: repoUrl, path: 'a' } });
      const cr = await waitCr('twice', 'Ready', (o) => o.status?.phase === 'Ready');
      assert.deepEqual(cr.metadata.finalizers, ['omnia.altairalabs.ai/arena-source']);
      const runs: string[] = [];
      for await (const wf of env.stack.client.workflow.list({ query: `WorkflowId = 'arena-source/${NS}/twice'` })) runs.push(wf.runId);
      // One workflow: every run there is (it continues as new after its first fetch) is one chain, none started beside it.
      const chain = (await runsOf(env.stack.client, `arena-source/${NS}/twice`)).map((r) => r.runId);
      // (Visibility may not list the newest run yet: every run it lists must be in the chain.)
      assert.ok(runs.length >= 1 && runs.every((r) => chain.includes(r)), `exactly one workflow: its runs ${runs.join(', ')} are one continue-as-new chain ${chain.join(', ')}`);
      assert.equal((await readdir(join(env.stack.store.root, NS, 'twice'))).filter((f) => f.endsWith('.tar.gz')).length, 1);
    } finally {
      await second.stop();
      await extraWorker.shutdown();
    }
  });

  it('delete → workflow completed, artifacts removed, finalizer released, resource gone', async () => {
    const cr = await getCr('while-down');
    const dir = join(env.stack.store.root, NS, 'while-down');
    assert.ok((await readdir(dir)).length > 0);
    assert.equal((await kube.request('DELETE', `${BASE}/while-down`)).status, 200);
    await waitFor('resource gone', () => kube.request('GET', `${BASE}/while-down`), (r) => r.status === 404, 30_000);
    assert.deepEqual(await readdir(dir).catch(() => []), []);
    assert.equal((await env.download(cr.status.artifact.url)).status, 404);
    const desc = await env.stack.client.workflow.getHandle(`arena-source/${NS}/while-down`).describe();
    assert.equal(desc.status.name, 'COMPLETED');
  });

  it('delete with no workflow running: the run started to delete writes status, the finalizer is still released', async () => {
    // Found by the install test: the resource seen before the deletion is stale once that run has
    // written status, and redoing the deletion on a conflict wrote status again, forever.
    await create('orphaned', { type: 'git', interval: '1h', git: { url: repoUrl, path: 'a' } });
    await waitCr('orphaned', 'Ready', (o) => o.status?.phase === 'Ready');
    await env.stack.client.workflow.getHandle(`arena-source/${NS}/orphaned`).terminate('test: the workflow is gone');
    assert.equal((await kube.request('DELETE', `${BASE}/orphaned`)).status, 200);
    await waitFor('resource gone', () => kube.request('GET', `${BASE}/orphaned`), (r) => r.status === 404, 30_000);
  });
});
