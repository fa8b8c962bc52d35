/**
 * The Helm chart (deploy/chart/arena-source) rendered by the real helm (built
 * from its Go module): `helm lint`, what `helm template` produces with the
 * default values and with S3, the Omnia content volume, Temporal TLS and
 * metrics; every rendering passes a server-side dry run on a real API server;
 * `helm install`/`upgrade`/`uninstall` work against it;
 * with default values it produces the same objects as the kustomize base
 * (deploy/base) once the API server has filled in its defaults, so the two
 * cannot drift apart; and the README's values table names every top-level key.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { CHART_CRD_FILE, CRD_FILE, repoRoot } from '../../src/api/crd.js';
import { kubeSkipReason, startKube, type Kube } from '../helpers/kube.js';
import {
  dryRunCreate,
  ensureCreated,
  helm,
  helmTemplate,
  idOf,
  kustomizeBuild,
  parseManifests,
  toolSkipReason,
} from '../helpers/manifests.js';
import { serviceAccountCan, untilServiceAccountCan } from '../helpers/rbac.js';
import { waitFor } from '../helpers/wait.js';

const ROOT = repoRoot();
const CHART = join(ROOT, 'deploy/chart/arena-source');
const NS = 'arena-source-system';
type Values = Record<string, unknown>;

/** What deploy/overlays/s3 does, as values. */
const S3: Values = {
  storage: { type: 's3', s3: { bucket: 'arena-artifacts', prefix: 'prod', region: 'eu-west-1', credentialsSecret: 'arena-source-s3' } },
  worker: {
    replicas: 3,
    topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway' }],
  },
  retention: { keep: 2, ttl: '1h' },
};
const CONTENT_PVC: Values = { contentVolume: { enabled: true, existingClaim: 'omnia-workspace-content' } };
const CONTENT_NFS: Values = { contentVolume: { enabled: true, nfs: { server: 'nfs.example.internal', path: '/exports/omnia' } } };
/** Every optional part at once. */
const EVERYTHING: Values = {
  image: { repository: 'registry.example/arena-source', tag: '9.9.9', pullPolicy: 'Always' },
  imagePullSecrets: [{ name: 'regcred' }],
  temporal: {
    address: 'temporal.example:7233',
    namespace: 'arena',
    taskQueue: 'sources',
    tls: { enabled: true, secretName: 'temporal-client-tls', serverName: 'temporal.example' },
    apiKey: { secretName: 'temporal-api-key', key: 'key' },
  },
  artifactBaseURL: 'https://artifacts.example',
  logLevel: 'debug',
  storage: { type: 's3', s3: { bucket: 'b', endpoint: 'http://minio.minio.svc:9000', forcePathStyle: true, redirectPresigned: true } },
  contentVolume: CONTENT_NFS.contentVolume,
  controller: { replicas: 2, watchNamespaces: ['omnia-system', 'team-a'], terminationGracePeriodSeconds: 20 },
  worker: { replicas: 4, maxCachedWorkflows: 1_000_000, terminationGracePeriodSeconds: 60, extraEnv: [{ name: 'ARENA_SOURCE_GIT_CACHE', value: 'off' }] },
  artifactServer: { replicas: 3, service: { port: 8080 }, extraArgs: ['--redirect-presigned'] },
  metrics: { service: { enabled: true }, serviceMonitor: { enabled: true, labels: { release: 'prometheus' } } },
};

const find = (docs: any[], kind: string, name: string): any => {
  const doc = docs.find((d) => d.kind === kind && d.metadata.name === name);
  assert.ok(doc, `no ${kind}/${name} in ${docs.map(idOf).join(', ')}`);
  return doc;
};
const container = (deployment: any): any => deployment.spec.template.spec.containers[0];
const envOf = (c: any): Record<string, any> => Object.fromEntries((c.env ?? []).map((e: any) => [e.name, e.value ?? e.valueFrom]));
const render = (values?: Values, opts: { release?: string; namespace?: string } = {}) =>
  helmTemplate(CHART, { ...opts, ...(values ? { values } : {}) });

