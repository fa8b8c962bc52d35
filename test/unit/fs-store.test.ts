import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { InvalidSpecError, StorageFailedError } from '../../src/errors.js';
import { artifactKey, parseArtifactKey, type SourceKey } from '../../src/store/artifact-store.js';
import { FilesystemArtifactStore } from '../../src/store/fs-store.js';

const require = createRequire(import.meta.url);

let tmp: string;
before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'arena-store-test-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

let counter = 0;
async function newStore(): Promise<{ store: FilesystemArtifactStore; root: string }> {
  const root = path.join(tmp, `store-${++counter}`, 'artifacts');
  return { store: new FilesystemArtifactStore(root), root };
}

/** A packed file stand-in: the store only cares about bytes and their digest. */
async function makeFile(content: Buffer | string = randomBytes(4096), dir = tmp): Promise<{ file: string; checksum: string; bytes: Buffer }> {
  const bytes = Buffer.from(content);
  const file = path.join(dir, `upload-${++counter}.tar.gz`);
  await writeFile(file, bytes);
  return { file, checksum: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, bytes };
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
}

const src: SourceKey = { namespace: 'team-a', name: 'support-bot' };

describe('artifactKey / parseArtifactKey', () => {
  it('builds and parses "<ns>/<name>/<hex>.tar.gz"', () => {
    const hex = 'ab'.repeat(32);
    const key = artifactKey({ namespace: 'ns', name: 'my.source-1' }, `sha256:${hex}`);
    assert.equal(key, `ns/my.source-1/${hex}.tar.gz`);
    assert.deepEqual(parseArtifactKey(key), {
      source: { namespace: 'ns', name: 'my.source-1' },
      checksum: `sha256:${hex}`,
      hex,
    });
    for (const bad of [
      `../ns/${hex}.tar.gz`,
      `ns/../${hex}.tar.gz`,
      `ns/name/../${hex}.tar.gz`,
      `/ns/name/${hex}.tar.gz`,
      `ns/name/${hex.toUpperCase()}.tar.gz`,
      `ns/name/${hex}.tar`,
      `ns/na%2fme/${hex}.tar.gz`,
      `ns/.hidden/${hex}.tar.gz`,
      `ns//${hex}.tar.gz`,
    ]) {
      assert.equal(parseArtifactKey(bad), null, bad);
    }
  });
});

