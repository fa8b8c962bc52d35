/**
 * The generated CRD against a real kube-apiserver (test/helpers/kube.ts): it
 * installs and becomes Established, Omnia's samples and the specification's
 * examples are accepted and read back with the CRD's defaults, the API server
 * itself rejects invalid objects with messages naming the field, and the
 * status subresource is written independently of the spec.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { CRD_FILE, CRD_NAME, CRD_PLURAL, CRD_VERSION, repoRoot } from '../../src/api/crd.js';
import { API_GROUP, API_VERSION, KIND } from '../../src/api/schema.js';
import { kubeSkipReason, startKube, type Kube, type KubeResponse } from '../helpers/kube.js';
import { waitFor } from '../helpers/wait.js';

const ROOT = repoRoot();
const NS = 'omnia-system';
const MERGE_PATCH = 'application/merge-patch+json';
type Obj = Record<string, any>;

const collection = (namespace: string) => `/apis/${API_GROUP}/${CRD_VERSION}/namespaces/${namespace}/${CRD_PLURAL}`;
const CRD_PATH = `/apis/apiextensions.k8s.io/v1/customresourcedefinitions`;

/** The body of a 2xx answer, or a failure quoting the API server. */
function ok<T>(res: KubeResponse<T>, what: string): T {
  assert.ok(res.status >= 200 && res.status < 300, `${what}: HTTP ${res.status}: ${res.text.slice(0, 2_000)}`);
  return res.body;
}

function loadYaml(path: string): Obj[] {
  return parseAllDocuments(readFileSync(path, 'utf8'))
    .map((d) => d.toJS() as Obj | null)
    .filter((d): d is Obj => d !== null && typeof d === 'object');
}

/**
 * @kubernetes/client-node, or why it does not load here. Probed in a child
 * process first: a module that throws while loading leaves an unhandled
 * rejection behind in the importing process even when the import is caught.
 * (2.0.x pulls undici 8, which needs Node >= 22.19: on Node 20 it throws.)
 */
