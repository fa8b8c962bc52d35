/**
 * OCI sources through the whole stack (Temporal workflow, worker, artifact
 * store and server) against real registries: Debian's docker-registry
 * (distribution 2.8) with TLS + htpasswd, and an anonymous plain-HTTP one.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { findCondition } from '../../src/api/status.js';
import { listArchive } from '../../src/bundle/pack.js';
import { OCI_CA_FILE_ENV } from '../../src/oci/oras.js';
import { pushBundle } from '../../src/oci/push.js';
import { startTestEnv, type TestEnv } from '../helpers/env.js';
import { pushFiles, requireRegistryTools, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { waitFor } from '../helpers/wait.js';

const USER = 'arena';
const PASSWORD = 'src-test-pw-9c1e52d4';

describe('OCI sources', () => {
  let env: TestEnv;
  let secure: TestRegistry;
  let plain: TestRegistry;
  let work: string;
  let n = 0;
  const creds = { username: USER, password: PASSWORD };

  /** A bundle directory with the given files. */
  async function bundle(files: Record<string, string>): Promise<string> {
    const dir = join(work, `bundle-${++n}`);
    for (const [name, content] of Object.entries(files)) {
      await mkdir(join(dir, name, '..'), { recursive: true });
      await writeFile(join(dir, name), content);
    }
    return dir;
  }
  const pushSecure = async (files: Record<string, string>, repo: string, tag: string) =>
    pushBundle(await bundle(files), secure.url(repo, tag), { ...creds, caFile: secure.caFile! });
  const blobGets = (repo: string) => secure.requests().filter((r) => r.method === 'GET' && r.path.startsWith(`/v2/${repo}/blobs/`));
  const manifestRequests = (repo: string, method: string) =>
    secure.requests().filter((r) => r.method === method && r.path.startsWith(`/v2/${repo}/manifests/`));

  before(async () => {
    await requireRegistryTools();
    [secure, plain] = await Promise.all([startRegistry({ tls: true, auth: creds }), startRegistry()]);
    // The worker runs in this process: it trusts the test CA through the documented variable.
    process.env[OCI_CA_FILE_ENV] = secure.caFile;
    work = await mkdtemp(join(tmpdir(), 'arena-oci-src-'));
    env = await startTestEnv('oci');
    await env.stack.resources.putSecret({
      namespace: env.namespace,
      name: 'registry',
      type: 'kubernetes.io/dockerconfigjson',
      data: {
        '.dockerconfigjson': Buffer.from(
          JSON.stringify({ auths: { [secure.host]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') } } }),
        ),
      },
    });
  });
  after(async () => {
    await env?.close();
    await Promise.allSettled([secure?.close(), plain?.close()]);
    if (work) await rm(work, { recursive: true, force: true });
    delete process.env[OCI_CA_FILE_ENV];
  });

  it('a tag URL: revision tag@sha256:<manifest digest>, the artifact is the pushed bundle byte for byte', async () => {
    const pushed = await pushSecure({ 'pack.json': '{"id":"tagged"}', 'prompts/a.md': 'A' }, 'arena/tagged', 'v1.0.0');
    await env.apply('tagged', { type: 'oci', oci: { url: secure.url('arena/tagged', 'v1.0.0'), secretRef: { name: 'registry' } } });
    const src = await env.waitFor('tagged', 'Ready', (s) => s.status?.phase === 'Ready');
    const artifact = src.status!.artifact!;
    assert.equal(artifact.revision, `v1.0.0@${pushed.digest}`);
    // Reproducible pack + exact extraction: the stored artifact is the pushed layer.
    assert.equal(artifact.checksum, pushed.checksum);
    const dl = await env.download(artifact.url);
    assert.equal(dl.status, 200);
    assert.equal(dl.sha256, pushed.checksum);
    const archived = join(work, 'tagged.tar.gz');
    await writeFile(archived, dl.body);
    assert.deepEqual((await listArchive(archived)).map((e) => e.path), ['pack.json', 'prompts', 'prompts/a.md']);
  });

  it('a digest URL: revision @sha256:<digest>', async () => {
    const pushed = await pushSecure({ 'pack.json': '{"id":"pinned"}' }, 'arena/pinned', 'v1');
    await env.apply('pinned', { type: 'oci', oci: { url: secure.url('arena/pinned', pushed.digest), secretRef: { name: 'registry' } } });
    const src = await env.waitFor('pinned', 'Ready', (s) => s.status?.phase === 'Ready');
    assert.equal(src.status!.artifact!.revision, `@${pushed.digest}`);
    assert.equal(src.status!.artifact!.checksum, pushed.checksum);
  });

  it('an unchanged digest gives no-op cycles: manifest HEADs only, no blob or manifest pulled', async () => {
    await pushSecure({ 'pack.json': '{"id":"quiet"}' }, 'arena/quiet', 'v1');
    await env.apply('quiet', { type: 'oci', interval: '1s', oci: { url: secure.url('arena/quiet', 'v1'), secretRef: { name: 'registry' } } });
    const ready = await env.waitFor('quiet', 'Ready', (s) => s.status?.phase === 'Ready');
    const c0 = await env.counters('quiet');
    const blobsBefore = blobGets('arena/quiet').length;
    const getsBefore = manifestRequests('arena/quiet', 'GET').length;
    const headsBefore = manifestRequests('arena/quiet', 'HEAD').length;
    await waitFor('three no-op cycles', () => env.counters('quiet'), (c) => c.noops >= c0.noops + 3, 30_000);
    const c1 = await env.counters('quiet');
    assert.equal(c1.fetches, c0.fetches, 'no fetch');
    assert.equal(blobGets('arena/quiet').length, blobsBefore, 'no blob pulled by no-op cycles');
    assert.equal(manifestRequests('arena/quiet', 'GET').length, getsBefore, 'no manifest pulled by no-op cycles');
    assert.ok(manifestRequests('arena/quiet', 'HEAD').length >= headsBefore + 3, 'each cycle resolves the tag with a HEAD');
    assert.deepEqual((await env.get('quiet')).status!.artifact, ready.status!.artifact);
  });

  it('a re-pushed tag is picked up as a new revision', async () => {
    const first = await pushSecure({ 'pack.json': '{"id":"moving","v":1}' }, 'arena/moving', 'stable');
    await env.apply('moving', { type: 'oci', interval: '1s', oci: { url: secure.url('arena/moving', 'stable'), secretRef: { name: 'registry' } } });
    await env.waitFor('moving', 'first revision', (s) => s.status?.artifact?.revision === `stable@${first.digest}`);
    const second = await pushSecure({ 'pack.json': '{"id":"moving","v":2}' }, 'arena/moving', 'stable');
    assert.notEqual(second.digest, first.digest);
    const src = await env.waitFor('moving', 'second revision', (s) => s.status?.artifact?.revision === `stable@${second.digest}`);
    assert.equal(src.status!.phase, 'Ready');
    assert.equal(src.status!.artifact!.checksum, second.checksum);
  });

  it('both layouts (one tar+gzip layer, ORAS files) give the same reproducible artifact', async () => {
    const files = { 'pack.json': '{"id":"layouts"}', 'prompts/greeting.md': 'Hello', 'prompts/deep/x.json': '{}' };
    const tarLayout = await pushSecure(files, 'arena/layout-tar', 'v1');
    const filesLayout = await pushFiles(secure, 'arena/layout-files', 'v1', files);
    await env.apply('layout-tar', { type: 'oci', oci: { url: secure.url('arena/layout-tar', 'v1'), secretRef: { name: 'registry' } } });
    await env.apply('layout-files', { type: 'oci', oci: { url: secure.url('arena/layout-files', 'v1'), secretRef: { name: 'registry' } } });
    const a = await env.waitFor('layout-tar', 'Ready', (s) => s.status?.phase === 'Ready');
    const b = await env.waitFor('layout-files', 'Ready', (s) => s.status?.phase === 'Ready');
    assert.equal(b.status!.artifact!.revision, `v1@${filesLayout.digest}`);
    assert.equal(a.status!.artifact!.checksum, tarLayout.checksum);
    assert.equal(b.status!.artifact!.checksum, a.status!.artifact!.checksum, 'same content, same artifact, whatever the layout');
  });

  it('insecure: a plain-HTTP registry works with it, and fails clearly without it', async () => {
    const pushed = await pushBundle(await bundle({ 'pack.json': '{"id":"plain"}' }), plain.url('open/plain', 'v1'), { insecure: true });
    await env.apply('plain-ok', { type: 'oci', oci: { url: plain.url('open/plain', 'v1'), insecure: true } });
    const ok = await env.waitFor('plain-ok', 'Ready', (s) => s.status?.phase === 'Ready');
    assert.equal(ok.status!.artifact!.revision, `v1@${pushed.digest}`);

    await env.apply('plain-refused', { type: 'oci', interval: '1h', oci: { url: plain.url('open/plain', 'v1') } });
    const refused = await env.waitFor('plain-refused', 'Error', (s) => s.status?.phase === 'Error');
    const ready = findCondition(refused.status!.conditions, 'Ready')!;
    assert.equal(ready.status, 'False');
    assert.equal(ready.reason, 'FetchFailed');
    assert.match(ready.message, new RegExp(`registry ${plain.host.replace(/\./g, '\\.')} answers plain HTTP.*spec\\.oci\\.insecure: true`));
    assert.equal(refused.status!.artifact, undefined);
  });

  it('an unknown tag is a clear, non-retried FetchFailed', async () => {
    await pushSecure({ 'pack.json': '{}' }, 'arena/known', 'v1');
    await env.apply('unknown-tag', { type: 'oci', interval: '1h', oci: { url: secure.url('arena/known', 'v9'), secretRef: { name: 'registry' } } });
    const failed = await env.waitFor('unknown-tag', 'Error', (s) => s.status?.phase === 'Error');
    const ready = findCondition(failed.status!.conditions, 'Ready')!;
    assert.equal(ready.reason, 'FetchFailed');
    assert.match(ready.message, /tag 'v9' of 127\.0\.0\.1:\d+\/arena\/known: not found/);
    const c = await env.counters('unknown-tag');
    assert.equal(c.failures, 1);
  });
});
