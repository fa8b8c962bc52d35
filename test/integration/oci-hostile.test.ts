/**
 * Hostile OCI content through the whole stack: a tag re-pushed with tar layers
 * that try to escape (absolute paths, `..`, symlinks out, devices), an
 * oversized layer, and ORAS file titles with `..`. Each ends in Error with
 * UnsafeContent or ArtifactTooLarge, nothing lands outside the work directory,
 * and the previous artifact stays published and downloadable.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ArenaSource } from '../../src/api/schema.js';
import { findCondition } from '../../src/api/status.js';
import { DEFAULT_PACK_LIMITS } from '../../src/bundle/pack.js';
import { pushBundle } from '../../src/oci/push.js';
import { startTestEnv, type TestEnv } from '../helpers/env.js';
import { makeTarGz, pushLayer, requireRegistryTools, startRegistry, type TarSpec, type TestRegistry } from '../helpers/registry.js';

describe('hostile OCI content', () => {
  let env: TestEnv;
  let reg: TestRegistry;
  let work: string;
  let good: ArenaSource;
  const repo = 'hostile/bundle';
  const tag = 'latest';

  before(async () => {
    await requireRegistryTools();
    reg = await startRegistry(); // anonymous plain HTTP: this file is about content, not transport
    work = await mkdtemp(join(tmpdir(), 'arena-oci-hostile-'));
    env = await startTestEnv('ocihostile');
    await writeFile(join(work, 'pack.json'), '{"id":"good"}');
    await pushBundle(work, reg.url(repo, tag), { insecure: true });
    await env.apply('target', { type: 'oci', interval: '1s', oci: { url: reg.url(repo, tag), insecure: true } });
    good = await env.waitFor('target', 'Ready', (s) => s.status?.phase === 'Ready');
  });
  after(async () => {
    await env?.close();
    await reg?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** Re-pushes the tag with `push`, waits for the source to fail on that revision, checks the old artifact. */
  async function expectRejected(push: () => Promise<{ digest: string }>, reason: string, message: RegExp) {
    const { digest } = await push();
    const failed = await env.waitFor(
      'target',
      `${reason} for ${digest}`,
      (s) => s.status?.phase === 'Error' && (findCondition(s.status.conditions, 'Ready')?.message ?? '').includes(digest),
      40_000,
    );
    const ready = findCondition(failed.status!.conditions, 'Ready')!;
    assert.equal(ready.status, 'False');
    assert.equal(ready.reason, reason, ready.message);
    assert.match(ready.message, message);
    assert.match(ready.message, /still serving the last artifact/);
    assert.deepEqual(failed.status!.artifact, good.status!.artifact, 'the previous artifact stays published');
    assert.equal(findCondition(failed.status!.conditions, 'ArtifactAvailable')!.status, 'True');
    const dl = await env.download(good.status!.artifact!.url);
    assert.equal(dl.status, 200);
    assert.equal(dl.sha256, good.status!.artifact!.checksum);
  }

  const layer = (entries: TarSpec[]) => async () => pushLayer(reg, repo, tag, await makeTarGz(entries));

  it('an absolute path: UnsafeContent, nothing written there', async () => {
    const victim = join(work, 'absolute-victim');
    await expectRejected(layer([{ name: 'pack.json', body: '{}' }, { name: victim, body: 'pwned' }]), 'UnsafeContent', /absolute path/);
    assert.ok(!existsSync(victim));
  });

  it('a "../" path: UnsafeContent', async () => {
    await expectRejected(layer([{ name: '../../../../../../tmp/arena-dotdot-victim', body: 'pwned' }]), 'UnsafeContent', /contains "\.\."/);
    assert.ok(!existsSync('/tmp/arena-dotdot-victim'));
  });

  it('a symlink pointing outside: UnsafeContent', async () => {
    await expectRejected(
      layer([
        { name: 'pack.json', body: '{}' },
        { name: 'etc', type: 'symlink', linkname: '../../../../../../etc' },
      ]),
      'UnsafeContent',
      /symlink to "\.\.\/\.\.\/\.\.\/\.\.\/\.\.\/\.\.\/etc", outside the artifact/,
    );
  });

  it('a device: UnsafeContent', async () => {
    await expectRejected(layer([{ name: 'null', type: 'character-device', devmajor: 1, devminor: 3 }]), 'UnsafeContent', /character device/);
  });

  it('an oversized file (a small, highly compressed layer): ArtifactTooLarge before it is unpacked', async () => {
    await expectRejected(
      layer([{ name: 'huge.bin', zeros: DEFAULT_PACK_LIMITS.maxBytes + 1 }]),
      'ArtifactTooLarge',
      new RegExp(`exceeds ${DEFAULT_PACK_LIMITS.maxBytes} bytes unpacked`),
    );
  });

  it('an ORAS file title with "..": UnsafeContent', async () => {
    // oras validates titles on push, so this manifest is written by hand (see pushTitled).
    await expectRejected(
      () => pushTitled(reg, repo, tag, '../escape'),
      'UnsafeContent',
      /contains "\.\."/,
    );
  });

  it('recovers when a good bundle is pushed again', async () => {
    await writeFile(join(work, 'pack.json'), '{"id":"good","v":2}');
    const pushed = await pushBundle(work, reg.url(repo, tag), { insecure: true });
    const back = await env.waitFor('target', 'Ready again', (s) => s.status?.phase === 'Ready' && s.status.artifact?.revision === `${tag}@${pushed.digest}`, 40_000);
    assert.equal(back.status!.artifact!.checksum, pushed.checksum);
  });
});

/**
 * A file artifact whose only layer carries a hostile title. oras validates
 * titles on push, so the blobs and the manifest are uploaded by hand through
 * the registry API (plain HTTP, anonymous).
 */
async function pushTitled(reg: TestRegistry, repository: string, tag: string, title: string): Promise<{ digest: string }> {
  const base = `http://${reg.host}/v2/${repository}`;
  const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
  async function putBlob(bytes: Buffer): Promise<string> {
    const digest = sha(bytes);
    const start = await fetch(`${base}/blobs/uploads/`, { method: 'POST' });
    assert.equal(start.status, 202, `blob upload start: ${start.status}`);
    const location = new URL(start.headers.get('location')!, `http://${reg.host}`);
    location.searchParams.set('digest', digest);
    const put = await fetch(location, { method: 'PUT', body: bytes, headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(put.status, 201, `blob upload: ${put.status}`);
    return digest;
  }
  const config = Buffer.from('{}');
  const content = Buffer.from('escaped!');
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: await putBlob(config), size: config.length },
      layers: [
        {
          mediaType: 'application/vnd.oci.image.layer.v1.tar',
          digest: await putBlob(content),
          size: content.length,
          annotations: { 'org.opencontainers.image.title': title },
        },
      ],
    }),
  );
  const res = await fetch(`${base}/manifests/${tag}`, {
    method: 'PUT',
    body: manifest,
    headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
  });
  assert.equal(res.status, 201, `manifest put: ${res.status} ${await res.text()}`);
  return { digest: sha(manifest) };
}
