/**
 * The deploy/ manifests against a real API server: every document passes a
 * server-side dry run (kubectl apply --dry-run=server), and RBAC grants each
 * service account exactly what its component needs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { kubeSkipReason, startKube, type Kube } from '../helpers/kube.js';
import { serviceAccountCan, untilServiceAccountCan } from '../helpers/rbac.js';
import { kustomizeBuild as manifests, restCollection as collection, toolSkipReason } from '../helpers/manifests.js';

describe('deploy/ manifests on a real API server', { skip: kubeSkipReason() || toolSkipReason('kustomize') }, () => {
  let kube: Kube;
  let docs: any[];
  let s3: any[];
  let omnia: any[];
  let temporalOverlays: any[][];
  before(async () => {
    kube = await startKube();
    docs = await manifests('deploy/base');
    s3 = await manifests('deploy/overlays/s3');
    omnia = await manifests('deploy/overlays/omnia');
    temporalOverlays = [await manifests('deploy/overlays/temporal-mtls'), await manifests('deploy/overlays/temporal-cloud')];
  });
  after(async () => kube?.close());

  it('every document passes a server-side dry run', async () => {
    // The namespace and the CRD must exist for the rest to be admitted (as with kubectl apply).
    for (const doc of docs.filter((d) => d.kind === 'Namespace' || d.kind === 'CustomResourceDefinition')) {
      const res = await kube.request('POST', collection(doc), doc);
      assert.equal(res.status, 201, `${doc.kind}/${doc.metadata.name}: ${res.text}`);
    }
    for (const doc of docs) {
      const res = await kube.request('POST', `${collection(doc)}?dryRun=All&fieldValidation=Strict`, doc);
      assert.ok([200, 201, 409].includes(res.status), `${doc.kind}/${doc.metadata.name}: ${res.status} ${res.text}`);
      if (res.status === 409) assert.ok(['Namespace', 'CustomResourceDefinition'].includes(doc.kind));
    }
    const kinds = new Set(docs.map((d) => d.kind));
    for (const k of ['CustomResourceDefinition', 'ClusterRole', 'Deployment', 'Service', 'ServiceAccount']) assert.ok(kinds.has(k), k);
    assert.equal(docs.filter((d) => d.kind === 'Deployment').length, 3, 'controller, worker, artifact server');
  });

  it('the S3 overlay (many workers, no shared volume, PodDisruptionBudgets) passes a server-side dry run too', async () => {
    for (const doc of s3) {
      const res = await kube.request('POST', `${collection(doc)}?dryRun=All&fieldValidation=Strict`, doc);
      assert.ok([200, 201, 409].includes(res.status), `${doc.kind}/${doc.metadata.name}: ${res.status} ${res.text}`);
    }
    assert.ok(!s3.some((d) => d.kind === 'PersistentVolumeClaim'), 'no shared volume with S3');
    const worker = s3.find((d) => d.kind === 'Deployment' && d.metadata.name === 'arena-source-worker');
    assert.equal(worker.spec.replicas, 3);
    assert.ok(!JSON.stringify(worker).includes('arena-source-artifacts'), 'workers mount no artifact volume');
    assert.equal(s3.filter((d) => d.kind === 'PodDisruptionBudget').length, 2);
    assert.equal(s3.find((d) => d.kind === 'ConfigMap').data.ARENA_SOURCE_STORE, 's3');
  });

  it('the Omnia overlay mounts the workspace content volume on the workers and lets them read Namespaces', async () => {
    for (const doc of omnia) {
      const res = await kube.request('POST', `${collection(doc)}?dryRun=All&fieldValidation=Strict`, doc);
      assert.ok([200, 201, 409].includes(res.status), `${doc.kind}/${doc.metadata.name}: ${res.status} ${res.text}`);
    }
    const worker = omnia.find((d) => d.kind === 'Deployment' && d.metadata.name === 'arena-source-worker');
    const container = worker.spec.template.spec.containers[0];
    assert.deepEqual(container.env.find((e: any) => e.name === 'ARENA_SOURCE_CONTENT_ROOT'), { name: 'ARENA_SOURCE_CONTENT_ROOT', value: '/workspace-content' });
    assert.ok(container.volumeMounts.some((m: any) => m.name === 'workspace-content' && m.mountPath === '/workspace-content'));
    const claim = worker.spec.template.spec.volumes.find((v: any) => v.name === 'workspace-content').persistentVolumeClaim.claimName;
    const pvc = omnia.find((d) => d.kind === 'PersistentVolumeClaim' && d.metadata.name === claim);
    assert.deepEqual(pvc.spec.accessModes, ['ReadWriteMany']);
    const role = omnia.find((d) => d.kind === 'ClusterRole' && d.metadata.name === 'arena-source-worker');
    const base = docs.find((d) => d.kind === 'ClusterRole' && d.metadata.name === 'arena-source-worker');
    assert.deepEqual(role.rules.slice(0, base.rules.length), base.rules, "the base's rules, plus one");
    assert.deepEqual(role.rules.at(-1), { apiGroups: [''], resources: ['namespaces'], verbs: ['get'] });
  });

  it('the Temporal mTLS and API key overlays (deploy/components) pass a server-side dry run and mount their Secret', async () => {
    for (const [overlay, volume] of temporalOverlays.map((docs, i) => [docs, ['temporal-tls', 'temporal-api-key'][i]] as const)) {
      for (const doc of overlay) {
        const res = await kube.request('POST', `${collection(doc)}?dryRun=All&fieldValidation=Strict`, doc);
        assert.ok([200, 201, 409].includes(res.status), `${doc.kind}/${doc.metadata.name}: ${res.status} ${res.text}`);
      }
      // The artifact server too: its push webhook receiver signals workflows.
      for (const name of ['arena-source-controller', 'arena-source-worker', 'arena-source-artifact-server']) {
        const d = overlay.find((x) => x.kind === 'Deployment' && x.metadata.name === name);
        assert.ok(d.spec.template.spec.containers[0].volumeMounts.some((m: any) => m.name === volume && m.readOnly), `${name} mounts ${volume}`);
      }
    }
  });

  it('RBAC: least privilege per component', async () => {
    for (const doc of docs.filter((d) => ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding'].includes(d.kind))) {
      const res = await kube.request('POST', collection(doc), doc);
      assert.ok([201, 409].includes(res.status), res.text);
    }
    const can = (sa: string, verb: string, resource: string, group = '', subresource?: string) =>
      serviceAccountCan(
        kube,
        { namespace: 'arena-source-system', name: sa },
        { namespace: 'arena', verb, group, resource, ...(subresource ? { subresource } : {}) },
      );
    const G = 'omnia.altairalabs.ai';
    // The authorizer sees new bindings a moment later; the refusals below mean something only after that.
    for (const sa of ['arena-source-controller', 'arena-source-worker']) {
      await untilServiceAccountCan(kube, { namespace: 'arena-source-system', name: sa }, { namespace: 'arena', verb: 'get', group: G, resource: 'arenasources' });
    }
    assert.ok(await can('arena-source-controller', 'watch', 'arenasources', G));
    assert.ok(await can('arena-source-controller', 'patch', 'arenasources', G));
    assert.ok(await can('arena-source-controller', 'update', 'arenasources', G, 'finalizers'));
    assert.ok(!(await can('arena-source-controller', 'get', 'secrets')));
    assert.ok(await can('arena-source-worker', 'patch', 'arenasources', G, 'status'));
    assert.ok(await can('arena-source-worker', 'get', 'secrets'));
    assert.ok(await can('arena-source-worker', 'get', 'configmaps'));
    assert.ok(await can('arena-source-worker', 'create', 'events'));
    assert.ok(!(await can('arena-source-worker', 'list', 'secrets')), 'workers read named Secrets only');
    assert.ok(!(await can('arena-source-worker', 'patch', 'arenasources', G)), 'workers cannot change specs');
    assert.ok(!(await can('arena-source-worker', 'delete', 'arenasources', G)));
    assert.ok(!(await can('arena-source-artifact-server', 'get', 'arenasources', G)));
  });
});