describe('Helm chart deploy/chart/arena-source (helm lint, helm template)', { skip: toolSkipReason('helm') }, () => {
  it('passes helm lint --strict with the default values and with each variant', async () => {
    for (const values of [undefined, S3, CONTENT_PVC, CONTENT_NFS, EVERYTHING]) {
      const out = await helm(['lint', CHART, '--strict'], values);
      assert.match(out, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
  });

  it('default values: the kustomize base’s objects in the release namespace, hardened, with probes', async () => {
    const docs = await render();
    assert.deepEqual(docs.map(idOf).sort(), [
      'ClusterRole/arena-source-controller',
      'ClusterRole/arena-source-worker',
      'ClusterRoleBinding/arena-source-controller',
      'ClusterRoleBinding/arena-source-worker',
      'ConfigMap/arena-source-config',
      'CustomResourceDefinition/arenasources.omnia.altairalabs.ai',
      'Deployment/arena-source-artifact-server',
      'Deployment/arena-source-controller',
      'Deployment/arena-source-worker',
      'PersistentVolumeClaim/arena-source-artifacts',
      // The artifact server runs 2 replicas: a budget keeps one up during drains.
      'PodDisruptionBudget/arena-source-artifact-server',
      'Service/arena-source-artifacts',
      'Service/arena-source-webhooks',
      'ServiceAccount/arena-source-artifact-server',
      'ServiceAccount/arena-source-controller',
      'ServiceAccount/arena-source-worker',
    ]);
    for (const d of docs) {
      const clusterScoped = ['ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition'].includes(d.kind);
      assert.equal(d.metadata.namespace, clusterScoped ? undefined : NS, idOf(d));
      assert.equal(d.metadata.labels['app.kubernetes.io/managed-by'], 'Helm', idOf(d));
    }
    const appVersion = parse(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')).appVersion;
    const ports: Record<string, [string, number, string]> = {
      'arena-source-controller': ['metrics', 9465, '/readyz'],
      'arena-source-worker': ['metrics', 9464, '/readyz'],
      'arena-source-artifact-server': ['http', 9090, '/healthz'],
    };
    for (const d of docs.filter((x) => x.kind === 'Deployment')) {
      const pod = d.spec.template.spec;
      const c = container(d);
      assert.equal(c.image, `ghcr.io/altairalabs/arena-source:${appVersion}`);
      assert.equal(pod.securityContext.runAsNonRoot, true);
      assert.equal(pod.securityContext.runAsUser, 65532);
      assert.deepEqual(pod.securityContext.seccompProfile, { type: 'RuntimeDefault' });
      assert.deepEqual(c.securityContext, { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
      const [portName, port, readyPath] = ports[d.metadata.name]!;
      // The artifact server also answers push webhooks, on a port of its own.
      const webhooks = d.metadata.name === 'arena-source-artifact-server' ? [{ name: 'webhooks', containerPort: 9091 }] : [];
      assert.deepEqual(c.ports, [{ name: portName, containerPort: port }, ...webhooks]);
      assert.deepEqual(c.livenessProbe.httpGet, { path: '/healthz', port: portName });
      assert.deepEqual(c.readinessProbe.httpGet, { path: readyPath, port: portName });
      if (portName === 'metrics') assert.equal(envOf(c).ARENA_SOURCE_METRICS_HOST, '0.0.0.0');
      assert.ok(d.spec.template.metadata.annotations['checksum/config'], 'pods roll when the ConfigMap changes');
    }
    const crd = find(docs, 'CustomResourceDefinition', 'arenasources.omnia.altairalabs.ai');
    assert.equal(crd.metadata.annotations['helm.sh/resource-policy'], 'keep', 'uninstalling must not delete every ArenaSource');
    const generated = parseManifests(readFileSync(join(ROOT, CRD_FILE), 'utf8'))[0];
    assert.deepEqual(crd.spec, generated.spec, 'the chart installs the generated CRD');
    assert.equal(readFileSync(join(ROOT, CHART_CRD_FILE), 'utf8'), readFileSync(join(ROOT, CRD_FILE), 'utf8'));
  });

  it('S3: bucket settings in the ConfigMap, credentials Secret on workers and server, no shared volume', async () => {
    const docs = await render(S3);
    assert.ok(!docs.some((d) => d.kind === 'PersistentVolumeClaim'));
    const data = find(docs, 'ConfigMap', 'arena-source-config').data;
    assert.equal(data.ARENA_SOURCE_STORE, 's3');
    assert.equal(data.ARENA_SOURCE_S3_BUCKET, 'arena-artifacts');
    assert.equal(data.ARENA_SOURCE_S3_PREFIX, 'prod');
    assert.equal(data.ARENA_SOURCE_S3_REGION, 'eu-west-1');
    assert.equal(data.ARENA_SOURCE_RETENTION_KEEP, '2');
    assert.equal(data.ARENA_SOURCE_RETENTION_TTL, '1h');
    assert.equal(data.ARENA_SOURCE_S3_ENDPOINT, undefined);
    for (const name of ['arena-source-worker', 'arena-source-artifact-server']) {
      const d = find(docs, 'Deployment', name);
      assert.deepEqual(container(d).envFrom[1], { secretRef: { name: 'arena-source-s3' } }, name);
      assert.ok(!JSON.stringify(d).includes('arena-source-artifacts'), `${name} mounts no artifact volume`);
    }
    const worker = find(docs, 'Deployment', 'arena-source-worker');
    assert.equal(worker.spec.replicas, 3);
    assert.deepEqual(worker.spec.template.spec.topologySpreadConstraints[0].labelSelector.matchLabels, worker.spec.selector.matchLabels);
    assert.deepEqual(find(docs, 'PodDisruptionBudget', 'arena-source-worker').spec.maxUnavailable, 1);
    assert.ok(!docs.some((d) => d.kind === 'PodDisruptionBudget' && d.metadata.name === 'arena-source-controller'), 'one controller: no budget');
  });

  it('content volume (existing PVC or NFS): mounted at /workspace-content on the workers, which may read namespaces', async () => {
    for (const [values, volume] of [
      [CONTENT_PVC, { name: 'content', persistentVolumeClaim: { claimName: 'omnia-workspace-content' } }],
      [CONTENT_NFS, { name: 'content', nfs: { server: 'nfs.example.internal', path: '/exports/omnia' } }],
    ] as const) {
      const docs = await render(values);
      const worker = find(docs, 'Deployment', 'arena-source-worker');
      assert.equal(envOf(container(worker)).ARENA_SOURCE_CONTENT_ROOT, '/workspace-content');
      assert.ok(container(worker).volumeMounts.some((m: any) => m.name === 'content' && m.mountPath === '/workspace-content' && !m.readOnly));
      assert.deepEqual(worker.spec.template.spec.volumes.find((v: any) => v.name === 'content'), volume);
      for (const name of ['arena-source-controller', 'arena-source-artifact-server']) {
        assert.ok(!JSON.stringify(find(docs, 'Deployment', name)).includes('workspace-content'), `${name} does not mount it`);
      }
      const rules = find(docs, 'ClusterRole', 'arena-source-worker').rules;
      assert.deepEqual(rules.at(-1), { apiGroups: [''], resources: ['namespaces'], verbs: ['get'] });
    }
    const off = await render();
    assert.ok(!JSON.stringify(find(off, 'ClusterRole', 'arena-source-worker')).includes('namespaces'), 'off by default');
    assert.ok(!JSON.stringify(off).includes('workspace-content'));
  });

  it('Temporal TLS and API key: Temporal’s envconfig variables and the Secret mounted on every component that talks to Temporal (controller, workers, the artifact server’s webhook receiver)', async () => {
    const docs = await render(EVERYTHING);
    const dir = '/etc/arena-source/temporal-tls';
    for (const name of ['arena-source-controller', 'arena-source-worker', 'arena-source-artifact-server']) {
      const d = find(docs, 'Deployment', name);
      const env = envOf(container(d));
      assert.equal(env.TEMPORAL_TLS, 'true');
      assert.equal(env.TEMPORAL_TLS_CLIENT_CERT_PATH, `${dir}/tls.crt`);
      assert.equal(env.TEMPORAL_TLS_CLIENT_KEY_PATH, `${dir}/tls.key`);
      assert.equal(env.TEMPORAL_TLS_SERVER_CA_CERT_PATH, `${dir}/ca.crt`);
      assert.equal(env.TEMPORAL_TLS_SERVER_NAME, 'temporal.example');
      assert.equal(env.ARENA_SOURCE_TEMPORAL_API_KEY_FILE, '/etc/arena-source/temporal-api-key/key', 'a file: a rotated key is re-read');
      assert.equal(env.TEMPORAL_API_KEY, undefined);
      assert.ok(container(d).volumeMounts.some((m: any) => m.name === 'temporal-tls' && m.mountPath === dir && m.readOnly));
      assert.ok(d.spec.template.spec.volumes.some((v: any) => v.name === 'temporal-tls' && v.secret.secretName === 'temporal-client-tls'));
      assert.ok(container(d).volumeMounts.some((m: any) => m.name === 'temporal-api-key' && m.mountPath === '/etc/arena-source/temporal-api-key' && m.readOnly));
      assert.deepEqual(d.spec.template.spec.volumes.find((v: any) => v.name === 'temporal-api-key').secret, {
        secretName: 'temporal-api-key',
        items: [{ key: 'key', path: 'key' }],
      });
    }
    const data = find(docs, 'ConfigMap', 'arena-source-config').data;
    assert.deepEqual(
      [data.TEMPORAL_ADDRESS, data.TEMPORAL_NAMESPACE, data.ARENA_SOURCE_TASK_QUEUE, data.ARENA_SOURCE_ARTIFACT_BASE_URL],
      ['temporal.example:7233', 'arena', 'sources', 'https://artifacts.example'],
    );
    assert.equal(data.ARENA_SOURCE_WATCH_NAMESPACES, 'omnia-system,team-a');
    assert.equal(data.ARENA_SOURCE_MAX_CACHED_WORKFLOWS, '1000000', 'whole numbers without an exponent');
    const worker = find(docs, 'Deployment', 'arena-source-worker');
    assert.equal(container(worker).image, 'registry.example/arena-source:9.9.9');
    assert.equal(container(worker).imagePullPolicy, 'Always');
    assert.equal(worker.spec.template.spec.terminationGracePeriodSeconds, 60);
    assert.deepEqual(container(find(docs, 'Deployment', 'arena-source-artifact-server')).args, [
      'serve', '--host', '0.0.0.0', '--port', '9090', '--redirect-presigned',
    ]);
    // Every component runs more than one replica: one budget each.
    assert.equal(docs.filter((d) => d.kind === 'PodDisruptionBudget').length, 3);
  });

  it('metrics: a Service per component on its metrics port, and a ServiceMonitor selecting them', async () => {
    const docs = await render(EVERYTHING);
    for (const [component, port] of [['controller', 9465], ['worker', 9464]] as const) {
      const svc = find(docs, 'Service', `arena-source-${component}-metrics`);
      assert.deepEqual(svc.spec.ports, [{ name: 'metrics', port, targetPort: 'metrics' }]);
      assert.equal(svc.spec.selector['app.kubernetes.io/component'], component);
    }
    const sm = find(docs, 'ServiceMonitor', 'arena-source');
    assert.equal(sm.apiVersion, 'monitoring.coreos.com/v1');
    assert.equal(sm.metadata.labels.release, 'prometheus');
    assert.deepEqual(sm.spec.endpoints, [{ port: 'metrics', path: '/metrics', interval: '30s' }]);
    assert.deepEqual(sm.spec.namespaceSelector, { matchNames: [NS] });
    const selected = docs.filter(
      (d) => d.kind === 'Service' && Object.entries(sm.spec.selector.matchLabels).every(([k, v]) => d.metadata.labels[k] === v),
    );
    assert.deepEqual(selected.map(idOf).sort(), ['Service/arena-source-controller-metrics', 'Service/arena-source-worker-metrics']);
    assert.ok(!(await render()).some((d) => d.kind === 'ServiceMonitor' || d.metadata.name.endsWith('-metrics')), 'off by default');
  });

  it('push webhooks: an optional Secret, a port and a Service of their own, with S3 too; off leaves them out', async () => {
    for (const values of [undefined, S3]) {
      const docs = await render(values);
      const server = find(docs, 'Deployment', 'arena-source-artifact-server');
      const c = container(server);
      assert.equal(envOf(c).ARENA_SOURCE_WEBHOOK_SECRET_FILE, '/etc/arena-source/webhook/secret');
      assert.equal(envOf(c).ARENA_SOURCE_WEBHOOK_PORT, '9091');
      assert.ok(c.volumeMounts.some((m: any) => m.name === 'webhook-secret' && m.readOnly));
      assert.deepEqual(server.spec.template.spec.volumes.find((v: any) => v.name === 'webhook-secret').secret, { secretName: 'arena-source-webhook', optional: true });
      assert.equal(server.spec.template.spec.automountServiceAccountToken, false, 'the receiver needs no Kubernetes API access');
      assert.deepEqual(find(docs, 'Service', 'arena-source-webhooks').spec.ports, [{ name: 'webhooks', port: 80, targetPort: 'webhooks' }]);
    }
    const off = await render({ artifactServer: { webhooks: { enabled: false } } });
    assert.ok(!off.some((d) => d.metadata.name === 'arena-source-webhooks'));
    assert.ok(!JSON.stringify(find(off, 'Deployment', 'arena-source-artifact-server')).includes('WEBHOOK'));
  });

  it('names follow the release; crds.install=false leaves the CRD out', async () => {
    const docs = await render({ crds: { install: false } }, { release: 'omnia-arena', namespace: 'omnia-system' });
    assert.ok(!docs.some((d) => d.kind === 'CustomResourceDefinition'));
    const binding = find(docs, 'ClusterRoleBinding', 'omnia-arena-arena-source-worker');
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'omnia-arena-arena-source-worker', namespace: 'omnia-system' }]);
    assert.equal(
      find(docs, 'ConfigMap', 'omnia-arena-arena-source-config').data.ARENA_SOURCE_ARTIFACT_BASE_URL,
      'http://omnia-arena-arena-source-artifacts.omnia-system.svc.cluster.local',
    );
  });

  it('values that cannot work fail the render with a message', async () => {
    const cases: [Values, RegExp][] = [
      [{ storage: { type: 's3' } }, /storage\.type s3 needs storage\.s3\.bucket/],
      [{ storage: { type: 'gcs' } }, /storage\.type must be fs or s3/],
      [{ contentVolume: { enabled: true } }, /contentVolume\.enabled needs contentVolume\.existingClaim/],
      [{ contentVolume: { ...CONTENT_NFS.contentVolume as object, existingClaim: 'c' } }, /either existingClaim or nfs/],
      [{ metrics: { serviceMonitor: { enabled: true } } }, /serviceMonitor\.enabled needs metrics\.service\.enabled/],
    ];
    for (const [values, message] of cases) await assert.rejects(render(values), message);
  });
});

describe('kustomize overlays for Temporal mTLS and API keys match the chart', { skip: toolSkipReason('helm', 'kustomize') }, () => {
  /** Each Deployment's Temporal credentials: the TEMPORAL_TLS* / ARENA_SOURCE_TEMPORAL_* variables and temporal-* mounts and volumes. */
  const temporalParts = (docs: any[]) =>
    Object.fromEntries(
      docs
        .filter((d) => d.kind === 'Deployment')
        .map((d) => {
          const c = container(d);
          const mine = (name: string) => name.startsWith('temporal-');
          return [
            d.metadata.name,
            {
              env: (c.env ?? []).filter((e: any) => /^(TEMPORAL_TLS|ARENA_SOURCE_TEMPORAL_)/.test(e.name)).sort((a: any, b: any) => a.name.localeCompare(b.name)),
              mounts: (c.volumeMounts ?? []).filter((m: any) => mine(m.name)),
              volumes: (d.spec.template.spec.volumes ?? []).filter((v: any) => mine(v.name)),
            },
          ];
        }),
    );
  it('deploy/overlays/temporal-mtls = temporal.tls {enabled, secretName: arena-source-temporal-tls}', async () => {
    const chart = await render({ temporal: { tls: { enabled: true, secretName: 'arena-source-temporal-tls' } } });
    assert.deepEqual(temporalParts(await kustomizeBuild(join(ROOT, 'deploy/overlays/temporal-mtls'))), temporalParts(chart));
  });
  it('deploy/overlays/temporal-cloud = temporal.apiKey {secretName: arena-source-temporal-api-key, key: api-key}', async () => {
    const chart = await render({ temporal: { apiKey: { secretName: 'arena-source-temporal-api-key', key: 'api-key' } } });
    const kustomized = await kustomizeBuild(join(ROOT, 'deploy/overlays/temporal-cloud'));
    assert.deepEqual(temporalParts(kustomized), temporalParts(chart));
    assert.equal(find(kustomized, 'ConfigMap', 'arena-source-config').data.TEMPORAL_ADDRESS, 'your-namespace.your-account.tmprl.cloud:7233');
  });
});

/**
 * The subset of the Prometheus Operator's ServiceMonitor CRD the chart uses, so
 * that a strict dry run rejects a misspelt field (the test API server has no
 * Prometheus Operator).
 */
const SERVICE_MONITOR_CRD = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: 'servicemonitors.monitoring.coreos.com' },
  spec: {
    group: 'monitoring.coreos.com',
    names: { kind: 'ServiceMonitor', listKind: 'ServiceMonitorList', plural: 'servicemonitors', singular: 'servicemonitor' },
    scope: 'Namespaced',
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        schema: {
          openAPIV3Schema: {
            type: 'object',
            required: ['spec'],
            properties: {
              spec: {
                type: 'object',
                required: ['selector'],
                properties: {
                  selector: { type: 'object', properties: { matchLabels: { type: 'object', additionalProperties: { type: 'string' } } } },
                  namespaceSelector: {
                    type: 'object',
                    properties: { any: { type: 'boolean' }, matchNames: { type: 'array', items: { type: 'string' } } },
                  },
                  endpoints: {
                    type: 'array',
                    items: {
                      type: 'object',
                      properties: { port: { type: 'string' }, path: { type: 'string' }, interval: { type: 'string', pattern: '^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$' } },
                    },
                  },
                },
              },
            },
          },
        },
      },
    ],
  },
};

