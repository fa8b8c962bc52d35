/**
 * The deploy/ manifests against a real API server: every document passes a
 * server-side dry run (kubectl apply --dry-run=server), and RBAC grants each
 * service account exactly what its component needs.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { kubeSkipReason, startKube, type Kube } from '../helpers/kube.js';

const BASE = 'deploy/base';

/** REST collection path for a manifest (the subset of kinds deploy/ uses). */
function collection(doc: any): string {
  const ns = doc.metadata.namespace;
  const [group, version] = doc.apiVersion.includes('/') ? doc.apiVersion.split('/') : ['', doc.apiVersion];
  const plural: Record<string, string> = {
    Namespace: 'namespaces', ServiceAccount: 'serviceaccounts', ClusterRole: 'clusterroles', ClusterRoleBinding: 'clusterrolebindings',
    ConfigMap: 'configmaps', PersistentVolumeClaim: 'persistentvolumeclaims', Deployment: 'deployments', Service: 'services',
    CustomResourceDefinition: 'customresourcedefinitions', PodDisruptionBudget: 'poddisruptionbudgets',
  };
  const kind = plural[doc.kind];
  assert.ok(kind, `no REST path known for ${doc.kind}`);
  const root = group ? `/apis/${group}/${version}` : `/api/${version}`;
  return ns ? `${root}/namespaces/${ns}/${kind}` : `${root}/${kind}`;
}

async function manifests(): Promise<any[]> {
  const kustomization = parse(await readFile(join(BASE, 'kustomization.yaml'), 'utf8'));
  const docs: any[] = [];
  for (const file of kustomization.resources as string[]) {
    for (const d of parseAllDocuments(await readFile(join(BASE, file), 'utf8'))) {
      const js = d.toJS();
      if (js) docs.push(js);
    }
  }
  return docs;
}

describe('deploy/ manifests on a real API server', { skip: kubeSkipReason() }, () => {
  let kube: Kube;
  let docs: any[];
  before(async () => {
    kube = await startKube();
    docs = await manifests();
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

  it('RBAC: least privilege per component', async () => {
    for (const doc of docs.filter((d) => ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding'].includes(d.kind))) {
      const res = await kube.request('POST', collection(doc), doc);
      assert.ok([201, 409].includes(res.status), res.text);
    }
    const can = async (sa: string, verb: string, resource: string, group = '', subresource?: string) => {
      const res = await kube.request('POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: {
          user: `system:serviceaccount:arena-source-system:${sa}`,
          groups: ['system:serviceaccounts', 'system:serviceaccounts:arena-source-system', 'system:authenticated'],
          resourceAttributes: { namespace: 'arena', verb, group, resource, ...(subresource ? { subresource } : {}) },
        },
      });
      return res.body.status.allowed === true;
    };
    const G = 'omnia.altairalabs.ai';
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
