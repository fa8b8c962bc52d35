/**
 * The generated CRD against a real kube-apiserver (test/helpers/kube.ts): it
 * installs and becomes Established, Omnia's samples and the specification's
 * examples are accepted and read back with the CRD's defaults, the API server
 * itself rejects invalid objects with messages naming the field, and the
 * status subresource is written independently of the spec.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1CustomResourceDefinition,
} from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { CRD_FILE, CRD_NAME, CRD_PLURAL, CRD_VERSION, repoRoot } from '../../src/api/crd.js';
import { API_GROUP, API_VERSION, KIND } from '../../src/api/schema.js';
import { kubeSkipReason, startKube, type Kube } from '../helpers/kube.js';
import { waitFor } from '../helpers/wait.js';

const ROOT = repoRoot();
const NS = 'omnia-system';
type Obj = Record<string, any>;

function loadYaml(path: string): Obj[] {
  return parseAllDocuments(readFileSync(path, 'utf8'))
    .map((d) => d.toJS() as Obj | null)
    .filter((d): d is Obj => d !== null && typeof d === 'object');
}

/** The API server's Status message from a client-node ApiException (its body is the JSON text). */
function apiError(err: unknown): { code: number; message: string } {
  const e = err as { code?: number; body?: unknown; message?: string };
  let body: Obj | undefined;
  if (typeof e.body === 'string') {
    try {
      body = JSON.parse(e.body) as Obj;
    } catch {
      body = undefined;
    }
  } else if (e.body && typeof e.body === 'object') body = e.body as Obj;
  return { code: e.code ?? 0, message: String(body?.message ?? e.message ?? err) };
}

