/**
 * Retention (src/store/retention.ts) on the filesystem store, with mtimes set
 * by hand, and the pruneArtifacts activity's time bound. The same policy over
 * S3 is tested in test/integration/s3-store.test.ts.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { retentionActivities } from '../../activities/retention.js';
import { StorageFailedError } from '../../src/errors.js';
import { artifactKey, type ArtifactStore, type SourceKey } from '../../src/store/artifact-store.js';
import { FilesystemArtifactStore } from '../../src/store/fs-store.js';
import { applyRetention, DEFAULT_RETENTION, parseTtl } from '../../src/store/retention.js';

const HOUR = 3_600_000;
const src: SourceKey = { namespace: 'team-a', name: 'bot' };

describe('retention', () => {
  let tmp: string;
  let n = 0;
  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'arena-retention-'));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  /** A store with `ages.length` artifacts, published ages[i] ms before `now` (oldest first in, any order). */
  async function storeWith(agesMs: number[], now: number): Promise<{ store: FilesystemArtifactStore; sums: string[] }> {
    const store = new FilesystemArtifactStore(join(tmp, `store-${++n}`));
    const sums: string[] = [];
    for (const age of agesMs) {
      const bytes = randomBytes(64);
      const file = join(tmp, `f-${++n}`);
      await writeFile(file, bytes);
      const checksum = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
      await store.put(src, file, checksum);
      const t = new Date(now - age);
      await utimes(join(store.root, artifactKey(src, checksum)), t, t);
      sums.push(checksum);
    }
    return { store, sums };
  }
  const keys = (sums: string[]) => sums.map((c) => artifactKey(src, c)).sort();
  const remaining = async (store: ArtifactStore) => (await store.list(src)).map((a) => a.key).sort();

  it('defaults to keep 2 and a 1 h TTL', () => {
    assert.deepEqual(DEFAULT_RETENTION, { keep: 2, ttlMs: HOUR });
  });

  it('keeps the newest N; an older artifact goes only once it has been superseded for the TTL', async () => {
    const now = Date.now();
    // Published 5 h, 3 h, 30 min, 10 min and 1 min ago (a0 oldest).
    const { store, sums } = await storeWith([5 * HOUR, 3 * HOUR, 30 * 60_000, 10 * 60_000, 60_000], now);
    const [a0, a1, a2, a3, a4] = sums as [string, string, string, string, string];
    const r = await applyRetention(store, src, a4, { keep: 2, ttlMs: HOUR }, new Date(now));
    // a2 was superseded by a3 10 min ago, a1 by a2 30 min ago: both wait. a0 by a1 3 h ago: gone.
    assert.deepEqual(r.deleted, [artifactKey(src, a0)]);
    assert.deepEqual(r.deferred.sort(), keys([a1, a2]));
    assert.equal(r.nextDueAt, new Date(now - 30 * 60_000 + HOUR).toISOString(), 'a1 is due 1 h after a2 was published');
    assert.deepEqual(await remaining(store), keys([a1, a2, a3, a4]));

    // 2 h later everything beyond keep has run out.
    const later = await applyRetention(store, src, a4, { keep: 2, ttlMs: HOUR }, new Date(now + 2 * HOUR));
    assert.deepEqual(later.deleted.sort(), keys([a1, a2]));
    assert.deepEqual(later.deferred, []);
    assert.equal(later.nextDueAt, undefined);
    assert.deepEqual(await remaining(store), keys([a3, a4]));
  });

  it('never deletes the current artifact, even the oldest one with keep 0 and no TTL', async () => {
    const now = Date.now();
    const { store, sums } = await storeWith([4 * HOUR, 3 * HOUR, 2 * HOUR], now);
    const [a0, a1, a2] = sums as [string, string, string];
    const r = await applyRetention(store, src, a0, { keep: 0, ttlMs: 0 }, new Date(now));
    // The newest (a2) has not been superseded by anything, so even TTL 0 keeps it.
    assert.deepEqual(r.deleted, [artifactKey(src, a1)]);
    assert.deepEqual(await remaining(store), keys([a0, a2]));
    // The current one given as a key works the same.
    const r2 = await applyRetention(store, src, artifactKey(src, a0), { keep: 0, ttlMs: 0 }, new Date(now));
    assert.deepEqual(r2.deleted, []);
  });

  it('a TTL protects an artifact that was current for long and replaced just now', async () => {
    const now = Date.now();
    // a0 published a week ago, replaced by a1 one minute ago; keep 1.
    const { store, sums } = await storeWith([7 * 24 * HOUR, 60_000], now);
    const [a0, a1] = sums as [string, string];
    const r = await applyRetention(store, src, a1, { keep: 1, ttlMs: HOUR }, new Date(now));
    assert.deepEqual(r.deleted, []);
    assert.deepEqual(r.deferred, [artifactKey(src, a0)]);
    const r2 = await applyRetention(store, src, a1, { keep: 1, ttlMs: HOUR }, new Date(now + HOUR));
    assert.deepEqual(r2.deleted, [artifactKey(src, a0)]);
  });

  it('does nothing for a source with no artifacts or fewer than N', async () => {
    const empty = new FilesystemArtifactStore(join(tmp, 'empty'));
    assert.deepEqual(await applyRetention(empty, src, ''), { deleted: [], deferred: [] });
    const { store, sums } = await storeWith([HOUR, 0], Date.now());
    assert.deepEqual((await applyRetention(store, src, '', { keep: 2, ttlMs: 0 })).deleted, []);
    assert.deepEqual(await remaining(store), keys(sums));
  });

  it('refuses a current artifact of another source', async () => {
    const { store } = await storeWith([0], Date.now());
    await assert.rejects(applyRetention(store, src, `other/bot/${'a'.repeat(64)}.tar.gz`), /not an artifact key or checksum/);
  });

  it('parses TTLs as Go durations', () => {
    assert.equal(parseTtl('1h'), HOUR);
    assert.equal(parseTtl('1h30m'), 1.5 * HOUR);
    assert.equal(parseTtl('90s'), 90_000);
    assert.equal(parseTtl('0s'), 0);
    assert.throws(() => parseTtl('1 hour'));
  });

  describe('pruneArtifacts activity', () => {
    it('applies the policy and reports what it did', async () => {
      const now = Date.now();
      const { store, sums } = await storeWith([3 * HOUR, 2 * HOUR, HOUR + 60_000, 60_000], now);
      const { pruneArtifacts } = retentionActivities({ store, retention: { keep: 1, ttlMs: HOUR } });
      const r = await pruneArtifacts({ source: src, current: sums[3]! });
      // a2 superseded by a3 a minute ago: waits; a0, a1 superseded over an hour ago: gone.
      assert.deepEqual(r.deleted.sort(), keys([sums[0]!, sums[1]!]));
      assert.equal(r.deferred, 1);
      assert.ok(r.nextDueAt);
    });

    it('gives up after its time bound with a retryable StorageFailed', async () => {
      const stuck = {
        list: () => new Promise(() => {}),
        prune: async () => [],
      } as unknown as ArtifactStore;
      const { pruneArtifacts } = retentionActivities({ store: stuck, retentionTimeoutMs: 100 });
      const t0 = Date.now();
      await assert.rejects(pruneArtifacts({ source: src, current: '' }), (err: unknown) => {
        assert.ok(err instanceof StorageFailedError);
        assert.equal(err.retryable, true);
        assert.match(err.message, /took longer than 100 ms/);
        return true;
      });
      assert.ok(Date.now() - t0 < 2_000);
    });
  });
});
