/**
 * Registry credentials through the whole stack: good and bad credentials, both
 * Secret shapes, missing Secrets and keys — and the password appearing nowhere:
 * not in status, not in the status files, not in workflow history.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { findCondition } from '../../src/api/status.js';
import { sourceHandle } from '../../src/client.js';
import { OCI_CA_FILE_ENV } from '../../src/oci/oras.js';
import { pushBundle } from '../../src/oci/push.js';
import { startTestEnv, type TestEnv } from '../helpers/env.js';
import { requireRegistryTools, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { wholeHistory } from '../helpers/history.js';

const USER = 'fleet';
const PASSWORD = 'auth-test-pw-51d0be77';
const WRONG = 'wrong-pw-0a8c3e19';
const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('OCI registry credentials', () => {
  let env: TestEnv;
  let reg: TestRegistry;
  let work: string;
  let digest: string;
  const url = () => reg.url('private/prompts', 'v1');
  const secretValues = [PASSWORD, WRONG, b64(`${USER}:${PASSWORD}`), b64(`${USER}:${WRONG}`)];

  function assertNoSecrets(text: string, where: string) {
    for (const s of secretValues) assert.ok(!text.includes(s), `${where} contains a secret value`);
  }

  async function putDockerConfig(name: string, password: string, host = reg.host) {
    await env.stack.resources.putSecret({
      namespace: env.namespace,
      name,
      type: 'kubernetes.io/dockerconfigjson',
      data: { '.dockerconfigjson': Buffer.from(JSON.stringify({ auths: { [host]: { auth: b64(`${USER}:${password}`) } } })) },
    });
  }

  async function failure(name: string) {
    const src = await env.waitFor(name, 'Error', (s) => s.status?.phase === 'Error', 40_000);
    const ready = findCondition(src.status!.conditions, 'Ready')!;
    assert.equal(ready.status, 'False');
    assertNoSecrets(JSON.stringify(src), `status of ${name}`);
    return { src, ready };
  }

  before(async () => {
    await requireRegistryTools();
    reg = await startRegistry({ tls: true, auth: { username: USER, password: PASSWORD } });
    process.env[OCI_CA_FILE_ENV] = reg.caFile;
    work = await mkdtemp(join(tmpdir(), 'arena-oci-auth-'));
    await writeFile(join(work, 'pack.json'), '{"id":"private"}');
    ({ digest } = await pushBundle(work, url(), { username: USER, password: PASSWORD, caFile: reg.caFile! }));
    env = await startTestEnv('ociauth');
  });
  after(async () => {
    await env?.close();
    await reg?.close();
    if (work) await rm(work, { recursive: true, force: true });
    delete process.env[OCI_CA_FILE_ENV];
  });

  it('good credentials: a dockerconfigjson Secret, or username/password keys', async () => {
    await putDockerConfig('dockercfg', PASSWORD);
    await env.stack.resources.putSecret({
      namespace: env.namespace,
      name: 'basic',
      data: { username: Buffer.from(USER), password: Buffer.from(PASSWORD) },
    });
    await env.apply('good-dcj', { type: 'oci', oci: { url: url(), secretRef: { name: 'dockercfg' } } });
    await env.apply('good-basic', { type: 'oci', oci: { url: url(), secretRef: { name: 'basic' } } });
    for (const name of ['good-dcj', 'good-basic']) {
      const src = await env.waitFor(name, 'Ready', (s) => s.status?.phase === 'Ready');
      assert.equal(src.status!.artifact!.revision, `v1@${digest}`);
    }
  });

  it('bad credentials: Error, Ready=False AuthenticationFailed naming the registry, no secret anywhere', async () => {
    await putDockerConfig('bad', WRONG);
    await env.apply('bad-creds', { type: 'oci', interval: '1h', oci: { url: url(), secretRef: { name: 'bad' } } });
    const { src, ready } = await failure('bad-creds');
    assert.equal(ready.reason, 'AuthenticationFailed');
    assert.match(ready.message, new RegExp(`registry ${reg.host.replace(/\./g, '\\.')}`));
    assert.match(ready.message, new RegExp(`Secret ${env.namespace}/bad`));
    assert.equal(src.status!.artifact, undefined);
    const c = await env.counters('bad-creds');
    assert.equal(c.failures, 1, 'an authentication failure is not retried within the cycle (the next cycle is a backoff away)');
  });

  it('no credentials for a registry that needs them: AuthenticationFailed that says so', async () => {
    await env.apply('anonymous', { type: 'oci', interval: '1h', oci: { url: url() } });
    const { ready } = await failure('anonymous');
    assert.equal(ready.reason, 'AuthenticationFailed');
    assert.match(ready.message, /no credentials \(set spec\.oci\.secretRef\)/);
  });

  it('a missing Secret, a missing key, or no entry for the registry: SecretNotFound naming them', async () => {
    await env.apply('no-secret', { type: 'oci', interval: '1h', oci: { url: url(), secretRef: { name: 'does-not-exist' } } });
    const missing = await failure('no-secret');
    assert.equal(missing.ready.reason, 'SecretNotFound');
    assert.match(missing.ready.message, new RegExp(`Secret ${env.namespace}/does-not-exist not found`));

    await env.stack.resources.putSecret({ namespace: env.namespace, name: 'empty-dcj', type: 'kubernetes.io/dockerconfigjson', data: {} });
    await env.apply('no-key', { type: 'oci', interval: '1h', oci: { url: url(), secretRef: { name: 'empty-dcj' } } });
    const noKey = await failure('no-key');
    assert.equal(noKey.ready.reason, 'SecretNotFound');
    assert.match(noKey.ready.message, new RegExp(`Secret ${env.namespace}/empty-dcj has no key '\\.dockerconfigjson'`));

    await putDockerConfig('other-registry', PASSWORD, 'ghcr.io');
    await env.apply('no-entry', { type: 'oci', interval: '1h', oci: { url: url(), secretRef: { name: 'other-registry' } } });
    const noEntry = await failure('no-entry');
    assert.equal(noEntry.ready.reason, 'SecretNotFound');
    assert.match(noEntry.ready.message, /has no entry for registry 127\.0\.0\.1:\d+ \(it has: ghcr\.io\)/);
  });

  it('the registry password appears nowhere in workflow history or the status files', async () => {
    for (const name of ['good-dcj', 'good-basic', 'bad-creds']) {
      const history = await wholeHistory(env.stack.client, sourceHandle(env.stack.client, { namespace: env.namespace, name }).workflowId);
      const text = JSON.stringify(history);
      assertNoSecrets(text, `history of ${name}`);
      // JSON.stringify renders payload bytes as base64 (protobufjs toJSON), where a plain-text
      // password would not show: decode every payload's data and search that too.
      const decoded = JSON.stringify(history, (key, value: unknown) =>
        key === 'data' && typeof value === 'string' ? Buffer.from(value, 'base64').toString('utf8') : value,
      );
      assert.ok(decoded.includes('oci://127.0.0.1'), 'the decoded history shows the payloads (the spec with its URL)');
      assert.ok(decoded.includes('secretRef'), 'the decoded history shows the secretRef (by name)');
      assertNoSecrets(decoded, `decoded history of ${name}`);
    }
    const statusRoot = env.stack.statuses.root;
    for (const ns of await readdir(statusRoot)) {
      for (const f of await readdir(join(statusRoot, ns))) {
        assertNoSecrets(await readFile(join(statusRoot, ns, f), 'utf8').catch(() => ''), `status file ${f}`);
      }
    }
  });
});