describe('FilesystemArtifactStore', () => {
  it('puts a file under its digest, atomically, and removes the source file', async () => {
    const { store, root } = await newStore();
    const { file, checksum, bytes } = await makeFile();
    const stored = await store.put(src, file, checksum);

    const hex = checksum.slice('sha256:'.length);
    assert.deepEqual(stored, { key: `team-a/support-bot/${hex}.tar.gz`, checksum, size: bytes.length });
    const onDisk = path.join(root, 'team-a', 'support-bot', `${hex}.tar.gz`);
    assert.deepEqual(await readFile(onDisk), bytes);
    assert.equal((await stat(onDisk)).mode & 0o777, 0o644);
    assert.equal(existsSync(file), false, 'the source file is consumed');
    assert.deepEqual(await readdir(path.dirname(onDisk)), [`${hex}.tar.gz`], 'no temp files are left behind');

    assert.equal(await store.verify(src, checksum), true);
    assert.equal(await store.verify(src, `sha256:${'0'.repeat(64)}`), false);
    assert.equal(await store.verify({ namespace: 'other', name: 'x' }, checksum), false);
  });

  it('is idempotent: an existing valid object is not rewritten', async () => {
    const { store } = await newStore();
    const content = randomBytes(1000);
    const first = await makeFile(content);
    const stored = await store.put(src, first.file, first.checksum);
    const objectPath = path.join(store.root, stored.key);
    const before = await stat(objectPath);
    const old = new Date('2020-01-01T00:00:00Z');
    await utimes(objectPath, old, old);

    const second = await makeFile(content);
    assert.deepEqual(await store.put(src, second.file, second.checksum), stored);
    const afterPut = await stat(objectPath);
    assert.equal(afterPut.ino, before.ino, 'same inode: not rewritten');
    assert.ok(afterPut.mtimeMs > old.getTime(), 'the re-published object counts as newest for prune');
    assert.equal(existsSync(second.file), false);
  });

  it('verify is false once the stored bytes are corrupted, and a new put repairs it', async () => {
    const { store } = await newStore();
    const content = randomBytes(2048);
    const f = await makeFile(content);
    const { key } = await store.put(src, f.file, f.checksum);
    const objectPath = path.join(store.root, key);

    const corrupted = Buffer.from(content);
    corrupted[100] = (corrupted[100] ?? 0) ^ 0xff;
    await writeFile(objectPath, corrupted);
    assert.equal(await store.verify(src, f.checksum), false);

    await rm(objectPath);
    assert.equal(await store.verify(src, f.checksum), false, 'missing is not valid either');

    await writeFile(objectPath, corrupted);
    const again = await makeFile(content);
    await store.put(src, again.file, again.checksum);
    assert.equal(await store.verify(src, f.checksum), true);
    assert.deepEqual(await readFile(objectPath), content);
  });

  it('rejects a file whose content does not match the checksum, keeping the caller file', async () => {
    const { store, root } = await newStore();
    const good = await makeFile('good bytes');
    await store.put(src, good.file, good.checksum);

    const f = await makeFile('actual bytes');
    const claimed = `sha256:${createHash('sha256').update('other bytes').digest('hex')}`;
    await assert.rejects(store.put(src, f.file, claimed), (err: unknown) => {
      assert.ok(err instanceof StorageFailedError, String(err));
      assert.match(err.message, new RegExp(`hashes to ${f.checksum}, not ${claimed}`));
      return true;
    });
    assert.equal(await readFile(f.file, 'utf8'), 'actual bytes', 'caller file untouched');
    assert.equal(await store.verify(src, claimed), false);
    assert.equal(await store.verify(src, f.checksum), false);
    assert.equal(await store.verify(src, good.checksum), true);
    assert.deepEqual(await readdir(path.join(root, 'team-a', 'support-bot')), [`${good.checksum.slice(7)}.tar.gz`]);
  });

  it('rejects invalid namespaces, names and checksums without touching the disk', async () => {
    const { store, root } = await newStore();
    const f = await makeFile();
    const badSources: SourceKey[] = [
      { namespace: '..', name: 'x' },
      { namespace: 'ns', name: '..' },
      { namespace: 'ns', name: '../../etc' },
      { namespace: 'ns/evil', name: 'x' },
      { namespace: 'NS', name: 'x' },
      { namespace: 'ns', name: 'Upper' },
      { namespace: 'ns', name: '' },
      { namespace: '', name: 'x' },
      { namespace: 'ns', name: '.hidden' },
      { namespace: 'ns', name: 'a..b' },
      { namespace: 'a'.repeat(64), name: 'x' },
      { namespace: 'ns', name: 'a%2fb' },
    ];
    for (const bad of badSources) {
      await assert.rejects(store.put(bad, f.file, f.checksum), InvalidSpecError, JSON.stringify(bad));
      await assert.rejects(store.verify(bad, f.checksum), InvalidSpecError);
      await assert.rejects(store.removeSource(bad), InvalidSpecError);
      await assert.rejects(store.prune(bad, 1, ''), InvalidSpecError);
    }
    for (const badChecksum of ['sha256:xyz', f.checksum.toUpperCase(), `md5:${'0'.repeat(32)}`, f.checksum.slice(7), `${f.checksum}/../x`]) {
      await assert.rejects(store.put(src, f.file, badChecksum), InvalidSpecError, badChecksum);
    }
    assert.equal(existsSync(root), false, 'nothing was created');
    assert.equal(existsSync(f.file), true, 'the source file is kept');

    // Reads with malformed keys just find nothing.
    const hex = f.checksum.slice(7);
    for (const key of [`../x/y/${hex}.tar.gz`, `ns/../../${hex}.tar.gz`, '/etc/passwd', `ns/x/${hex}.tar.gz/../../..`]) {
      assert.equal(await store.open(key), null, key);
      assert.equal(await store.stat(key), null, key);
    }
  });

  it('opens objects whole or by byte range, and stats them', async () => {
    const { store } = await newStore();
    const f = await makeFile(randomBytes(10_000));
    const { key } = await store.put(src, f.file, f.checksum);

    const whole = await store.open(key);
    assert.ok(whole);
    assert.equal(whole.size, 10_000);
    assert.deepEqual(await readAll(whole.stream), f.bytes);

    const part = await store.open(key, { start: 100, end: 199 });
    assert.ok(part);
    assert.equal(part.size, 10_000, 'size is the whole object');
    assert.deepEqual(await readAll(part.stream), f.bytes.subarray(100, 200));

    const tail = await store.open(key, { start: 9_990, end: 1e9 });
    assert.ok(tail);
    assert.deepEqual(await readAll(tail.stream), f.bytes.subarray(9_990));

    await assert.rejects(store.open(key, { start: 10_000, end: 10_001 }), RangeError);

    const st = await store.stat(key);
    assert.equal(st?.size, 10_000);
    assert.ok(st?.mtime instanceof Date);

    const absent = `team-a/support-bot/${'0'.repeat(64)}.tar.gz`;
    assert.equal(await store.open(absent), null);
    assert.equal(await store.stat(absent), null);
  });

  it('removeSource deletes every artifact of one source only', async () => {
    const { store, root } = await newStore();
    const other: SourceKey = { namespace: 'team-a', name: 'other' };
    for (let i = 0; i < 3; i++) {
      const f = await makeFile();
      await store.put(src, f.file, f.checksum);
    }
    const keep = await makeFile();
    const kept = await store.put(other, keep.file, keep.checksum);

    await store.removeSource(src);
    assert.equal(existsSync(path.join(root, 'team-a', 'support-bot')), false);
    assert.equal(await store.verify(other, kept.checksum), true);
    await store.removeSource(src); // already gone: fine

    await store.removeSource(other);
    assert.equal(existsSync(path.join(root, 'team-a')), false, 'an emptied namespace directory goes too');
    assert.equal(existsSync(root), true);
  });

  it('list gives the artifacts of one source with size and mtime, not temp files or other sources', async () => {
    const { store, root } = await newStore();
    assert.deepEqual(await store.list(src), [], 'a source never published has none');
    const a = await makeFile('a');
    const b = await makeFile('bb');
    const stored = [await store.put(src, a.file, a.checksum), await store.put(src, b.file, b.checksum)];
    const other = await makeFile('c');
    await store.put({ namespace: 'team-a', name: 'other' }, other.file, other.checksum);
    const dir = path.join(root, 'team-a', 'support-bot');
    await writeFile(path.join(dir, `.${'0'.repeat(64)}.x.tmp`), 'partial');
    await mkdir(path.join(dir, `${'1'.repeat(64)}.tar.gz`)); // not a file
    const t = new Date('2026-01-02T03:04:05Z');
    await utimes(path.join(root, stored[0]!.key), t, t);

    const listed = (await store.list(src)).sort((x, y) => x.size - y.size);
    assert.deepEqual(
      listed.map((l) => ({ key: l.key, size: l.size })),
      stored.map((s) => ({ key: s.key, size: s.size })),
    );
    assert.equal(listed[0]!.mtime.getTime(), t.getTime());
    await assert.rejects(store.list({ namespace: 'Bad', name: 'x' }), InvalidSpecError);
  });

  it('prune keeps the newest N and always the current artifact', async () => {
    const { store } = await newStore();
    const stored = [];
    for (let i = 0; i < 5; i++) {
      const f = await makeFile(`artifact ${i}`);
      const s = await store.put(src, f.file, f.checksum);
      // Explicit, distinct mtimes: artifact 0 is the oldest.
      const t = new Date(Date.UTC(2024, 0, 1 + i));
      await utimes(path.join(store.root, s.key), t, t);
      stored.push(s);
    }
    const [a0, a1, a2, a3, a4] = stored as [typeof stored[0], typeof stored[0], typeof stored[0], typeof stored[0], typeof stored[0]];

    // A stale temp file from a crashed put goes; a fresh one (a put in progress) stays.
    const dir = path.join(store.root, 'team-a', 'support-bot');
    const staleTmp = path.join(dir, `.${'1'.repeat(64)}.0f0e0d0c-0000-4000-8000-000000000000.tmp`);
    const freshTmp = path.join(dir, `.${'2'.repeat(64)}.0f0e0d0c-0000-4000-8000-000000000001.tmp`);
    await writeFile(staleTmp, 'x');
    await writeFile(freshTmp, 'x');
    await utimes(staleTmp, new Date(2000, 0, 1), new Date(2000, 0, 1));

    const deleted = await store.prune(src, 2, a0.key);
    assert.deepEqual(deleted.sort(), [a1.key, a2.key].sort());
    for (const s of [a0, a3, a4]) assert.equal(await store.verify(src, s.checksum), true, s.key);
    for (const s of [a1, a2]) assert.equal(await store.verify(src, s.checksum), false, s.key);
    assert.equal(existsSync(staleTmp), false);
    assert.equal(existsSync(freshTmp), true);

    // `current` may be given as a checksum too; keep 0 leaves only it.
    assert.deepEqual((await store.prune(src, 0, a3.checksum)).sort(), [a0.key, a4.key].sort());
    assert.equal(await store.verify(src, a3.checksum), true);
    assert.deepEqual(await store.prune(src, 0, a3.key), []);

    // Nothing stored yet: nothing to do.
    assert.deepEqual(await store.prune({ namespace: 'nope', name: 'nothing' }, 3, ''), []);
    await assert.rejects(store.prune(src, 1, `other/source/${'a'.repeat(64)}.tar.gz`), InvalidSpecError);
  });

  it('moves in files from another filesystem by copying', async (t) => {
    const shm = '/dev/shm';
    if (!existsSync(shm) || statSync(shm).dev === statSync(tmp).dev) {
      t.skip('no second filesystem (/dev/shm) to copy from');
      return;
    }
    const dir = await mkdtemp(path.join(shm, 'arena-store-test-'));
    try {
      const { store } = await newStore();
      const f = await makeFile(randomBytes(200_000), dir);
      const stored = await store.put(src, f.file, f.checksum);
      assert.deepEqual(await readFile(path.join(store.root, stored.key)), f.bytes);
      assert.equal(existsSync(f.file), false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reports a full disk as StorageFailedError and leaves earlier artifacts intact', async () => {
    const { store } = await newStore();
    const earlier = await makeFile('earlier artifact');
    await store.put(src, earlier.file, earlier.checksum);
    const f = await makeFile(randomBytes(300_000));

    // Force the copy path (as across filesystems) and make its writes fail.
    const fsp = require('node:fs/promises');
    const fs = require('node:fs');
    const real = { rename: fsp.rename, write: fs.write, writev: fs.writev };
    const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    fsp.rename = async (from: string, to: string) => {
      if (from === f.file) throw Object.assign(new Error('EXDEV: cross-device link not permitted'), { code: 'EXDEV' });
      return real.rename(from, to);
    };
    fs.write = (...args: any[]) => process.nextTick(args[args.length - 1], enospc());
    fs.writev = (...args: any[]) => process.nextTick(args[args.length - 1], enospc());
    syncBuiltinESMExports();
    try {
      await assert.rejects(store.put(src, f.file, f.checksum), (err: unknown) => {
        assert.ok(err instanceof StorageFailedError, String(err));
        assert.equal(err.retryable, true);
        assert.match(err.message, /no space left on device/);
        assert.match(err.message, /out of space; earlier artifacts are intact/);
        return true;
      });
    } finally {
      Object.assign(fsp, { rename: real.rename });
      Object.assign(fs, { write: real.write, writev: real.writev });
      syncBuiltinESMExports();
    }

    assert.equal(await store.verify(src, earlier.checksum), true);
    assert.equal(await store.verify(src, f.checksum), false);
    assert.deepEqual(await readdir(path.join(store.root, 'team-a', 'support-bot')), [`${earlier.checksum.slice(7)}.tar.gz`]);
    assert.equal(existsSync(f.file), true, 'the caller can retry with the same file');

    // Once the disk has room again, the same put succeeds.
    await store.put(src, f.file, f.checksum);
    assert.equal(await store.verify(src, f.checksum), true);
  });

  it('keeps other directories under the root out of reach', async () => {
    const { store, root } = await newStore();
    await mkdir(path.join(root, 'ns', 'name'), { recursive: true });
    const outside = path.join(root, '..', 'secret.tar.gz');
    await writeFile(outside, 'secret');
    assert.equal(await store.stat(`ns/name/../../../secret.tar.gz`), null);
    assert.equal(await store.open(`../secret.tar.gz`), null);
  });
});
