/**
 * arena-source installed the way cluster users install it: the product image
 * (test/image/build.sh) imported into a real kubelet node's containerd
 * (test/helpers/node.ts), `helm install deploy/chart/arena-source`, and then
 * git, OCI and ConfigMap sources served through the artifact Service, a worker
 * pod deleted, an image rollout, and `helm uninstall`. The node itself is
 * checked first (a pod Ready, its Service's ClusterIP answering): one node per
 * suite run, as starting one costs ~10 s and the nodes of two files would queue.
 *
 * The servers the pods use: a Temporal dev server inside the node (10.250.0.2),
 * and on the host end of the node's veth pair (10.250.0.1) the git smart-HTTP
 * server (in this process) and an OCI registry. Nothing leaves the test's own network.
 *
 * The suite's slowest end-to-end test: its figures (node start, image build and
 * import, helm install to every pod Ready) are printed as test diagnostics.
 *
 * Environment: ARENA_E2E_IMAGE=<podman image> uses that image instead of building one.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { Connection, type Client } from '@temporalio/client';
import { repoRoot } from '../../src/api/crd.js';
import { connectClient, getCounters } from '../../src/client.js';
import { DEV_SERVER_FLAGS, SEARCH_ATTRIBUTE_FLAGS } from '../../src/dev/server-settings.js';
import { findTemporalCli } from '../../src/dev/temporal-server.js';
import { GitHttpServer } from '../../src/dev/demo-git/git-http-server.js';
import { bareRepoPath, commitFiles, seedRepo } from '../../src/dev/demo-git/repo.js';
import type { CycleCounters } from '../../workflows/definitions.js';
import { findTool, helm } from '../helpers/manifests.js';
import { HOST_IP, NODE_IP, nodeMissing, PAUSE_IMAGE, startNode, type NodeCluster } from '../helpers/node.js';
import { pushFiles, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { jsonLogLines } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';
import { wholeHistory } from '../helpers/history.js';
import { cachedWorkflowsFor } from '../../src/workflow-cache.js';

const run = promisify(execFile);

const ROOT = repoRoot();
const CHART = join(ROOT, 'deploy', 'chart', 'arena-source');
const RELEASE = 'arena-source';
const SYSTEM_NS = 'arena-source-system';
const NS = 'arena-e2e';
const SOURCES = `/apis/omnia.altairalabs.ai/v1alpha1/namespaces/${NS}/arenasources`;
const NAMES = ['from-git', 'from-oci', 'from-configmap'] as const;
const pack = (v: string) => JSON.stringify({ id: 'e2e', version: v });
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function skipReason(): string | false {
  const missing = [...nodeMissing(), ...(findTool('helm') ? [] : ['helm (scripts/ensure-tools.sh)'])];
  if (!findTemporalCli()) missing.push('temporal (scripts/ensure-tools.sh)');
  if (!process.env.ARENA_E2E_IMAGE && !findTool('podman')) missing.push('podman (scripts/ensure-tools.sh)');
  if (missing.length === 0 || process.env.CI === 'true') return false;
  return `the install test needs: ${missing.join(', ')}`;
}

/** Podman with the image scripts' configuration (runc, cgroupfs: what works on CI machines). */
const podmanEnv = () => ({ ...process.env, CONTAINERS_CONF: process.env.CONTAINERS_CONF ?? join(ROOT, 'test', 'image', 'containers.conf') });

/** The product image: built by test/image/build.sh (its last stdout line is the name), or ARENA_E2E_IMAGE. */
async function productImage(): Promise<string> {
  if (process.env.ARENA_E2E_IMAGE) return process.env.ARENA_E2E_IMAGE;
  const { stdout } = await run('bash', [join(ROOT, 'test', 'image', 'build.sh'), '--tag', 'e2e-install'], { maxBuffer: 64 * 1024 * 1024, timeout: 20 * 60_000 });
  return stdout.trim().split('\n').pop()!;
}

/** A second, trivially different image (one more label): a rollout to it changes the pods, not the code. */
async function variantOf(image: string, dir: string): Promise<string> {
  const variant = `${image.replace(/:[^:/]+$/, '')}:e2e-install-b`;
  await writeFile(join(dir, 'Containerfile'), `FROM ${image}\nLABEL io.arena-source.e2e-variant="b"\n`);
  await run('podman', ['build', '--pull=never', '-t', variant, '-f', join(dir, 'Containerfile'), dir], { env: podmanEnv(), maxBuffer: 16 * 1024 * 1024 });
  return variant;
}