describe('ArenaSource CRD on a real kube-apiserver', { skip: kubeSkipReason() }, () => {
  let kube: Kube;
  let crds: ApiextensionsV1Api;
  let objects: CustomObjectsApi;
  let core: CoreV1Api;

  const create = (body: Obj, namespace = NS) =>
    objects.createNamespacedCustomObject({ group: API_GROUP, version: CRD_VERSION, namespace, plural: CRD_PLURAL, body }) as Promise<Obj>;
  const read = (name: string, namespace = NS) =>
    objects.getNamespacedCustomObject({ group: API_GROUP, version: CRD_VERSION, namespace, plural: CRD_PLURAL, name }) as Promise<Obj>;
  const doc = (name: string, spec: Obj): Obj => ({ apiVersion: API_VERSION, kind: KIND, metadata: { name }, spec });

  /** Creates the object and returns the API server's rejection (failing if it was accepted). */
  async function rejection(name: string, spec: Obj): Promise<string> {
    try {
      await create(doc(name, spec));
    } catch (err) {
      const { code, message } = apiError(err);
      assert.equal(code, 422, `expected 422 Invalid, got ${code}: ${message}`);
      return message;
    }
    assert.fail(`the API server accepted ${JSON.stringify(spec)}`);
  }

  before(async () => {
    kube = await startKube();
    process.stderr.write(`[crd.test] kube-apiserver ready at ${kube.server} in ${kube.startupMs} ms\n`);
    const kc = new KubeConfig();
    kc.loadFromFile(kube.kubeconfigPath);
    crds = kc.makeApiClient(ApiextensionsV1Api);
    objects = kc.makeApiClient(CustomObjectsApi);
    core = kc.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: NS } } });
  });

  after(async () => {
    await kube?.close();
  });

  it('installs from deploy/crds and becomes Established', async () => {
    const [crd] = loadYaml(join(ROOT, CRD_FILE)) as [V1CustomResourceDefinition];
    assert.equal(crd.metadata?.name, CRD_NAME);
    await crds.createCustomResourceDefinition({ body: crd });
    const established = await waitFor(
      'CRD Established',
      () => crds.readCustomResourceDefinition({ name: CRD_NAME }),
      (c) => ['Established', 'NamesAccepted'].every((t) => c.status?.conditions?.some((x) => x.type === t && x.status === 'True')),
      60_000,
    );
    assert.deepEqual(established.status?.acceptedNames?.shortNames, ['as']);
    // The CRD's schema was accepted as structural (a NonStructuralSchema condition would say otherwise).
    assert.ok(!established.status?.conditions?.some((c) => c.type === 'NonStructuralSchema' && c.status === 'True'));
    // The resource is served (discovery can lag Established by a moment).
    await waitFor(
      'arenasources listable',
      () => objects.listNamespacedCustomObject({ group: API_GROUP, version: CRD_VERSION, namespace: NS, plural: CRD_PLURAL }),
      () => true,
      30_000,
    );
  });

  it("accepts Omnia's samples and fills the CRD's defaults", async () => {
    const samples = loadYaml(join(ROOT, '../shared/compat/omnia/arenasource.samples.yaml'));
    assert.equal(samples.length, 2);
    for (const sample of samples) await create(sample, sample.metadata.namespace);

    const git = await read('promptkit-examples');
    assert.deepEqual(git.spec, {
      type: 'git',
      git: { url: 'https://github.com/AltairaLabs/PromptKit.git', ref: { branch: 'main' }, path: 'examples/assertions-test' },
      interval: '5m',
      timeout: '60s',
      suspend: false,
    });
    const cm = await read('simple-prompts');
    assert.deepEqual(cm.spec, {
      type: 'configmap',
      configMap: { name: 'test-prompts', key: 'pack.json' },
      interval: '5m',
      timeout: '60s',
      suspend: false,
    });
  });

  it("accepts the specification's examples (status dropped on create) with defaults", async () => {
    const text = readFileSync(join(ROOT, '../shared/spec/arenasource-crd.md'), 'utf8');
    const block = /## Complete examples\n```yaml\n([\s\S]+?)```/.exec(text)?.[1];
    assert.ok(block, 'complete examples block in the specification');
    const examples = parseAllDocuments(block)
      .map((d) => d.toJS() as Obj)
      .filter((d) => d.kind === KIND);
    assert.equal(examples.length, 3);
    await core.createNamespace({ body: { metadata: { name: 'arena' } } });
    for (const ex of examples) {
      const created = await create(ex, 'arena');
      // With a status subresource, a create ignores the status the document carries.
      assert.equal(created.status, undefined, `${ex.metadata.name}: status must not be stored on create`);
    }
    const cm = await read('test-prompts', 'arena');
    assert.equal(cm.spec.configMap.key, 'pack.json');
    assert.equal(cm.spec.timeout, '60s');
    assert.equal(cm.spec.suspend, false);
    const oci = await read('production-prompts', 'arena');
    assert.deepEqual(oci.spec.oci, {
      url: 'oci://ghcr.io/acme/prompts:v2.0.0',
      secretRef: { name: 'ghcr-credentials' },
      insecure: false,
    });
  });

  it('keeps explicit values instead of defaults', async () => {
    await create(
      doc('explicit', {
        type: 'configmap',
        interval: '1h30m',
        timeout: '2m',
        suspend: true,
        configMap: { name: 'bundle', key: 'other.json' },
      }),
    );
    const got = await read('explicit');
    assert.equal(got.spec.timeout, '2m');
    assert.equal(got.spec.suspend, true);
    assert.equal(got.spec.configMap.key, 'other.json');
  });

  describe('server-side validation', () => {
    const gitSpec = { type: 'git', interval: '5m', git: { url: 'https://example.com/acme/prompts.git' } };

    it('rejects an unknown type', async () => {
      const msg = await rejection('bad-type', { ...gitSpec, type: 'svn' });
      assert.match(msg, /spec\.type: Unsupported value: "svn": supported values: "git", "oci", "configmap"/);
    });

    it('rejects an interval that is not a Go duration', async () => {
      const msg = await rejection('bad-interval', { ...gitSpec, interval: '5 minutes' });
      assert.match(msg, /spec\.interval: Invalid value: "5 minutes": spec\.interval in body should match '\^\(\(\[0-9\]/);
    });

    it('rejects type git without a git section', async () => {
      const msg = await rejection('no-git', { type: 'git', interval: '5m' });
      assert.match(msg, /spec\.git: Required value: spec\.git is required when spec\.type is "git"/);
    });

    it('rejects type oci without an oci section and type configmap without configMap', async () => {
      assert.match(
        await rejection('no-oci', { type: 'oci', interval: '5m' }),
        /spec\.oci: Required value: spec\.oci is required when spec\.type is "oci"/,
      );
      assert.match(
        await rejection('no-cm', { type: 'configmap', interval: '5m' }),
        /spec\.configMap: Required value: spec\.configMap is required when spec\.type is "configmap"/,
      );
    });

    it("rejects a section that does not match the type (stricter than Omnia's CRD)", async () => {
      const msg = await rejection('two-sections', { ...gitSpec, oci: { url: 'oci://ghcr.io/acme/prompts:v1' } });
      assert.match(msg, /spec\.oci: Forbidden: spec\.oci must not be set when spec\.type is not "oci"/);
      assert.doesNotMatch(msg, /spec\.git/);
    });

    it('rejects an OCI URL that is not oci://', async () => {
      const msg = await rejection('bad-oci', { type: 'oci', interval: '1h', oci: { url: 'https://ghcr.io/acme/prompts:v1' } });
      assert.match(msg, /spec\.oci\.url: Invalid value: "https:\/\/ghcr\.io\/acme\/prompts:v1": spec\.oci\.url in body should match '\^oci:\/\/\.\*\$'/);
    });

    it('rejects a git URL with an unsupported scheme', async () => {
      const msg = await rejection('bad-git', { ...gitSpec, git: { url: 'ftp://example.com/repo.git' } });
      assert.match(msg, /spec\.git\.url: Invalid value: "ftp:\/\/example\.com\/repo\.git": spec\.git\.url in body should match '\^\(https\?\|ssh\):\/\/\.\*\$'/);
    });

    it('rejects missing required fields', async () => {
      const msg = await rejection('no-interval', { type: 'git', git: { url: 'https://example.com/r.git' } });
      assert.match(msg, /spec\.interval: Required value/);
      const msg2 = await rejection('no-url', { type: 'git', interval: '5m', git: {} });
      assert.match(msg2, /spec\.git\.url: Required value/);
    });

    it('bounds interval and timeout as the controller does (stricter than Omnia)', async () => {
      assert.match(await rejection('fast', { ...gitSpec, interval: '500ms' }), /spec\.interval: Invalid value: "string": spec\.interval must be at least 1s/);
      assert.match(await rejection('zero', { ...gitSpec, interval: '0s' }), /spec\.interval must be at least 1s/);
      assert.match(await rejection('slow', { ...gitSpec, timeout: '2h' }), /spec\.timeout: Invalid value: "string": spec\.timeout must be more than 0s and at most 1h/);
      assert.match(await rejection('bad-timeout', { ...gitSpec, timeout: 'soon' }), /spec\.timeout: Invalid value: "soon": spec\.timeout in body should match/);
      // Go's duration grammar, as CEL's duration() and Omnia's pattern read it.
      await create(doc('durations', { ...gitSpec, interval: '1.5h', timeout: '1m30.5s' }));
      await create(doc('micro', { ...gitSpec, interval: '1000000us', timeout: '59m59.999s' }));
    });

    it('rejects an invalid status through the status subresource', async () => {
      await create(doc('bad-status', gitSpec));
      try {
        await objects.patchNamespacedCustomObjectStatus(
          { group: API_GROUP, version: CRD_VERSION, namespace: NS, plural: CRD_PLURAL, name: 'bad-status', body: { status: { phase: 'Done' } } },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );
        assert.fail('status with phase Done was accepted');
      } catch (err) {
        const { code, message } = apiError(err);
        assert.equal(code, 422, message);
        assert.match(message, /status\.phase: Unsupported value: "Done"/);
      }
    });
  });

  it('patches status through the subresource independently of spec', async () => {
    const name = 'status-demo';
    const created = await create(doc(name, { type: 'git', interval: '5m', git: { url: 'https://example.com/acme/p.git' } }));
    assert.equal(created.metadata.generation, 1);

    const status = {
      phase: 'Ready',
      observedGeneration: 1,
      artifact: {
        revision: 'main@sha1:0123456789abcdef0123456789abcdef01234567',
        url: 'http://source-controller/artifacts/x.tar.gz',
        checksum: `sha256:${'a'.repeat(64)}`,
        size: 12345,
        lastUpdateTime: '2025-01-16T10:00:00Z',
      },
      conditions: [
        { type: 'Ready', status: 'True', reason: 'Succeeded', message: 'stored artifact', lastTransitionTime: '2025-01-16T10:00:00Z' },
        { type: 'ArtifactAvailable', status: 'True', reason: 'Succeeded', message: '', lastTransitionTime: '2025-01-16T10:00:00Z' },
      ],
    };
    const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
    const patched = (await objects.patchNamespacedCustomObjectStatus(
      // A spec change sent to /status is ignored.
      { group: API_GROUP, version: CRD_VERSION, namespace: NS, plural: CRD_PLURAL, name, body: { status, spec: { interval: '9m' } } },
      merge,
    )) as Obj;
    assert.deepEqual(patched.status, status);
    assert.equal(patched.spec.interval, '5m');
    assert.equal(patched.metadata.generation, 1, 'a status write does not bump generation');

    // And a status sent with the main resource is ignored, while the spec change bumps generation.
    const specPatched = (await objects.patchNamespacedCustomObject(
      { group: API_GROUP, version: CRD_VERSION, namespace: NS, plural: CRD_PLURAL, name, body: { spec: { suspend: true }, status: { phase: 'Error' } } },
      merge,
    )) as Obj;
    assert.equal(specPatched.spec.suspend, true);
    assert.equal(specPatched.status.phase, 'Ready');
    assert.equal(specPatched.metadata.generation, 2);

    // conditions is a list-map keyed by type: a duplicate type is refused.
    try {
      await objects.patchNamespacedCustomObjectStatus(
        {
          group: API_GROUP,
          version: CRD_VERSION,
          namespace: NS,
          plural: CRD_PLURAL,
          name,
          body: { status: { conditions: [status.conditions[0], status.conditions[0]] } },
        },
        merge,
      );
      assert.fail('duplicate condition type accepted');
    } catch (err) {
      const { code, message } = apiError(err);
      assert.equal(code, 422, message);
      assert.match(message, /status\.conditions\[1\]: Duplicate value: map\[string\]interface \{\}\{"type":"Ready"\}/);
    }

    const final = await read(name);
    assert.deepEqual(final.status, status);
  });
});
