/**
 * S3ArtifactStore against a real S3-compatible server (versitygw, posix backend):
 * single-part and multipart uploads, idempotence, verification, ranges, listing,
 * retention, removal, prefixes, presigned URLs, and a worker killed mid-upload.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { StorageFailedError } from '../../src/errors.js';
import { artifactKey, type SourceKey } from '../../src/store/artifact-store.js';
import { applyRetention } from '../../src/store/retention.js';
import { S3ArtifactStore } from '../../src/store/s3-store.js';
import { startS3, type TestS3 } from '../helpers/s3.js';

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
}

describe('S3 artifact store (versitygw)', () => {
  let s3: TestS3;
  let tmp: string;
  let store: S3ArtifactStore;
  let n = 0;

  /** A packed-file stand-in: the store only cares about bytes and digest. */
  async function makeFile(bytes: Buffer = randomBytes(4096)): Promise<{ file: string; checksum: string; bytes: Buffer; hex: string }> {
    const file = join(tmp, `upload-${++n}.tar.gz`);
    await writeFile(file, bytes);
    return { file, checksum: `sha256:${sha(bytes)}`, bytes, hex: sha(bytes) };
  }
  const head = (key: string) => s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key, ChecksumMode: 'ENABLED' }));
  const exists = (key: string) => head(key).then(() => true, () => false);
  const listKeys = async (prefix: string) =>
    ((await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix }))).Contents ?? []).map((o) => o.Key!).sort();
  const uploadsUnder = async (prefix: string) =>
    (await s3.client.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket, Prefix: prefix }))).Uploads ?? [];

  before(async () => {
    s3 = await startS3();
    tmp = await mkdtemp(join(tmpdir(), 'arena-s3-store-'));
    store = s3.store('arena/test');
  });
  after(async () => {
    await s3?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('puts under {prefix}/{ns}/{name}/{hex}.tar.gz, serves it back whole and in ranges, and verifies it', async () => {
    const src: SourceKey = { namespace: 'team-a', name: 'support-bot' };
    const f = await makeFile();
    const stored = await store.put(src, f.file, f.checksum);
    assert.deepEqual(stored, { key: `team-a/support-bot/${f.hex}.tar.gz`, checksum: f.checksum, size: 4096 });
    await assert.rejects(stat(f.file), { code: 'ENOENT' }, 'the packed file is consumed, like the filesystem store does');

    const h = await head(`arena/test/team-a/support-bot/${f.hex}.tar.gz`);
    assert.equal(h.ContentLength, 4096);
    assert.equal(h.Metadata?.sha256, f.hex);
    assert.equal(h.ChecksumSHA256, Buffer.from(f.hex, 'hex').toString('base64'), 'S3 holds a whole-object SHA-256 equal to ours');
    assert.equal(h.ContentType, 'application/gzip');

    const whole = await store.open(stored.key);
    assert.ok(whole);
    assert.equal(whole.size, 4096);
    assert.ok((await readAll(whole.stream)).equals(f.bytes));
    const part = await store.open(stored.key, { start: 100, end: 199 });
    assert.ok(part);
    assert.equal(part.size, 4096, 'size is the whole object even for a range');
    assert.ok((await readAll(part.stream)).equals(f.bytes.subarray(100, 200)));
    const tail = await store.open(stored.key, { start: 4000, end: 99_999 });
    assert.ok((await readAll(tail!.stream)).equals(f.bytes.subarray(4000)), 'an end past the object is clamped');
    await assert.rejects(store.open(stored.key, { start: 4096, end: 5000 }), RangeError);
    await assert.rejects(store.open(stored.key, { start: 10, end: 5 }), RangeError);

    const st = await store.stat(stored.key);
    assert.equal(st?.size, 4096);
    assert.ok(st!.mtime instanceof Date && Math.abs(st!.mtime.getTime() - Date.now()) < 60_000);
    assert.equal(await store.verify(src, f.checksum), true);
    assert.equal(await store.verify(src, `sha256:${'0'.repeat(64)}`), false, 'missing object');
    assert.equal(await store.stat(`team-a/support-bot/${'0'.repeat(64)}.tar.gz`), null);
    assert.equal(await store.open(`team-a/support-bot/${'0'.repeat(64)}.tar.gz`), null);
    for (const bad of ['../x', `team-a/../${f.hex}.tar.gz`, `Team/x/${f.hex}.tar.gz`, `team-a/support-bot/${f.hex}.tgz`]) {
      assert.equal(await store.stat(bad), null, bad);
      assert.equal(await store.open(bad), null, bad);
      assert.equal(await store.presign(bad, 60), null, bad);
    }
  });

  it('re-putting the same artifact does not upload it again', async () => {
    const src: SourceKey = { namespace: 'team-a', name: 'idem' };
    const f = await makeFile();
    await store.put(src, f.file, f.checksum);
    const key = `arena/test/${artifactKey(src, f.checksum)}`;
    const first = await head(key);
    const fileOnDisk = join(s3.dataDir, s3.bucket, key);
    const inode = (await stat(fileOnDisk)).ino;
    await sleep(1_100); // S3 times have 1 s resolution: a second PUT would show
    const again = await makeFile(f.bytes);
    const stored = await store.put(src, again.file, again.checksum);
    assert.equal(stored.key, artifactKey(src, f.checksum));
    await assert.rejects(stat(again.file), { code: 'ENOENT' });
    const second = await head(key);
    assert.equal(second.LastModified?.getTime(), first.LastModified?.getTime(), 'LastModified unchanged: no second PUT');
    assert.equal(second.ETag, first.ETag);
    assert.equal((await stat(fileOnDisk)).ino, inode, "the gateway's file was not replaced");
  });

  it('multipart: uploads in parts with bounded memory, verifies by hashing, and is idempotent too', async () => {
    const src: SourceKey = { namespace: 'team-a', name: 'big' };
    const mp = s3.store('arena/test', { partSize: 5 * MiB });
    const f = await makeFile(randomBytes(11 * MiB + 123));
    const stored = await mp.put(src, f.file, f.checksum);
    assert.equal(stored.size, 11 * MiB + 123);
    const h = await head(`arena/test/${stored.key}`);
    assert.match(h.ChecksumSHA256 ?? '', /-3$/, 'a composite checksum of 3 parts');
    assert.equal(h.Metadata?.sha256, f.hex);
    assert.equal(await mp.verify(src, f.checksum), true);
    const opened = await mp.open(stored.key);
    assert.equal(sha(await readAll(opened!.stream)), f.hex);
    const again = await makeFile(f.bytes);
    await mp.put(src, again.file, again.checksum);
    assert.equal((await head(`arena/test/${stored.key}`)).LastModified?.getTime(), h.LastModified?.getTime());
    assert.deepEqual(await uploadsUnder('arena/test/team-a/big/'), [], 'no multipart upload left behind');
  });

  it('refuses a file whose bytes do not match the checksum, and publishes nothing (single part and multipart)', async () => {
    const src: SourceKey = { namespace: 'team-a', name: 'liar' };
    for (const [label, size, partSize] of [['single', 2048, 5 * MiB], ['multipart', 12 * MiB, 5 * MiB]] as const) {
      const s = s3.store('arena/test', { partSize });
      const f = await makeFile(randomBytes(size));
      const claimed = `sha256:${sha(randomBytes(8))}`;
      await assert.rejects(s.put(src, f.file, claimed), (err: unknown) => {
        assert.ok(err instanceof StorageFailedError, String(err));
        assert.match(err.message, /hashes to sha256:/);
        return true;
      }, label);
      assert.equal(await exists(`arena/test/${artifactKey(src, claimed)}`), false, `${label}: nothing under the final key`);
    }
    assert.deepEqual(await listKeys('arena/test/team-a/liar/'), []);
    assert.deepEqual(await uploadsUnder('arena/test/team-a/liar/'), [], 'the multipart upload was aborted');
  });

  it('verify is false for a corrupted object, whatever its metadata claims, and for a missing one', async () => {
    const src: SourceKey = { namespace: 'team-a', name: 'corrupt' };
    // Single part: S3's own SHA-256 decides.
    const f = await makeFile();
    const stored = await store.put(src, f.file, f.checksum);
    const key = `arena/test/${stored.key}`;
    const evil = Buffer.from(f.bytes);
    evil[10] = (evil[10]! + 1) % 256;
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: evil, Metadata: { sha256: f.hex } }));
    assert.equal(await store.verify(src, f.checksum), false, 'overwritten with other bytes (default CRC32 checksum)');
    await s3.client.send(
      new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: evil, Metadata: { sha256: f.hex }, ChecksumAlgorithm: 'SHA256' }),
    );
    assert.equal(await store.verify(src, f.checksum), false, 'overwritten with other bytes and their own SHA-256');
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: evil.subarray(0, 100), ChecksumAlgorithm: 'SHA256' }));
    assert.equal(await store.verify(src, f.checksum), false, 'truncated');
    // The put after a corruption repairs it (not idempotent-skipped).
    const again = await makeFile(f.bytes);
    await store.put(src, again.file, again.checksum);
    assert.equal(await store.verify(src, f.checksum), true, 'repaired by the next put');

    // Multipart (composite checksum): only the bytes can tell.
    const mp = s3.store('arena/test', { partSize: 5 * MiB });
    const big = await makeFile(randomBytes(6 * MiB));
    const bigStored = await mp.put(src, big.file, big.checksum);
    assert.equal(await mp.verify(src, big.checksum), true);
    const bigEvil = Buffer.from(big.bytes);
    bigEvil[MiB] = (bigEvil[MiB]! + 1) % 256;
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `arena/test/${bigStored.key}`, Body: bigEvil, Metadata: { sha256: big.hex } }));
    assert.equal(await mp.verify(src, big.checksum), false, 'same metadata, other bytes: hashing finds it');
    const deep = s3.store('arena/test', { deepVerify: true });
    assert.equal(await deep.verify(src, f.checksum), true, 'deepVerify hashes the (repaired) single-part object too');
    // Bit rot under the gateway (its file changed behind S3's back): S3's record still
    // says the right SHA-256, so only deepVerify, which reads the bytes, sees it.
    const onDisk = join(s3.dataDir, s3.bucket, key);
    const rotten = await readFile(onDisk);
    rotten[7] = (rotten[7]! + 1) % 256;
    await writeFile(onDisk, rotten);
    assert.equal(await store.verify(src, f.checksum), true, 'the default trusts the checksum S3 stored');
    assert.equal(await deep.verify(src, f.checksum), false, 'deepVerify hashes the bytes');

    await store.removeSource(src);
    assert.equal(await store.verify(src, f.checksum), false, 'missing');
  });

  it('lists a source, prunes to the newest N plus the current one, and removes a source entirely', async () => {
    const src: SourceKey = { namespace: 'team-b', name: 'app' };
    const sibling: SourceKey = { namespace: 'team-b', name: 'app.v2' }; // shares "app" as a string prefix
    const checksums: string[] = [];
    for (let i = 0; i < 4; i++) {
      const f = await makeFile();
      await store.put(src, f.file, f.checksum);
      checksums.push(f.checksum);
      if (i < 3) await sleep(1_100); // distinct LastModified seconds
    }
    const sib = await makeFile();
    await store.put(sibling, sib.file, sib.checksum);
    // Not artifacts, but under the source's prefix: listing ignores them, removal does not.
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'arena/test/team-b/app/notes.txt', Body: 'x' }));

    const listed = await store.list(src);
    assert.deepEqual(listed.map((a) => a.key).sort(), checksums.map((c) => artifactKey(src, c)).sort());
    const [c0, c1, c2, c3] = checksums as [string, string, string, string];

    // Keep the newest 2 and the current (oldest) one.
    const deleted = await store.prune(src, 2, c0);
    assert.deepEqual(deleted, [artifactKey(src, c1)]);
    assert.deepEqual((await store.list(src)).map((a) => a.key).sort(), [c0, c2, c3].map((c) => artifactKey(src, c)).sort());
    // current as a key works too; keep 0 leaves only it.
    assert.deepEqual((await store.prune(src, 0, artifactKey(src, c3))).sort(), [c0, c2].map((c) => artifactKey(src, c)).sort());
    assert.equal(await store.verify(src, c3), true);
    await assert.rejects(store.prune(src, 1, artifactKey(sibling, sib.checksum)), /not an artifact key or checksum of team-b\/app/);

    await store.removeSource(src);
    assert.deepEqual(await listKeys('arena/test/team-b/app/'), [], 'every object under the source prefix is gone');
    assert.equal(await store.verify(sibling, sib.checksum), true, 'a source whose name starts the same is untouched');
    await store.removeSource(src); // idempotent
  });

  it('retention over S3: keeps N and the current one, and an older artifact until its TTL has run out', async () => {
    const src: SourceKey = { namespace: 'team-c', name: 'ttl' };
    const sums: string[] = [];
    for (let i = 0; i < 4; i++) {
      const f = await makeFile();
      await store.put(src, f.file, f.checksum);
      sums.push(f.checksum);
      if (i < 3) await sleep(1_100);
    }
    const [a0, a1, a2, a3] = sums as [string, string, string, string];
    const times = new Map((await store.list(src)).map((a) => [a.key, a.mtime.getTime()]));
    const t = (c: string) => times.get(artifactKey(src, c))!;
    const ttlMs = 60 * 60 * 1000;

    // Just published: nothing beyond keep=2 has been superseded for an hour.
    let r = await applyRetention(store, src, a3, { keep: 2, ttlMs }, new Date(t(a3) + 1_000));
    assert.deepEqual(r.deleted, []);
    assert.deepEqual(r.deferred.sort(), [a0, a1].map((c) => artifactKey(src, c)).sort());
    assert.equal(r.nextDueAt, new Date(t(a1) + ttlMs).toISOString(), 'a0 is due first: a1 superseded it');

    // a0 was superseded (by a1) more than an hour ago, a1 (by a2) not yet.
    r = await applyRetention(store, src, a3, { keep: 2, ttlMs }, new Date(t(a1) + ttlMs + 10));
    assert.deepEqual(r.deleted, [artifactKey(src, a0)]);
    assert.deepEqual(r.deferred, [artifactKey(src, a1)]);

    // Much later: keep 1, but the current one is a1 (e.g. a rollback): a1 and a3 stay.
    r = await applyRetention(store, src, a1, { keep: 1, ttlMs }, new Date(t(a3) + 2 * ttlMs));
    assert.deepEqual(r.deleted, [artifactKey(src, a2)]);
    assert.deepEqual((await store.list(src)).map((a) => a.key).sort(), [a1, a3].map((c) => artifactKey(src, c)).sort());
    await store.removeSource(src);
  });

  it('keeps stores with different prefixes apart in one bucket', async () => {
    const src: SourceKey = { namespace: 'shared', name: 'same-name' };
    const a = s3.store('tenant-a');
    const b = s3.store('/tenant-b/');
    const unprefixed = s3.store();
    const fa = await makeFile();
    const fb = await makeFile();
    await a.put(src, fa.file, fa.checksum);
    await b.put(src, fb.file, fb.checksum);
    assert.equal(await a.verify(src, fb.checksum), false);
    assert.equal(await b.verify(src, fb.checksum), true);
    assert.ok(await exists(`tenant-a/${artifactKey(src, fa.checksum)}`));
    assert.ok(await exists(`tenant-b/${artifactKey(src, fb.checksum)}`));
    assert.deepEqual(await unprefixed.list(src), [], 'no prefix means keys at the bucket root');
    await a.removeSource(src);
    assert.equal(await b.verify(src, fb.checksum), true);
    assert.throws(() => s3.store('a/../b'), /S3 prefix/);
    assert.throws(() => s3.store('a//b'), /S3 prefix/);
  });

  it('presigns a GET that fetches the object without credentials', async () => {
    const src: SourceKey = { namespace: 'team-a', name: 'presigned' };
    const f = await makeFile();
    const stored = await store.put(src, f.file, f.checksum);
    const url = await store.presign(stored.key, 60);
    assert.ok(url?.startsWith(`${s3.endpoint}/${s3.bucket}/arena/test/`));
    const res = await fetch(url!);
    assert.equal(res.status, 200);
    assert.equal(sha(Buffer.from(await res.arrayBuffer())), f.hex);
    const plain = await fetch(`${s3.endpoint}/${s3.bucket}/arena/test/${stored.key}`);
    assert.equal(plain.status, 403, 'without the signature the bucket is closed');
    await plain.arrayBuffer();
  });

  it('reports a missing bucket and bad credentials as StorageFailed', async () => {
    const src: SourceKey = { namespace: 'team-a', name: 'broken' };
    const f = await makeFile();
    const noBucket = s3.store(undefined, { bucket: 'no-such-bucket' });
    await assert.rejects(noBucket.put(src, f.file, f.checksum), (err: unknown) => {
      assert.ok(err instanceof StorageFailedError);
      assert.match(err.message, /no-such-bucket/);
      return true;
    });
    const badCreds = s3.store(undefined, { credentials: { accessKeyId: s3.credentials.accessKeyId, secretAccessKey: 'wrong' } });
    await assert.rejects(badCreds.verify(src, f.checksum), (err: unknown) => {
      assert.ok(err instanceof StorageFailedError);
      assert.match(err.message, /credentials/);
      return true;
    });
  });

  it('a worker killed mid-upload publishes nothing; prune aborts the orphaned multipart upload', async () => {
    const src: SourceKey = { namespace: 'team-d', name: 'killed' };
    const f = await makeFile(randomBytes(12 * MiB));
    const storeModule = fileURLToPath(new URL('../../src/store/s3-store.js', import.meta.url));
    const clientModule = import.meta.resolve('@aws-sdk/client-s3');
    // The child puts the file with 5 MiB parts; part 1 goes through, part 2 never
    // returns (a stuck network), and the parent SIGKILLs the child in between.
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `
        const { S3Client } = await import(${JSON.stringify(clientModule)});
        const { S3ArtifactStore } = await import(${JSON.stringify(storeModule)});
        const cfg = JSON.parse(process.env.S3_CFG);
        const client = new S3Client({ endpoint: cfg.endpoint, region: cfg.region, forcePathStyle: true, credentials: cfg.credentials });
        client.middlewareStack.add((next, context) => async (args) => {
          if (context.commandName !== 'UploadPartCommand') return next(args);
          if (args.input.PartNumber > 1) await new Promise(() => {});
          const out = await next(args);
          process.stdout.write('PART-UPLOADED\\n');
          return out;
        }, { step: 'initialize' });
        const store = new S3ArtifactStore({ bucket: cfg.bucket, prefix: 'arena/test', client, partSize: 5 * 1024 * 1024, queueSize: 2 });
        setInterval(() => {}, 1000);
        await store.put(cfg.source, cfg.file, cfg.checksum);
        process.stdout.write('DONE\\n');
        `,
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          ...process.env,
          S3_CFG: JSON.stringify({
            endpoint: s3.endpoint,
            region: s3.region,
            bucket: s3.bucket,
            credentials: s3.credentials,
            source: src,
            file: f.file,
            checksum: f.checksum,
          }),
        },
      },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const deadline = Date.now() + 30_000;
    while (!out.includes('PART-UPLOADED') && Date.now() < deadline && child.exitCode === null) await sleep(50);
    child.kill('SIGKILL');
    await exited;
    assert.match(out, /PART-UPLOADED/, `the child got one part up before it was killed; stderr: ${err}`);
    assert.doesNotMatch(out, /DONE/);

    const finalKey = `arena/test/${artifactKey(src, f.checksum)}`;
    assert.equal(await exists(finalKey), false, 'no object under the final key');
    assert.deepEqual(await listKeys('arena/test/team-d/killed/'), [], 'nothing listed for the source');
    assert.equal(await store.verify(src, f.checksum), false);
    assert.equal((await uploadsUnder('arena/test/team-d/killed/')).length, 1, 'an incomplete multipart upload, invisible to readers');

    // A fresh put (the activity's retry, on another worker) publishes it whole.
    const retry = await makeFile(f.bytes);
    await s3.store('arena/test', { partSize: 5 * MiB }).put(src, retry.file, retry.checksum);
    assert.equal(await store.verify(src, f.checksum), true);
    // prune aborts uploads older than staleUploadMs (1 h by default; 0 here).
    await store.prune(src, 2, f.checksum);
    assert.equal((await uploadsUnder('arena/test/team-d/killed/')).length, 1, 'a recent upload may still be running: kept');
    await s3.store('arena/test', { staleUploadMs: 0 }).prune(src, 2, f.checksum);
    assert.deepEqual(await uploadsUnder('arena/test/team-d/killed/'), []);
    assert.equal(await store.verify(src, f.checksum), true);
  });
});