/**
 * A Temporal dev server inside the node, listening on all its addresses (pods and this test
 * reach it at the node's): bound to one address only, its frontend would send requests to
 * internal services at addresses it does not listen on.
 */
async function startTemporalInNode(node: NodeCluster): Promise<string> {
  const port = 7233;
  const proc = node.spawn('temporal', findTemporalCli()!, [
    'server', 'start-dev', '--ip', '0.0.0.0', '--port', String(port), '--headless', '--log-level', 'error',
    ...SEARCH_ATTRIBUTE_FLAGS,
    ...DEV_SERVER_FLAGS,
  ]);
  const address = `${NODE_IP}:${port}`;
  await waitFor(
    `Temporal dev server at ${address}`,
    async () => {
      if (proc.exitCode !== undefined) return `exited with ${proc.exitCode}`;
      const conn = await Connection.connect({ address, connectTimeout: 2_000 });
      try {
        await conn.workflowService.describeNamespace({ namespace: 'default' });
        return 'serving';
      } finally {
        await conn.close();
      }
    },
    (state) => state === 'serving',
    90_000,
    500,
  );
  return address;
}

describe('installed with Helm on a one-node cluster', { skip: skipReason() }, () => {
  let node: NodeCluster;
  let temporalAddress: string;
  let client: Client;
  let git: GitHttpServer;
  let registry: TestRegistry;
  let work: string;
  let image: string;
  let variant: string;
  let repoUrl: string;
  const figures: string[] = [];

  const request = (method: string, path: string, body?: unknown, contentType?: string) => node.kube.request(method, path, body, contentType);
  const kubeconfig = () => ['--kubeconfig', node.kube.kubeconfigPath];
  const source = async (name: string) => (await request('GET', `${SOURCES}/${name}`)).body;
  const condition = (o: any, type: string) => o?.status?.conditions?.find((c: any) => c.type === type);
  const pods = async (ns = SYSTEM_NS) => (await request('GET', `/api/v1/namespaces/${ns}/pods`)).body?.items ?? [];
  const isReady = (p: any) => !p.metadata.deletionTimestamp && condition(p, 'Ready')?.status === 'True';
  const component = (p: any) => p.metadata.labels?.['app.kubernetes.io/component'];
  const counters = async (): Promise<Record<string, CycleCounters>> =>
    Object.fromEntries(await Promise.all(NAMES.map(async (n) => [n, await getCounters(client, { namespace: NS, name: n })] as const)));

  /** Every Deployment of the release rolled out: each pod Ready, none left over, all on `image`. */
  const waitRolledOut = (what: string, image: string, timeoutMs = 300_000) =>
    waitFor(
      what,
      async () => {
        const deployments = (await request('GET', `/apis/apps/v1/namespaces/${SYSTEM_NS}/deployments`)).body?.items ?? [];
        const all = await pods();
        return { deployments, pods: all };
      },
      ({ deployments, pods: all }) =>
        deployments.length === 3 &&
        deployments.every((d: any) => d.status?.updatedReplicas === d.spec.replicas && d.status?.readyReplicas === d.spec.replicas) &&
        all.length === deployments.reduce((n: number, d: any) => n + d.spec.replicas, 0) &&
        all.every((p: any) => isReady(p) && p.spec.containers.every((c: any) => c.image === image)),
      timeoutMs,
      1_000,
    );

  /** On failure: the node's logs and the release's pod logs, as diagnostics. */
  const explained = async (t: TestContext, body: () => Promise<void>) => {
    try {
      await body();
    } catch (err) {
      t.diagnostic(await node.logs().catch((e) => `no node logs: ${e}`));
      for (const p of [...(await pods().catch(() => [])), ...(await pods(NS).catch(() => []))]) {
        t.diagnostic(`--- log of ${p.metadata.name}\n${(await node.podLog(p.metadata.namespace, p.metadata.name).catch((e) => String(e))).slice(-6_000)}`);
      }
      throw err;
    }
  };

  before(async () => {
    const t0 = Date.now();
    work = await mkdtemp(join(tmpdir(), 'arena-install-'));
    node = await startNode();
    figures.push(`node Ready in ${node.startupMs} ms`);

    const t1 = Date.now();
    image = await productImage();
    variant = await variantOf(image, work);
    figures.push(`images ${image} and ${variant} ready in ${Date.now() - t1} ms`);
    const t2 = Date.now();
    await node.loadImages([image, variant]);
    figures.push(`images imported into the node's containerd in ${Date.now() - t2} ms`);

    // What the pods use, on the host end of the veth pair.
    temporalAddress = await startTemporalInNode(node);
    client = await connectClient({ address: temporalAddress, namespace: 'default' });
    git = await GitHttpServer.start({ root: join(work, 'git'), host: HOST_IP });
    await seedRepo(join(work, 'git'), 'prompts', { 'pack.json': pack('g1') });
    repoUrl = git.repoUrl('prompts');
    registry = await startRegistry({ address: HOST_IP });
    await pushFiles(registry, 'bundles/e2e', 'v1', { 'pack.json': pack('o1') });

    // No volume provisioner on this node: one static hostPath volume for the chart's claim,
    // owned by the user the pods run as (hostPath volumes get no fsGroup).
    const volume = join(node.dir, 'volumes', 'artifacts');
    await mkdir(volume, { recursive: true });
    await chown(volume, 65532, 65532);
    const pv = await request('POST', '/api/v1/persistentvolumes', {
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name: 'arena-e2e-artifacts' },
      spec: {
        capacity: { storage: '10Gi' },
        accessModes: ['ReadWriteMany'],
        persistentVolumeReclaimPolicy: 'Retain',
        hostPath: { path: volume, type: 'Directory' },
      },
    });
    assert.equal(pv.status, 201, pv.text);
    assert.equal((await request('POST', '/api/v1/namespaces', { metadata: { name: NS } })).status, 201);
    figures.push(`setup done in ${Date.now() - t0} ms`);
  }, { timeout: 30 * 60_000 }); // a cold image build is part of it

  after(async () => {
    await client?.connection.close().catch(() => undefined);
    await node?.close();
    await git?.close();
    await registry?.close();
    if (work) await rm(work, { recursive: true, force: true });
    if (variant) await run('podman', ['rmi', variant], { env: podmanEnv() }).catch(() => undefined);
  });

  it('the node runs a pod to Ready and its ClusterIP Service answers from the node', async (t) => {
    await explained(t, async () => {
      const ns = '/api/v1/namespaces/default';
      const labels = { app: 'echo' };
      const pod = await request('POST', `${ns}/pods`, {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'echo', labels },
        spec: {
          // The node's own static image (arena-pause), serving HTTP.
          containers: [
            {
              name: 'echo',
              image: PAUSE_IMAGE,
              imagePullPolicy: 'Never',
              args: ['-http', ':8080'],
              readinessProbe: { httpGet: { path: '/', port: 8080 }, periodSeconds: 1 },
            },
          ],
          terminationGracePeriodSeconds: 0,
        },
      });
      assert.equal(pod.status, 201, pod.text);
      const svc = await request('POST', `${ns}/services`, {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'echo' },
        spec: { selector: labels, ports: [{ port: 80, targetPort: 8080 }] },
      });
      assert.equal(svc.status, 201, svc.text);
      await waitFor('pod echo Ready', async () => (await request('GET', `${ns}/pods/echo`)).body, isReady, 120_000, 500);
      // kube-proxy programs the Service once it has seen the ready endpoint: poll.
      const res = await waitFor(
        `http://${svc.body.spec.clusterIP}/ from the node`,
        () => node.fetchInNode(`http://${svc.body.spec.clusterIP}/`, 3_000),
        (r) => r.status === 200,
        60_000,
        500,
      );
      assert.equal(res.body.toString(), 'ok echo\n');
      assert.equal((await request('DELETE', `${ns}/services/echo`)).status, 200);
      assert.equal((await request('DELETE', `${ns}/pods/echo`)).status, 200);
    });
  });

  it('helm install: every pod of the release becomes Ready', async (t) => {
    await explained(t, async () => {
      const [repository, tag] = [image.replace(/:[^:/]+$/, ''), image.split(':').pop()];
      const t0 = Date.now();
      await helm(
        ['install', RELEASE, CHART, '--namespace', SYSTEM_NS, '--create-namespace', ...kubeconfig()],
        { image: { repository, tag, pullPolicy: 'Never' }, temporal: { address: temporalAddress } },
      );
      await waitRolledOut('every pod of the release Ready', image);
      figures.push(`helm install to every pod Ready: ${Date.now() - t0} ms`);
      for (const f of figures) t.diagnostic(f);
      const byComponent = (await pods()).map(component).sort();
      assert.deepEqual(byComponent, ['artifact-server', 'artifact-server', 'controller', 'worker']);
      // The worker sized its workflow cache from the memory limit the kubelet gave its container (the chart's 1Gi).
      const worker = (await pods()).find((p: any) => component(p) === 'worker');
      const log = await node.podLog(SYSTEM_NS, worker.metadata.name);
      const started = jsonLogLines(log).find((l) => l.msg === 'worker started');
      assert.ok(started, `no "worker started" line in:\n${log.slice(-3000)}`);
      assert.equal(started.cacheSizedFrom, 'memory limit (cgroup)');
      assert.equal(started.maxCachedWorkflows, cachedWorkflowsFor(1024 * 1024 * 1024));
    });
  });

  it('git, OCI and ConfigMap sources become Ready and their artifacts download through the artifact Service', async (t) => {
    await explained(t, async () => {
      const cm = await request('POST', `/api/v1/namespaces/${NS}/configmaps`, { metadata: { name: 'packs' }, data: { 'pack.json': pack('c1') } });
      assert.equal(cm.status, 201, cm.text);
      const specs: Record<(typeof NAMES)[number], object> = {
        'from-git': { type: 'git', interval: '5s', git: { url: repoUrl } },
        'from-oci': { type: 'oci', interval: '5s', oci: { url: registry.url('bundles/e2e', 'v1'), insecure: true } },
        'from-configmap': { type: 'configmap', interval: '5s', configMap: { name: 'packs' } },
      };
      for (const name of NAMES) {
        const res = await request('POST', SOURCES, {
          apiVersion: 'omnia.altairalabs.ai/v1alpha1',
          kind: 'ArenaSource',
          metadata: { name, namespace: NS },
          spec: specs[name],
        });
        assert.equal(res.status, 201, res.text);
      }
      for (const name of NAMES) {
        const cr = await waitFor(`${name} Ready`, () => source(name), (o) => o?.status?.phase === 'Ready', 180_000, 1_000);
        assert.ok(cr.metadata.finalizers?.includes('omnia.altairalabs.ai/arena-source'), `${name} has the controller's finalizer`);
        // status.artifact.url names the Service (no cluster DNS here): fetch it at its ClusterIP, from the node.
        const url = new URL(cr.status.artifact.url);
        const [service, namespace] = url.hostname.split('.');
        const svc = (await request('GET', `/api/v1/namespaces/${namespace}/services/${service}`)).body;
        assert.ok(svc?.spec?.clusterIP, `Service ${namespace}/${service} exists`);
        const port = url.port || '80';
        const res = await node.fetchInNode(`http://${svc.spec.clusterIP}:${port}${url.pathname}`);
        assert.equal(res.status, 200, `${name}: GET ${url.pathname} through the ClusterIP`);
        assert.equal(sha256(res.body), cr.status.artifact.checksum, `${name}: the artifact's checksum`);
      }
    });
  });

  it('a deleted worker pod is replaced and the sources keep cycling without a failure', async (t) => {
    await explained(t, async () => {
      const before = await counters();
      for (const name of NAMES) assert.equal(before[name]!.failures, 0, `${name}: no failed cycle before`);
      const worker = (await pods()).find((p: any) => component(p) === 'worker');
      const del = await request('DELETE', `/api/v1/namespaces/${SYSTEM_NS}/pods/${worker.metadata.name}`);
      assert.equal(del.status, 200, del.text);
      await waitFor(
        'a new worker pod Ready',
        pods,
        (all) => all.some((p: any) => component(p) === 'worker' && p.metadata.name !== worker.metadata.name && isReady(p)) &&
          !all.some((p: any) => p.metadata.name === worker.metadata.name),
        180_000,
        1_000,
      );
      // A new commit: the new pod fetches it.
      const sha = await commitFiles(bareRepoPath(join(work, 'git'), 'prompts'), { 'pack.json': pack('g2') }, { branch: 'main', message: 'g2' });
      await waitFor('from-git at the new commit', () => source('from-git'), (o) => o?.status?.artifact?.revision === `main@sha1:${sha}`, 120_000, 1_000);
      const later = await waitFor(
        'two more cycles of every source',
        counters,
        (c) => NAMES.every((n) => c[n]!.cycles >= before[n]!.cycles + 2),
        120_000,
        1_000,
      );
      for (const name of NAMES) {
        assert.equal(later[name]!.failures, 0, `${name}: no failed cycle across the pod's replacement`);
        assert.equal((await source(name)).status.phase, 'Ready', name);
      }
    });
  });

  it('rolling every pod to a second image keeps each status and replays without a nondeterminism error', async (t) => {
    await explained(t, async () => {
      const before = Object.fromEntries(await Promise.all(NAMES.map(async (n) => [n, (await source(n)).status] as const)));
      const cyclesBefore = await counters();
      const [repository, tag] = [variant.replace(/:[^:/]+$/, ''), variant.split(':').pop()];
      await helm(['upgrade', RELEASE, CHART, '--namespace', SYSTEM_NS, '--reuse-values', ...kubeconfig()], { image: { repository, tag } });
      await waitRolledOut('every pod on the second image', variant);
      const after = await waitFor(
        'two more cycles of every source on the new worker',
        counters,
        (c) => NAMES.every((n) => c[n]!.cycles >= cyclesBefore[n]!.cycles + 2),
        120_000,
        1_000,
      );
      for (const name of NAMES) {
        assert.equal(after[name]!.failures, 0, `${name}: no failed cycle across the rollout`);
        const status = (await source(name)).status;
        assert.equal(status.phase, 'Ready', name);
        assert.deepEqual(
          { revision: status.artifact.revision, checksum: status.artifact.checksum, url: status.artifact.url },
          { revision: before[name].artifact.revision, checksum: before[name].artifact.checksum, url: before[name].artifact.url },
          `${name}: the artifact in status is unchanged`,
        );
        // The new worker replayed each workflow's history from the start: a mismatch would fail a workflow task.
        const history = await wholeHistory(client, `arena-source/${NS}/${name}`);
        const failed = (history.events ?? []).filter((e) => e.workflowTaskFailedEventAttributes);
        assert.deepEqual(
          failed.map((e) => e.workflowTaskFailedEventAttributes?.failure?.message),
          [],
          `${name}: no failed workflow task`,
        );
      }
      const worker = (await pods()).find((p: any) => component(p) === 'worker');
      const log = await node.podLog(SYSTEM_NS, worker.metadata.name);
      assert.doesNotMatch(log, /nondetermin/i, 'the new worker logged no nondeterminism');
    });
  });

  it('helm uninstall after the sources are deleted: finalizers released, nothing left behind', async (t) => {
    await explained(t, async () => {
      for (const name of NAMES) assert.equal((await request('DELETE', `${SOURCES}/${name}`)).status, 200);
      await waitFor('sources gone (finalizers released)', async () => (await request('GET', SOURCES)).body?.items ?? [], (items) => items.length === 0, 120_000, 1_000);
      await helm(['uninstall', RELEASE, '--namespace', SYSTEM_NS, '--wait', '--timeout', '3m', ...kubeconfig()]);
      const left = async () => {
        const kinds = [
          `/api/v1/namespaces/${SYSTEM_NS}/pods`,
          `/apis/apps/v1/namespaces/${SYSTEM_NS}/deployments`,
          `/api/v1/namespaces/${SYSTEM_NS}/services`,
          `/api/v1/namespaces/${SYSTEM_NS}/persistentvolumeclaims`,
          `/api/v1/namespaces/${SYSTEM_NS}/configmaps?labelSelector=app.kubernetes.io/managed-by%3DHelm`,
          '/apis/rbac.authorization.k8s.io/v1/clusterroles?labelSelector=app.kubernetes.io/managed-by%3DHelm',
          '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings?labelSelector=app.kubernetes.io/managed-by%3DHelm',
        ];
        const names: string[] = [];
        for (const path of kinds) for (const o of (await request('GET', path)).body?.items ?? []) names.push(`${o.kind ?? path}/${o.metadata.name}`);
        return names;
      };
      await waitFor('the release’s objects gone', left, (names) => names.length === 0, 120_000, 1_000);
      // Both namespaces finalize: nothing in them holds a finalizer nobody will release.
      for (const ns of [SYSTEM_NS, NS]) assert.equal((await request('DELETE', `/api/v1/namespaces/${ns}`)).status, 200);
      for (const ns of [SYSTEM_NS, NS]) {
        await waitFor(`namespace ${ns} deleted`, () => request('GET', `/api/v1/namespaces/${ns}`), (r) => r.status === 404, 120_000, 1_000);
      }
      // The CRD stays (crds.keep: ArenaSources would survive a reinstall).
      assert.equal((await request('GET', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/arenasources.omnia.altairalabs.ai')).status, 200);
      const running = [];
      for await (const wf of client.workflow.list({ query: `ExecutionStatus = 'Running'` })) running.push(wf.workflowId);
      assert.deepEqual(running, [], 'no source workflow left running');
    });
  });
});