/**
 * An object made comparable: what the API server generated, the objects' own labels and
 * annotations, and Helm's labels in selectors and pod templates removed (pod labels and
 * selectors are otherwise compared).
 */
function normalize(obj: any): any {
  const HELM_LABELS = ['helm.sh/chart', 'app.kubernetes.io/instance', 'app.kubernetes.io/version', 'app.kubernetes.io/managed-by'];
  const walk = (node: any, key?: string): any => {
    if (Array.isArray(node)) return node.map((n) => walk(n));
    if (node === null || typeof node !== 'object') return node;
    const out: any = {};
    for (const [k, v] of Object.entries(node)) {
      if ((key === 'labels' || key === 'matchLabels' || key === 'selector') && HELM_LABELS.includes(k)) continue;
      out[k] = walk(v, k);
    }
    if (key === 'metadata') {
      for (const k of ['uid', 'resourceVersion', 'creationTimestamp', 'generation', 'managedFields', 'annotations']) delete out[k];
    }
    return out;
  };
  const copy = walk(obj);
  delete copy.metadata.labels; // Helm's (the base has few); selectors and pod labels are compared above
  delete copy.status;
  if (copy.kind === 'Service') {
    delete copy.spec.clusterIP; // allocated at random
    delete copy.spec.clusterIPs;
  }
  return copy;
}