async function loadClientNode(): Promise<typeof import('@kubernetes/client-node') | string> {
  const probe = spawnSync(process.execPath, ['--input-type=module', '-e', "await import('@kubernetes/client-node')"], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (probe.status !== 0) {
    const why = (probe.stderr || probe.error?.message || '').split('\n').find((l) => /Error/.test(l)) ?? 'unknown error';
    return `@kubernetes/client-node does not load on Node ${process.version}: ${why.trim()}`;
  }
  return import('@kubernetes/client-node');
}
const clientNode = await loadClientNode();

describe('ArenaSource CRD on a real kube-apiserver', { skip: kubeSkipReason() }, () => {
  let kube: Kube;

  const createNamespace = async (name: string) =>
    ok(await kube.request('POST', '/api/v1/namespaces', { metadata: { name } }), `create namespace ${name}`);
  const create = async (body: Obj, namespace = NS): Promise<Obj> =>
    ok(await kube.request('POST', collection(namespace), body), `create ${namespace}/${body.metadata?.name}`);
  const read = async (name: string, namespace = NS): Promise<Obj> =>
    ok(await kube.request('GET', `${collection(namespace)}/${name}`), `get ${namespace}/${name}`);
  const patch = (name: string, body: Obj, subresource = '') =>
    kube.request('PATCH', `${collection(NS)}/${name}${subresource}`, body, MERGE_PATCH);
  const doc = (name: string, spec: Obj): Obj => ({ apiVersion: API_VERSION, kind: KIND, metadata: { name }, spec });

  /** The API server's message for a 422 Invalid answer (failing on anything else). */
  function invalid(res: KubeResponse, what: string): string {
    assert.equal(res.status, 422, `${what}: expected 422 Invalid, got ${res.status}: ${res.text.slice(0, 2_000)}`);
    assert.equal(res.body?.reason, 'Invalid');
    return String(res.body?.message);
  }

  /** Creates the object and returns the API server's rejection message. */
  async function rejection(name: string, spec: Obj): Promise<string> {
    return invalid(await kube.request('POST', collection(NS), doc(name, spec)), `create ${name} ${JSON.stringify(spec)}`);
  }

  before(async () => {
    kube = await startKube();
    process.stderr.write(`[crd.test] kube-apiserver ready at ${kube.server} in ${kube.startupMs} ms\n`);
    await createNamespace(NS);
  });

  after(async () => {
    await kube?.close();
  });

  it('installs from deploy/crds and becomes Established', async () => {
    const docs = loadYaml(join(ROOT, CRD_FILE));
    assert.equal(docs.length, 1);
    const crd = docs[0]!;
    assert.equal(crd.metadata?.name, CRD_NAME);
    ok(await kube.request('POST', CRD_PATH, crd), 'create CRD');
    type Cond = { type: string; status: string; message?: string };
    const established = await waitFor(
      'CRD Established',
      async () => ok(await kube.request('GET', `${CRD_PATH}/${CRD_NAME}`), 'get CRD') as Obj,
      (c) => ['Established', 'NamesAccepted'].every((t) => (c.status?.conditions as Cond[] | undefined)?.some((x) => x.type === t && x.status === 'True')),
      60_000,
    );
    assert.deepEqual(established.status.acceptedNames.shortNames, ['as']);
    // Accepted as structural (a NonStructuralSchema condition would say otherwise).
    const conditions = established.status.conditions as Cond[];
    assert.ok(!conditions.some((c) => c.type === 'NonStructuralSchema'), JSON.stringify(conditions));
    // The resource is served (the handler can lag Established by a moment).
    await waitFor('arenasources listable', async () => (await kube.request('GET', collection(NS))).status, (s) => s === 200, 30_000);
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
      createVersionOnSync: true,
      validation: 'warn',
    });
    const cm = await read('simple-prompts');
    assert.deepEqual(cm.spec, {
      type: 'configmap',
      configMap: { name: 'test-prompts', key: 'pack.json' },
      interval: '5m',
      timeout: '60s',
      suspend: false,
      createVersionOnSync: true,
      validation: 'warn',
    });
  });

  it("accepts Omnia's current samples, and an object using every field of Omnia's current CRD, unchanged", async () => {
    const samples = loadYaml(join(ROOT, '../shared/compat/omnia-current/arenasource.samples.yaml'));
    assert.equal(samples.length, 2);
    await createNamespace('omnia-current');
    for (const sample of samples) {
      const created = await create({ ...sample, metadata: { ...sample.metadata, namespace: 'omnia-current' } }, 'omnia-current');
      for (const [k, v] of Object.entries(sample.spec as Obj)) assert.deepEqual(created.spec[k], v, `${sample.metadata.name}: spec.${k}`);
    }
    // Every spec field Omnia's current CRD has, each source type once (its CEL allows one block per object).
    const everything: Obj[] = [
      { type: 'git', interval: '5m30s', timeout: '2m', suspend: true, targetPath: 'arena/projects/support', createVersionOnSync: false,
        git: { url: 'ssh://git@example.com/acme/prompts.git', ref: { tag: 'v1.2.0', commit: 'a'.repeat(40) }, path: 'packs/support', secretRef: { name: 'git-ssh', key: 'identity' } } },
      { type: 'oci', interval: '1h', oci: { url: 'oci://registry.example.com/acme/prompts:v1', insecure: true, secretRef: { name: 'regcred', key: '.dockerconfigjson' } } },
      { type: 'configmap', interval: '1m', configMap: { name: 'prompts', key: 'bundle.json' } },
      { type: 'workspace', interval: '10m', targetPath: 'arena/deployed/my-project', workspace: { path: 'arena/projects/my-project' } },
    ];
    for (const [i, spec] of everything.entries()) {
      const created = await create(doc(`every-field-${i}`, spec), 'omnia-current');
      for (const [k, v] of Object.entries(spec)) assert.deepEqual(created.spec[k], v, `${spec.type}: spec.${k}`);
    }
    // Status: every field Omnia's consumers read is in our schema and kept by the status subresource.
    const status = {
      phase: 'Ready',
      observedGeneration: 1,
      artifact: {
        revision: 'main@sha1:' + 'b'.repeat(40),
        url: 'http://arena-source-artifacts/omnia-current/every-field-3/x.tar.gz',
        checksum: 'sha256:' + 'c'.repeat(64),
        size: 42,
        lastUpdateTime: '2026-12-06T00:00:00Z',
        contentPath: 'arena/deployed/my-project/.arena/versions/cccccccccccc',
        version: 'cccccccccccc',
      },
      headVersion: 'cccccccccccc',
      versionCount: 3,
      lastSyncRevision: 'main@sha1:' + 'b'.repeat(40),
      lastVersionCreated: 'cccccccccccc',
    };
    const current = await read('every-field-3', 'omnia-current');
    const res = await kube.request('PUT', `${collection('omnia-current')}/every-field-3/status`, { ...current, status });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual((await read('every-field-3', 'omnia-current')).status, status);
    for (const phase of ['Initializing', 'Fetching', 'Pending', 'Error']) {
      const again = await read('every-field-3', 'omnia-current');
      const r = await kube.request('PUT', `${collection('omnia-current')}/every-field-3/status`, { ...again, status: { ...status, phase } });
      assert.equal(r.status, 200, `${phase}: ${r.text}`);
    }
  });

  it("accepts the specification's examples (status dropped on create) with defaults", async () => {
    const text = readFileSync(join(ROOT, '../shared/spec/arenasource-crd.md'), 'utf8');
    const block = /## Complete examples\n```yaml\n([\s\S]+?)```/.exec(text)?.[1];
    assert.ok(block, 'complete examples block in the specification');
    const examples = parseAllDocuments(block)
      .map((d) => d.toJS() as Obj)
      .filter((d) => d.kind === KIND);
    assert.equal(examples.length, 3);
    await createNamespace('arena');
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
      // The CEL bound checks the pattern first, so no "type conversion error" joins the message.
      assert.doesNotMatch(msg, /conversion|evaluating rule/);
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

    it('rejects a targetPath or workspace.path that is absolute or climbs out, naming the field', async () => {
      for (const bad of ['/etc', '../other-ns', 'arena/../../x', 'a\\b']) {
        assert.match(await rejection('bad-target', { ...gitSpec, targetPath: bad }), /spec\.targetPath: Invalid value: .*spec\.targetPath must/);
      }
      assert.match(
        await rejection('bad-ws', { type: 'workspace', interval: '5m', workspace: { path: '../x' } }),
        /spec\.workspace\.path: Invalid value: .*spec\.workspace\.path must not contain "\.\."/,
      );
      // Dots inside names are fine.
      await create(doc('dotted-target', { ...gitSpec, targetPath: 'arena/v1..2/x.y' }));
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
      assert.match(await rejection('fast', { ...gitSpec, interval: '500ms' }), /spec\.interval: Invalid value: "500ms": spec\.interval must be at least 1s/);
      assert.match(await rejection('zero', { ...gitSpec, interval: '0s' }), /spec\.interval must be at least 1s/);
      assert.match(await rejection('slow', { ...gitSpec, timeout: '2h' }), /spec\.timeout: Invalid value: "2h": spec\.timeout must be more than 0s and at most 1h/);
      const soon = await rejection('bad-timeout', { ...gitSpec, timeout: 'soon' });
      assert.match(soon, /spec\.timeout: Invalid value: "soon": spec\.timeout in body should match/);
      assert.doesNotMatch(soon, /conversion|evaluating rule/);
      // Matches the grammar but overflows int64 nanoseconds, as Go's ParseDuration says.
      assert.match(await rejection('overflow', { ...gitSpec, interval: '9999999999h' }), /spec\.interval: .*evaluating rule: spec\.interval must be at least 1s/);
      // Go's duration grammar, as CEL's duration() and Omnia's pattern read it.
      await create(doc('durations', { ...gitSpec, interval: '1.5h', timeout: '1m30.5s' }));
      await create(doc('micro', { ...gitSpec, interval: '1000000us', timeout: '59m59.999s' }));
    });

    it('rejects contradicting git and OCI refs, and accepts each ref kind (issue 14)', async () => {
      const ref = (r: Obj) => ({ ...gitSpec, git: { url: gitSpec.git.url, ref: r } });
      assert.match(
        await rejection('semver-tag', ref({ semver: '^1', tag: 'v1' })),
        /spec\.git\.ref: Invalid value: .*set at most one of spec\.git\.ref\.branch, tag, semver or name/,
      );
      assert.match(await rejection('commit-semver', ref({ semver: '^1', commit: 'a'.repeat(40) })), /spec\.git\.ref\.semver cannot be combined with spec\.git\.ref\.commit/);
      assert.match(await rejection('short-name', ref({ name: 'pull/42/head' })), /spec\.git\.ref\.name: Invalid value: .*must be a full reference starting with "refs\/"/);
      const oci = (o: Obj) => ({ type: 'oci', interval: '1h', oci: o });
      assert.match(
        await rejection('oci-both', oci({ url: 'oci://ghcr.io/acme/prompts:v1', ref: { tag: 'v2' } })),
        /spec\.oci\.ref: Invalid value: .*spec\.oci\.url must not name a tag or digest when spec\.oci\.ref is set/,
      );
      assert.match(await rejection('oci-two', oci({ url: 'oci://ghcr.io/acme/prompts', ref: { tag: 'v2', semver: '^1' } })), /set exactly one of spec\.oci\.ref\.tag, semver or digest/);
      assert.match(await rejection('oci-filter', oci({ url: 'oci://ghcr.io/acme/prompts', ref: { tag: 'v2', semverFilter: 'x' } })), /spec\.oci\.ref\.semverFilter needs spec\.oci\.ref\.semver/);
      await create(doc('semver-ok', { ...ref({ semver: '>=1.0.0 <2.0.0' }), ignore: '*.tmp\n/drafts/\n' }));
      await create(doc('name-ok', ref({ name: 'refs/pull/42/head', commit: 'a'.repeat(40) })));
      await create(doc('oci-ref-ok', oci({ url: 'oci://registry.local:5000/acme/prompts', ref: { semver: '^1', semverFilter: '.*-rc.*' } })));
    });

    it('rejects an invalid status through the status subresource', async () => {
      await create(doc('bad-status', gitSpec));
      const msg = invalid(await patch('bad-status', { status: { phase: 'Done' } }, '/status'), 'status phase Done');
      assert.match(msg, /status\.phase: Unsupported value: "Done"/);
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
    // A spec change sent to /status is ignored.
    const patched = ok(await patch(name, { status, spec: { interval: '9m' } }, '/status'), 'patch status') as Obj;
    assert.deepEqual(patched.status, status);
    assert.equal(patched.spec.interval, '5m');
    assert.equal(patched.metadata.generation, 1, 'a status write does not bump generation');

    // And a status sent with the main resource is ignored, while the spec change bumps generation.
    const specPatched = ok(await patch(name, { spec: { suspend: true }, status: { phase: 'Error' } }), 'patch spec') as Obj;
    assert.equal(specPatched.spec.suspend, true);
    assert.equal(specPatched.status.phase, 'Ready');
    assert.equal(specPatched.metadata.generation, 2);

    // conditions is a list-map keyed by type: a duplicate type is refused.
    const dup = invalid(
      await patch(name, { status: { conditions: [status.conditions[0], status.conditions[0]] } }, '/status'),
      'duplicate condition',
    );
    assert.match(dup, /status\.conditions\[1\]: Duplicate value: \{"type":"Ready"\}/);

    const final = await read(name);
    assert.deepEqual(final.status, status);
  });

  it(
    'works with @kubernetes/client-node through the kubeconfig',
    { skip: typeof clientNode === 'string' ? clientNode : false },
    async () => {
      const k8s = clientNode as typeof import('@kubernetes/client-node');
      const kc = new k8s.KubeConfig();
      kc.loadFromFile(kube.kubeconfigPath);
      const objects = kc.makeApiClient(k8s.CustomObjectsApi);
      const base = { group: API_GROUP, version: CRD_VERSION, namespace: NS, plural: CRD_PLURAL };
      await objects.createNamespacedCustomObject({ ...base, body: doc('via-client-node', { type: 'configmap', interval: '1m', configMap: { name: 'p' } }) });
      const got = (await objects.getNamespacedCustomObject({ ...base, name: 'via-client-node' })) as Obj;
      assert.equal(got.spec.configMap.key, 'pack.json');
      const patched = (await objects.patchNamespacedCustomObjectStatus(
        { ...base, name: 'via-client-node', body: { status: { phase: 'Pending' } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      )) as Obj;
      assert.equal(patched.status.phase, 'Pending');
      await assert.rejects(
        objects.createNamespacedCustomObject({ ...base, body: doc('bad', { type: 'git', interval: '5m' }) }),
        (err: { code?: number; body?: unknown }) => err.code === 422 && String(err.body).includes('spec.git is required when spec.type is'),
      );
    },
  );
});
