/**
 * ContentVolume on a real filesystem: what a reader of HEAD can see while
 * versions are published (checked by a separate reader process), staging
 * leftovers, retention, symlinks planted on the volume, removal.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { packDirectory } from '../../src/bundle/pack.js';
import { ContentVolume } from '../../src/content/content-volume.js';
import type { ContentLocation } from '../../src/content/layout.js';
import { InvalidTargetPathError, StorageFailedError } from '../../src/errors.js';

const LIMITS = { maxFiles: 10_000, maxBytes: 100 * 1024 * 1024 };
const loc: ContentLocation = { workspace: 'ws', namespace: 'ns', targetPath: 'arena/src' };

/**
 * Reads HEAD and then every file its version's MANIFEST names, checking sizes
 * and hashes, until told to stop; prints what it saw. A separate process, as a
 * job on another node would be.
 */
const READER = `
import { readFileSync, existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
const [arena, stopFile] = process.argv.slice(1);
let reads = 0, problems = [];
while (!existsSync(stopFile)) {
  let head;
  try { head = readFileSync(arena + '/HEAD', 'utf8'); } catch { continue; }
  if (!/^[0-9a-f]{12}$/.test(head)) { problems.push('HEAD reads ' + JSON.stringify(head)); continue; }
  const dir = arena + '/versions/' + head;
  try {
    const manifest = readFileSync(dir + '/MANIFEST', 'utf8').trim().split('\\n');
    for (const line of manifest) {
      const [sha, file] = line.split(' ');
      const got = createHash('sha256').update(readFileSync(dir + '/' + file)).digest('hex');
      if (got !== sha) problems.push(head + ': ' + file + ' is partial');
    }
    reads++;
  } catch (err) {
    // A version pruned between reading HEAD and its files is a reader that was too slow for the TTL, not a partial write.
    if (existsSync(dir)) problems.push(head + ': ' + err.message);
  }
}
process.stdout.write(JSON.stringify({ reads, problems: problems.slice(0, 10) }));
`;

