/**
 * spec.oci.verify (cosign) against a real registry and a signature the real
 * cosign made (test/fixtures/cosign): a good signature passes; an unsigned
 * artifact, a key not in the Secret, a changed signature and a signature copied
 * from another artifact are refused (VerificationFailed) before any content is
 * pulled; a Secret without a usable key is named.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sourceActivities } from '../../activities/source.js';
import type { ArenaSourceSpec } from '../../src/api/schema.js';
import { COSIGN_SIGNATURE_ANNOTATION } from '../../src/oci/cosign.js';
import { SecretNotFoundError, VerificationFailedError } from '../../src/errors.js';
import { inActivity, localActivityDeps, type LocalActivityDeps } from '../helpers/activity-deps.js';
import { FIXTURE_DIGEST, fixturePublicKey, fixtureSignatureManifest, pushManifest, pushSignedFixture, pushFixtureBlobs } from '../helpers/cosign-fixture.js';
import { pushFiles, requireRegistryTools, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { putSecret } from '../helpers/ssh.js';
import { startTestEnv } from '../helpers/env.js';
import { findCondition } from '../../src/api/status.js';

const NS = 'team';

describe('OCI signature verification (cosign)', () => {
  let dir: string;
  let registry: TestRegistry;
  let deps: LocalActivityDeps;
  const spec = (repository: string, secret = 'cosign-keys'): ArenaSourceSpec => ({
    type: 'oci',
    interval: '1h',
    timeout: '30s',
    oci: { url: registry.url(repository, 'v1'), insecure: true, verify: { provider: 'cosign', secretRef: { name: secret } } },
  });

  async function fetch(s: ArenaSourceSpec, name: string): Promise<{ verified?: string; pack?: string; error?: Error }> {
    const a = sourceActivities(deps);
    try {
      const { revision, id } = await inActivity(() => a.resolveRevision({ source: { namespace: NS, name }, spec: s }));
      const fetched = await inActivity(() => a.fetchSource({ source: { namespace: NS, name }, spec: s, revision, ...(id ? { id } : {}) }));
      return { ...(fetched.verified ? { verified: fetched.verified } : {}), pack: await readFile(join(fetched.bundleDir, 'pack.json'), 'utf8') };
    } catch (error) {
      return { error: error as Error };
    }
  }
  /** GETs of the content layer of the artifact in `repository` (none: nothing unverified was pulled). */
  const contentPulls = (repository: string, layer: string) =>
    registry.requests().filter((r) => r.method === 'GET' && r.path === `/v2/${repository}/blobs/${layer}`).length;
  const refused = (r: { error?: Error }, re: RegExp) => {
    assert.ok(r.error instanceof VerificationFailedError, String(r.error ?? 'no error'));
    assert.match(r.error.message, re);
  };

  before(async () => {
    await requireRegistryTools();
    dir = await mkdtemp(join(tmpdir(), 'arena-oci-verify-'));
    registry = await startRegistry();
    deps = localActivityDeps(dir);
    const resources = deps.resources;
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    await putSecret(resources, NS, 'cosign-keys', { 'cosign.pub': await fixturePublicKey() });
    await putSecret(resources, NS, 'other-key', { 'release.pub': other });
    await putSecret(resources, NS, 'no-keys', { 'cosign.key': 'not here' });
    await putSecret(resources, NS, 'garbled', { 'cosign.pub': '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n' });
  });
  after(async () => {
    await registry?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const layer = 'sha256:54dcbe76b0e2c8f61bd4f4a4e7e43f0c222bf1cca3d40da9f46fb0f10396a594';

  it('a signature made by cosign with a trusted key: verified, then pulled', async () => {
    await pushSignedFixture(registry, 'prompts/signed', 'v1');
    const r = await fetch(spec('prompts/signed'), 'signed');
    assert.equal(r.error, undefined, String(r.error));
    assert.equal(r.verified, `artifact ${FIXTURE_DIGEST} has a good cosign signature by key 'cosign.pub' of Secret team/cosign-keys`);
    assert.equal(r.pack, '{"id":"signed-by-cosign","version":"1.0.0"}\n');
  });

  it('a key not in the Secret: refused before any content is pulled', async () => {
    await pushSignedFixture(registry, 'prompts/other-key', 'v1');
    refused(await fetch(spec('prompts/other-key', 'other-key'), 'other'), /1 cosign signature found, none by a key in Secret team\/other-key/);
    assert.equal(contentPulls('prompts/other-key', layer), 0);
  });

  it('an unsigned artifact: refused, naming the missing .sig tag', async () => {
    const pushed = await pushFiles(registry, 'prompts/unsigned', 'v1', { 'pack.json': '{"id":"unsigned"}' });
    refused(await fetch(spec('prompts/unsigned'), 'unsigned'), new RegExp(`artifact ${pushed.digest} is not signed: .* has no cosign signature tag sha256-[0-9a-f]{64}\\.sig`));
  });

  it('a changed signature: refused', async () => {
    const manifest = JSON.parse(await fixtureSignatureManifest());
    const sig: string = manifest.layers[0].annotations[COSIGN_SIGNATURE_ANNOTATION];
    manifest.layers[0].annotations[COSIGN_SIGNATURE_ANNOTATION] = Buffer.from(Buffer.from(sig, 'base64').map((b, i) => (i === 20 ? b ^ 1 : b))).toString('base64');
    await pushSignedFixture(registry, 'prompts/tampered', 'v1', { signature: JSON.stringify(manifest) });
    refused(await fetch(spec('prompts/tampered'), 'tampered'), /none by a key in Secret team\/cosign-keys/);
    assert.equal(contentPulls('prompts/tampered', layer), 0);
  });

  it('a good signature copied onto another artifact: refused, its payload names another digest', async () => {
    const pushed = await pushFiles(registry, 'prompts/copied', 'v1', { 'pack.json': '{"id":"not-what-was-signed"}' });
    await pushFixtureBlobs(registry, 'prompts/copied');
    await pushManifest(registry, 'prompts/copied', `${pushed.digest.replace(':', '-')}.sig`, await fixtureSignatureManifest());
    refused(await fetch(spec('prompts/copied'), 'copied'), /signed payload names another digest/);
  });

  it('through the workflow: an unsigned artifact is never published; a signed one is, with SourceVerified', async () => {
    const env = await startTestEnv('ociverify');
    try {
      await putSecret(env.stack.resources, env.namespace, 'cosign-keys', { 'cosign.pub': await fixturePublicKey() });
      await pushFiles(registry, 'prompts/wf-unsigned', 'v1', { 'pack.json': '{"id":"unsigned"}' });
      const verify = { provider: 'cosign' as const, secretRef: { name: 'cosign-keys' } };
      await env.apply('unsigned', { type: 'oci', interval: '1h', oci: { url: registry.url('prompts/wf-unsigned', 'v1'), insecure: true, verify } });
      const failed = await env.waitFor('unsigned', 'Error/VerificationFailed', (s) => s.status?.phase === 'Error');
      assert.equal(findCondition(failed.status?.conditions, 'Ready')?.reason, 'VerificationFailed');
      assert.equal(findCondition(failed.status?.conditions, 'SourceVerified')?.status, 'False');
      assert.equal(failed.status?.artifact, undefined, 'nothing published');
      await pushSignedFixture(registry, 'prompts/wf-signed', 'v1');
      await env.apply('signed', { type: 'oci', interval: '1h', oci: { url: registry.url('prompts/wf-signed', 'v1'), insecure: true, verify } });
      const ready = await env.waitFor('signed', 'Ready', (s) => s.status?.phase === 'Ready');
      assert.equal(ready.status!.artifact!.revision, `v1@${FIXTURE_DIGEST}`);
      assert.match(findCondition(ready.status?.conditions, 'SourceVerified')!.message, /good cosign signature by key 'cosign\.pub'/);
    } finally {
      await env.close();
    }
  });

  it('a verify Secret without a usable .pub key: SecretNotFound naming it', async () => {
    const none = await fetch(spec('prompts/signed', 'no-keys'), 'nokeys');
    assert.ok(none.error instanceof SecretNotFoundError, String(none.error));
    assert.match(none.error.message, /Secret team\/no-keys has no trusted public keys: add keys ending in '\.pub'/);
    const garbled = await fetch(spec('prompts/signed', 'garbled'), 'garbled');
    assert.match(String(garbled.error), /key 'cosign\.pub' holds no PEM public key/);
  });
});
