/**
 * The conditions as the tools that wait on Kubernetes resources read them, with
 * the real programs: `kubectl wait --for=condition=Ready` and kstatus
 * (sigs.k8s.io/cli-utils, as Flux, Argo CD and kpt use it; test/k8s/kstatus),
 * against a real kube-apiserver with the controller, a worker, Temporal and a git
 * server running. Good → Ready/Current; unreachable → InProgress (retrying), and
 * `kubectl wait` times out; invalid spec → Stalled/Failed; a generation the
 * controller has not handled yet → InProgress, and `kubectl wait` does not take
 * the previous generation's Ready for an answer.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ArenaSourceController } from '../../src/controller/controller.js';
import { seedRepo } from '../../src/dev/demo-git/repo.js';
import { loadKubeClients } from '../../src/kube/config.js';
import { KubeResourceReader } from '../../src/resources/kube-reader.js';
import { KubeStatusSink } from '../../src/status/kube-status-sink.js';
import { startTestEnv, type TestEnv } from '../helpers/env.js';
import { freePort } from '../helpers/free-port.js';
import { installArenaSourceCrd, startKube, kubeSkipReason, type Kube } from '../helpers/kube.js';
import { kubeTools, kubeToolsSkipReason } from '../helpers/kube-tools.js';
import { waitFor } from '../helpers/wait.js';

const NS = 'kstatus';
const BASE = `/apis/omnia.altairalabs.ai/v1alpha1/namespaces/${NS}/arenasources`;

describe('kstatus and kubectl wait on the real API server', { skip: kubeSkipReason() || kubeToolsSkipReason() }, () => {
  let kube: Kube;
  let env: TestEnv;
  let controller: ArenaSourceController;
  let tools: ReturnType<typeof kubeTools>;
  let repoUrl: string;

  const getCr = async (name: string) => (await kube.request('GET', `${BASE}/${name}`)).body;
  const waitCr = (name: string, what: string, ok: (o: any) => boolean, timeoutMs = 60_000) =>
    waitFor(`${name}: ${what}`, () => getCr(name), ok, timeoutMs);
  const condition = (o: any, type: string) => o.status?.conditions?.find((c: any) => c.type === type);
  const create = async (name: string, spec: Record<string, unknown>) => {
    const res = await kube.request('POST', BASE, { apiVersion: 'omnia.altairalabs.ai/v1alpha1', kind: 'ArenaSource', metadata: { name, namespace: NS }, spec });
    assert.equal(res.status, 201, res.text);
  };
  const waitReady = (name: string, timeout: string) =>
    tools.kubectl(['-n', NS, 'wait', '--for=condition=Ready', `arenasource/${name}`, `--timeout=${timeout}`]);
  const kstatus = (name: string) => tools.kstatus(NS, 'arenasource', name);
  const startController = async () => {
    const c = new ArenaSourceController({
      kube: loadKubeClients(kube.kubeconfigPath),
      client: env.stack.client,
      taskQueue: env.taskQueue,
      namespaces: [NS],
      log: () => undefined,
    });
    await c.start();
    return c;
  };

  before(async () => {
    kube = await startKube();
    tools = kubeTools(kube.kubeconfigPath, join(kube.dir, 'kubectl-cache'));
    await installArenaSourceCrd(kube);
    assert.equal((await kube.request('POST', '/api/v1/namespaces', { metadata: { name: NS } })).status, 201);
    const clients = loadKubeClients(kube.kubeconfigPath);
    env = await startTestEnv('kstatus', { backends: { statusSink: new KubeStatusSink(clients), resources: new KubeResourceReader(clients) } });
    await seedRepo(env.gitRoot, 'prompts', { 'pack.json': JSON.stringify({ id: 'k', version: '1' }) });
    repoUrl = env.git.repoUrl('prompts');
    controller = await startController();
  });

  after(async () => {
    await controller?.stop();
    await env?.close();
    await kube?.close();
  });

  it('a good source: `kubectl wait --for=condition=Ready` returns, kstatus says Current', async () => {
    await create('good', { type: 'git', interval: '1h', git: { url: repoUrl } });
    const waited = await waitReady('good', '120s');
    assert.equal(waited.code, 0, waited.stderr);
    assert.match(waited.stdout, /arenasource\.omnia\.altairalabs\.ai\/good condition met/);
    const cr = await getCr('good');
    assert.equal(cr.status.observedGeneration, cr.metadata.generation);
    assert.equal(condition(cr, 'Reconciling'), undefined);
    assert.equal(condition(cr, 'Stalled'), undefined);
    assert.deepEqual(await kstatus('good'), { name: 'good', status: 'Current', message: 'Resource is Ready' });
  });

  it('an unreachable git server: Reconciling=ProgressingWithRetry, kstatus InProgress, `kubectl wait` times out', async () => {
    const closed = await freePort();
    await create('broken', { type: 'git', interval: '1h', timeout: '5s', git: { url: `http://127.0.0.1:${closed}/nothing.git` } });
    const cr = await waitCr('broken', 'retrying', (o) => condition(o, 'Reconciling')?.reason === 'ProgressingWithRetry');
    assert.equal(condition(cr, 'Ready').status, 'False');
    assert.equal(condition(cr, 'Stalled'), undefined, 'a server can come back: not stalled');
    const ks = await kstatus('broken');
    assert.equal(ks.status, 'InProgress');
    assert.match(ks.message, /^FetchFailed: .*retrying at /);
    const waited = await waitReady('broken', '5s');
    assert.notEqual(waited.code, 0);
    assert.match(waited.stderr, /timed out waiting for the condition/);
  });

  it('a spec only a change can fix: Stalled, kstatus Failed; `kubectl wait` for Stalled returns, for Ready times out', async () => {
    // The CRD admits it (its schema has no ref-name rule); the workflow refuses it.
    await create('invalid', { type: 'git', interval: '1h', git: { url: repoUrl, ref: { branch: 'bad..name' } } });
    const cr = await waitCr('invalid', 'stalled', (o) => condition(o, 'Stalled')?.status === 'True');
    assert.equal(condition(cr, 'Stalled').reason, 'InvalidSpec');
    assert.equal(condition(cr, 'Reconciling'), undefined);
    assert.equal(cr.status.observedGeneration, cr.metadata.generation, 'the generation was handled: it cannot work');
    const ks = await kstatus('invalid');
    assert.equal(ks.status, 'Failed');
    assert.match(ks.message, /spec\.git\.ref\.branch: "bad\.\.name" is not a valid git ref name/);
    const stalled = await tools.kubectl(['-n', NS, 'wait', '--for=condition=Stalled', 'arenasource/invalid', '--timeout=30s']);
    assert.equal(stalled.code, 0, stalled.stderr);
    assert.notEqual((await waitReady('invalid', '3s')).code, 0);
    // Fixed by a spec change: Current again.
    const fix = await kube.request('PATCH', `${BASE}/invalid`, { spec: { git: { ref: { branch: 'main' } } } }, 'application/merge-patch+json');
    assert.equal(fix.status, 200, fix.text);
    assert.equal((await waitReady('invalid', '120s')).code, 0);
    assert.equal((await kstatus('invalid')).status, 'Current');
  });

  it('a generation not handled yet is InProgress, and `kubectl wait` holds back on the old generation\'s Ready', async () => {
    await controller.stop();
    const edit = await kube.request('PATCH', `${BASE}/good`, { spec: { interval: '30m' } }, 'application/merge-patch+json');
    assert.equal(edit.status, 200, edit.text);
    const cr = await getCr('good');
    assert.equal(cr.metadata.generation, 2);
    assert.equal(condition(cr, 'Ready').status, 'True', 'still Ready — for generation 1');
    const ks = await kstatus('good');
    assert.deepEqual(ks, { name: 'good', status: 'InProgress', message: 'ArenaSource generation is 2, but latest observed generation is 1' });
    const early = await waitReady('good', '3s');
    assert.notEqual(early.code, 0, 'Ready of generation 1 does not answer for generation 2');
    controller = await startController();
    const waited = await waitReady('good', '120s');
    assert.equal(waited.code, 0, waited.stderr);
    const handled = await getCr('good');
    assert.equal(handled.status.observedGeneration, 2);
    assert.ok(handled.status.conditions.every((c: any) => c.observedGeneration === 2));
    assert.equal((await kstatus('good')).status, 'Current');
  });
});