describe('ContentVolume', () => {
  let dir: string;
  let n = 0;

  /** A packed bundle of `files` files whose content depends on `seed`, with a MANIFEST of their hashes. */
  async function archive(seed: string, files = 50): Promise<{ path: string; checksum: string }> {
    const src = join(dir, `src-${++n}`);
    const manifest: string[] = [];
    for (let i = 0; i < files; i++) {
      const body = `${seed}:${i}:`.repeat(200 + i);
      const file = `prompts/p${i}.yaml`;
      await mkdir(join(src, 'prompts'), { recursive: true });
      await writeFile(join(src, file), body);
      manifest.push(`${createHash('sha256').update(body).digest('hex')} ${file}`);
    }
    await writeFile(join(src, 'MANIFEST'), `${manifest.join('\n')}\n`);
    const path = join(dir, `bundle-${n}.tar.gz`);
    const packed = await packDirectory(src, path, LIMITS);
    return { path, checksum: packed.checksum };
  }

  async function publish(volume: ContentVolume, a: { path: string; checksum: string }, history = true) {
    return volume.commit(await volume.stage(loc, a.path, a.checksum, LIMITS, history));
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arena-content-unit-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a reader of HEAD never sees a missing or partial file while 50 versions are published', async () => {
    const volume = new ContentVolume(join(dir, 'volume-reader'), { keep: 3, ttlMs: 2_000 });
    const arena = join(volume.root, 'ws/ns/arena/src/.arena');
    const stopFile = join(dir, 'stop-reader');
    await publish(volume, await archive('v0'));
    const reader = spawn(process.execPath, ['--input-type=module', '-e', READER, arena, stopFile], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    reader.stdout.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => reader.once('exit', r));
    for (let i = 1; i <= 50; i++) await publish(volume, await archive(`v${i}`));
    await writeFile(stopFile, '');
    assert.equal(await exited, 0);
    const seen = JSON.parse(out) as { reads: number; problems: string[] };
    assert.deepEqual(seen.problems, []);
    assert.ok(seen.reads > 0, 'the reader read whole versions');
  });

  it('reuses an existing version (only HEAD moves) and writes HEAD without a newline', async () => {
    const volume = new ContentVolume(join(dir, 'volume-reuse'));
    const a = await archive('same');
    const b = await archive('other');
    const first = await publish(volume, a);
    assert.equal(first.created, true);
    assert.equal(first.contentPath, `arena/src/.arena/versions/${first.version}`);
    await publish(volume, b);
    const again = await publish(volume, a);
    assert.deepEqual({ created: again.created, version: again.version, count: again.versionCount }, { created: false, version: first.version, count: 2 });
    assert.equal(await readFile(join(volume.root, 'ws/ns/arena/src/.arena/HEAD'), 'utf8'), first.version);
  });

  it('an interrupted publish leaves nothing visible; the next one clears its staging', async () => {
    const volume = new ContentVolume(join(dir, 'volume-crash'));
    const good = await publish(volume, await archive('good'));
    const next = await archive('next');
    const staged = await volume.stage(loc, next.path, next.checksum, LIMITS);
    // "Killed" here: staged but never committed.
    const arena = join(volume.root, 'ws/ns/arena/src/.arena');
    assert.deepEqual(await readdir(join(arena, 'versions')), [good.version]);
    assert.equal(await readFile(join(arena, 'HEAD'), 'utf8'), good.version);
    assert.equal((await readdir(join(arena, 'staging'))).length, 1);
    const later = await publish(volume, await archive('later'));
    assert.deepEqual(await readdir(join(arena, 'staging')).catch(() => []), []);
    assert.notEqual(later.version, staged.version);
  });

  it('two attempts for one source (a heartbeat timed out, the first still runs): nothing partial is ever published', async () => {
    const volume = new ContentVolume(join(dir, 'volume-race'));
    const a = await archive('race-a', 200);
    const arena = join(volume.root, 'ws/ns/arena/src/.arena');
    const first = await volume.stage(loc, a.path, a.checksum, LIMITS);
    const second = await volume.stage(loc, a.path, a.checksum, LIMITS); // clears the first one's staging
    await assert.rejects(volume.commit(first), /a staged version changed while it was written/);
    assert.deepEqual(await readdir(join(arena, 'versions')), []);
    const published = await volume.commit(second);
    const files = await readdir(join(arena, 'versions', published.version, 'prompts'));
    assert.equal(files.length, 200, 'the published version is whole');
  });

  it('a staged tree that lost a file is refused, not published', async () => {
    const volume = new ContentVolume(join(dir, 'volume-tampered'));
    const a = await archive('tampered', 20);
    const staged = await volume.stage(loc, a.path, a.checksum, LIMITS);
    await rm(join(staged.stagingDir!, 'prompts', 'p3.yaml'));
    await assert.rejects(volume.commit(staged), StorageFailedError);
    assert.deepEqual(await readdir(join(volume.root, 'ws/ns/arena/src/.arena/versions')), []);
  });

  it('retention keeps the newest `keep`, HEAD, and versions replaced less than the TTL ago', async () => {
    const volume = new ContentVolume(join(dir, 'volume-retention'), { keep: 2, ttlMs: 60_000 });
    const published = [];
    for (let i = 0; i < 4; i++) published.push(await publish(volume, await archive(`r${i}`)));
    // All replaced within the last minute: none is old enough to go.
    assert.equal(published[3]!.versionCount, 4);
    assert.ok(published[3]!.nextDueAt, 'a later prune is due');
    // Make the first two "became HEAD" an hour ago; the third was replaced (by the fourth) just now.
    const arena = join(volume.root, 'ws/ns/arena/src/.arena/versions');
    const hourAgo = new Date(Date.now() - 3_600_000);
    for (const p of published.slice(0, 2)) await utimes(join(arena, p.version), hourAgo, hourAgo);
    await utimes(join(arena, published[2]!.version), new Date(Date.now() - 1_800_000), new Date(Date.now() - 1_800_000));
    const pruned = await volume.prune(loc);
    // Kept: r3 (HEAD) and r2 (newest two); r1 was replaced by r2 30 min ago: past the TTL, so it goes; r0 too.
    assert.deepEqual((await readdir(arena)).sort(), [published[2]!.version, published[3]!.version].sort());
    assert.equal(pruned.versionCount, 2);
  });

  it('without history (createVersionOnSync: false) only HEAD remains once the TTL is over', async () => {
    const volume = new ContentVolume(join(dir, 'volume-latest'), { keep: 10, ttlMs: 0 });
    for (let i = 0; i < 3; i++) {
      const p = await publish(volume, await archive(`l${i}`), false);
      assert.equal(p.versionCount, 1);
    }
  });

  it('refuses a symlink planted in the content path instead of writing through it', async () => {
    const volume = new ContentVolume(join(dir, 'volume-symlink'));
    const elsewhere = join(dir, 'elsewhere');
    await mkdir(elsewhere, { recursive: true });
    await mkdir(join(volume.root, 'ws/ns'), { recursive: true });
    await symlink(elsewhere, join(volume.root, 'ws/ns/arena'));
    const a = await archive('sym');
    await assert.rejects(volume.stage(loc, a.path, a.checksum, LIMITS), (err: unknown) => {
      assert.ok(err instanceof InvalidTargetPathError);
      assert.match((err as Error).message, /ws\/ns\/arena" on the content volume is a symlink/);
      return true;
    });
    assert.deepEqual(await readdir(elsewhere), []);
  });

  it('remove deletes versions, HEAD and the emptied target directories, not the namespace directory', async () => {
    const volume = new ContentVolume(join(dir, 'volume-remove'));
    await publish(volume, await archive('gone'));
    await writeFile(join(volume.root, 'ws/ns/keep.txt'), 'not ours');
    await volume.remove(loc);
    await assert.rejects(stat(join(volume.root, 'ws/ns/arena')));
    assert.deepEqual(await readdir(join(volume.root, 'ws/ns')), ['keep.txt']);
    await volume.remove(loc); // idempotent
  });
});