describe('Helm chart on a real API server', { skip: kubeSkipReason() || toolSkipReason('helm', 'kustomize') }, () => {
  let kube: Kube;
  before(async () => {
    kube = await startKube();
    for (const name of [NS, 'omnia-system']) await ensureCreated(kube, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
    await ensureCreated(kube, SERVICE_MONITOR_CRD);
    await waitFor(
      'the ServiceMonitor resource to be served',
      () => kube.request('GET', '/apis/monitoring.coreos.com/v1'),
      (res) => res.status === 200 && res.body.resources?.some((r: any) => r.name === 'servicemonitors'),
    );
  });
  after(async () => kube?.close());

  // First, while the CRD does not exist yet: Helm must be able to own it.
  it('helm install, upgrade and uninstall against the API server (the CRD stays behind)', async () => {
    const ns = 'helm-lifecycle';
    const kc = ['--kubeconfig', kube.kubeconfigPath, '--namespace', ns];
    const list = async (path: string) => ((await kube.request('GET', path)).body.items as any[]).map((o) => o.metadata.name).sort();
    const crdPath = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/arenasources.omnia.altairalabs.ai';

    await helm(['install', 'life', CHART, '--create-namespace', ...kc]);
    assert.deepEqual(await list(`/apis/apps/v1/namespaces/${ns}/deployments`), [
      'life-arena-source-artifact-server',
      'life-arena-source-controller',
      'life-arena-source-worker',
    ]);
    const crd = (await kube.request('GET', crdPath)).body;
    assert.equal(crd.metadata.labels['app.kubernetes.io/managed-by'], 'Helm');
    assert.ok(crd.status.conditions.some((c: any) => c.type === 'Established' && c.status === 'True'));

    await helm(['upgrade', 'life', CHART, ...kc], EVERYTHING);
    const config = (await kube.request('GET', `/api/v1/namespaces/${ns}/configmaps/life-arena-source-config`)).body;
    assert.equal(config.data.ARENA_SOURCE_STORE, 's3');
    assert.deepEqual(await list(`/apis/monitoring.coreos.com/v1/namespaces/${ns}/servicemonitors`), ['life-arena-source']);
    assert.equal((await list(`/apis/policy/v1/namespaces/${ns}/poddisruptionbudgets`)).length, 3);
    const worker = (await kube.request('GET', `/apis/apps/v1/namespaces/${ns}/deployments/life-arena-source-worker`)).body;
    assert.equal(worker.spec.replicas, 4);
    // The artifact PVC is no longer wanted (S3); its protection finalizer needs a controller to finish the delete.
    const pvc = await kube.request('GET', `/api/v1/namespaces/${ns}/persistentvolumeclaims/life-arena-source-artifacts`);
    assert.ok(pvc.status === 404 || pvc.body.metadata.deletionTimestamp, 'the PVC is being deleted');

    await helm(['uninstall', 'life', ...kc]);
    assert.deepEqual(await list(`/apis/apps/v1/namespaces/${ns}/deployments`), []);
    assert.deepEqual(await list('/apis/rbac.authorization.k8s.io/v1/clusterroles?labelSelector=app.kubernetes.io%2Finstance%3Dlife'), []);
    assert.equal((await kube.request('GET', crdPath)).status, 200, 'crds.keep: the CRD (and so every ArenaSource) survives');
  });

  it('every rendering passes a server-side dry run (the chart’s CRD installed for real first)', async () => {
    for (const [label, values] of [['default', undefined], ['s3', S3], ['content PVC', CONTENT_PVC], ['content NFS', CONTENT_NFS], ['everything', EVERYTHING]] as const) {
      const docs = await render(values);
      for (const crd of docs.filter((d) => d.kind === 'CustomResourceDefinition')) await ensureCreated(kube, crd);
      for (const doc of docs) {
        const res = await dryRunCreate(kube, doc);
        const existing = res.status === 409 && doc.kind === 'CustomResourceDefinition';
        assert.ok([200, 201].includes(res.status) || existing, `${label}: ${idOf(doc)}: ${res.status} ${res.text}`);
      }
    }
    const crd = await kube.request('GET', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/arenasources.omnia.altairalabs.ai');
    assert.ok(crd.body.status.conditions.some((c: any) => c.type === 'Established' && c.status === 'True'));
  });

  it('default values produce the kustomize base’s objects (after API server defaulting, Helm labels aside)', async () => {
    const base = (await kustomizeBuild(join(ROOT, 'deploy/base'))).filter((d) => d.kind !== 'Namespace'); // helm --create-namespace
    const chart = await render();
    const chartOnly = chart.filter((c) => !base.some((b) => idOf(b) === idOf(c))).map(idOf);
    assert.deepEqual(chartOnly, ['PodDisruptionBudget/arena-source-artifact-server'], 'objects only the chart has');
    for (const b of base) {
      const c = chart.find((d) => idOf(d) === idOf(b));
      assert.ok(c, `the chart has no ${idOf(b)}`);
      if (b.kind === 'CustomResourceDefinition') {
        // Exists already (installed above): compare what is sent.
        assert.deepEqual(normalize(c), normalize(b));
        continue;
      }
      const [fromBase, fromChart] = [await dryRunCreate(kube, b), await dryRunCreate(kube, c)];
      assert.equal(fromBase.status, 201, `${idOf(b)} from deploy/base: ${fromBase.text}`);
      assert.equal(fromChart.status, 201, `${idOf(c)} from the chart: ${fromChart.text}`);
      assert.deepEqual(normalize(fromChart.body), normalize(fromBase.body), `${idOf(b)}: chart and deploy/base differ`);
    }
  });

  it('RBAC with the content volume: the worker may get namespaces, nothing more; without it, not at all', async () => {
    const withContent = await render(CONTENT_NFS, { release: 'omnia-arena', namespace: 'omnia-system' });
    const without = await render();
    for (const doc of [...withContent, ...without].filter((d) => ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding'].includes(d.kind))) {
      await ensureCreated(kube, doc);
    }
    const omniaWorker = { namespace: 'omnia-system', name: 'omnia-arena-arena-source-worker' };
    const plainWorker = { namespace: NS, name: 'arena-source-worker' };
    // Allowed once the authorizer has seen the new bindings (it reads them from an informer).
    await untilServiceAccountCan(kube, omniaWorker, { verb: 'get', resource: 'namespaces', name: 'team-a' });
    await untilServiceAccountCan(kube, plainWorker, { verb: 'get', resource: 'arenasources', group: 'omnia.altairalabs.ai', namespace: 'team-a' });
    assert.ok(!(await serviceAccountCan(kube, omniaWorker, { verb: 'list', resource: 'namespaces' })));
    assert.ok(!(await serviceAccountCan(kube, omniaWorker, { verb: 'patch', resource: 'namespaces', name: 'team-a' })));
    assert.ok(await serviceAccountCan(kube, omniaWorker, { verb: 'patch', resource: 'arenasources', group: 'omnia.altairalabs.ai', subresource: 'status', namespace: 'team-a' }));
    assert.ok(!(await serviceAccountCan(kube, plainWorker, { verb: 'get', resource: 'namespaces', name: 'team-a' })));
    assert.ok(!(await serviceAccountCan(kube, { namespace: 'omnia-system', name: 'omnia-arena-arena-source-controller' }, { verb: 'get', resource: 'namespaces', name: 'team-a' })));
  });
});

describe('README documents the chart', () => {
  it('the values table names every top-level key of values.yaml', () => {
    const values = parse(readFileSync(join(CHART, 'values.yaml'), 'utf8')) as Values;
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('### Helm chart values'));
    assert.ok(section.length < readme.length, 'README has a "### Helm chart values" section');
    // Keys named in the first cell of the table's rows (`a.b`, `c` …).
    const named = section
      .split('\n')
      .filter((l) => l.startsWith('| `'))
      .flatMap((l) => [...l.split('|')[1]!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!));
    const missing = Object.keys(values).filter((k) => !named.some((n) => n === k || n.startsWith(`${k}.`)));
    assert.deepEqual(missing, [], 'top-level values keys missing from the README table');
  });
});
