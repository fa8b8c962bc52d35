/**
 * The artifact server in front of the S3 store (versitygw): GET/HEAD/Range/ETag
 * streamed from S3, and the option that answers GET with a 302 to a short-lived
 * presigned S3 URL.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startArtifactServer, type RunningArtifactServer } from '../../src/server/artifact-server.js';
import type { SourceKey, StoredArtifact } from '../../src/store/artifact-store.js';
import { FilesystemArtifactStore } from '../../src/store/fs-store.js';
import type { S3ArtifactStore } from '../../src/store/s3-store.js';
import { startS3, type TestS3 } from '../helpers/s3.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('artifact server over S3', () => {
  let s3: TestS3;
  let tmp: string;
  let store: S3ArtifactStore;
  let streaming: RunningArtifactServer;
  let redirecting: RunningArtifactServer;
  let artifact: StoredArtifact;
  let bytes: Buffer;
  const src: SourceKey = { namespace: 'arena', name: 'served' };
  const missing = `arena/served/${'e'.repeat(64)}.tar.gz`;

  before(async () => {
    s3 = await startS3();
    tmp = await mkdtemp(join(tmpdir(), 'arena-s3-server-'));
    store = s3.store('artifacts');
    bytes = randomBytes(100_000);
    const file = join(tmp, 'a.tar.gz');
    await writeFile(file, bytes);
    artifact = await store.put(src, file, `sha256:${sha(bytes)}`);
    streaming = await startArtifactServer(store);
    redirecting = await startArtifactServer(store, { redirectPresigned: { expiresInSeconds: 60 } });
  });
  after(async () => {
    await streaming?.close();
    await redirecting?.close();
    await s3?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('streams GET from S3 with ETag, Content-Length and caching headers', async () => {
    const res = await fetch(`${streaming.url}/${artifact.key}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('etag'), `"${artifact.checksum}"`);
    assert.equal(res.headers.get('content-length'), String(bytes.length));
    assert.equal(res.headers.get('accept-ranges'), 'bytes');
    assert.match(res.headers.get('cache-control') ?? '', /immutable/);
    assert.equal(`sha256:${sha(Buffer.from(await res.arrayBuffer()))}`, artifact.checksum);
  });

  it('answers HEAD from a stat, ranges from S3 ranged GETs, and conditionals', async () => {
    const url = `${streaming.url}/${artifact.key}`;
    const head = await fetch(url, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(bytes.length));
    assert.equal(head.headers.get('etag'), `"${artifact.checksum}"`);

    const part = await fetch(url, { headers: { Range: 'bytes=1000-1999' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 1000-1999/${bytes.length}`);
    assert.ok(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(1000, 2000)));

    const suffix = await fetch(url, { headers: { Range: 'bytes=-10' } });
    assert.equal(suffix.status, 206);
    assert.ok(Buffer.from(await suffix.arrayBuffer()).equals(bytes.subarray(bytes.length - 10)));

    const open = await fetch(url, { headers: { Range: `bytes=${bytes.length - 5}-` } });
    assert.equal(open.status, 206);
    assert.equal(open.headers.get('content-range'), `bytes ${bytes.length - 5}-${bytes.length - 1}/${bytes.length}`);
    await open.arrayBuffer();

    const beyond = await fetch(url, { headers: { Range: `bytes=${bytes.length}-` } });
    assert.equal(beyond.status, 416);
    assert.equal(beyond.headers.get('content-range'), `bytes */${bytes.length}`);
    await beyond.arrayBuffer();

    const notModified = await fetch(url, { headers: { 'If-None-Match': `"${artifact.checksum}"` } });
    assert.equal(notModified.status, 304);

    const staleIfRange = await fetch(url, { headers: { Range: 'bytes=0-9', 'If-Range': '"sha256:other"' } });
    assert.equal(staleIfRange.status, 200, 'If-Range with another tag gets the whole object');
    await staleIfRange.arrayBuffer();

    const gone = await fetch(`${streaming.url}/${missing}`);
    assert.equal(gone.status, 404);
    await gone.arrayBuffer();
  });

  it('with redirectPresigned, GET is a 302 to a short-lived S3 URL whose bytes hash to the checksum', async () => {
    const url = `${redirecting.url}/${artifact.key}`;
    const res = await fetch(url, { redirect: 'manual' });
    assert.equal(res.status, 302);
    const location = res.headers.get('location') ?? '';
    assert.ok(location.startsWith(`${s3.endpoint}/${s3.bucket}/artifacts/${artifact.key}?`), location);
    assert.match(location, /X-Amz-Expires=60/);
    assert.equal(res.headers.get('cache-control'), 'no-store', 'the redirect must not outlive its URL in a cache');

    const followed = await fetch(url);
    assert.equal(followed.status, 200);
    assert.ok(followed.redirected);
    assert.equal(`sha256:${sha(Buffer.from(await followed.arrayBuffer()))}`, artifact.checksum);

    const ranged = await fetch(url, { headers: { Range: 'bytes=10-19' } });
    assert.equal(ranged.status, 206, 'the client re-sends Range to the presigned URL');
    assert.ok(Buffer.from(await ranged.arrayBuffer()).equals(bytes.subarray(10, 20)));
  });

  it('with redirectPresigned, HEAD, 304 and 404 are still answered by the server itself', async () => {
    const url = `${redirecting.url}/${artifact.key}`;
    const head = await fetch(url, { method: 'HEAD', redirect: 'manual' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(bytes.length));
    const cached = await fetch(url, { headers: { 'If-None-Match': `"${artifact.checksum}"` }, redirect: 'manual' });
    assert.equal(cached.status, 304);
    const gone = await fetch(`${redirecting.url}/${missing}`, { redirect: 'manual' });
    assert.equal(gone.status, 404, 'no redirect to an object that is not there');
    await gone.arrayBuffer();
  });

  it('presigned URLs expire', async () => {
    const short = await startArtifactServer(store, { redirectPresigned: { expiresInSeconds: 1 } });
    try {
      const res = await fetch(`${short.url}/${artifact.key}`, { redirect: 'manual' });
      const location = res.headers.get('location')!;
      await sleep(2_100);
      const expired = await fetch(location);
      assert.equal(expired.status, 403);
      await expired.arrayBuffer();
      // The stable URL keeps working: it signs a new one.
      const again = await fetch(`${short.url}/${artifact.key}`);
      assert.equal(again.status, 200);
      await again.arrayBuffer();
    } finally {
      await short.close();
    }
  });

  it('refuses redirectPresigned for a store that cannot presign', async () => {
    await assert.rejects(
      startArtifactServer(new FilesystemArtifactStore(tmp), { redirectPresigned: true }),
      /redirectPresigned needs a store that can presign/,
    );
  });
});
