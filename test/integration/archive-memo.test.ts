/**
 * The archive memo (src/bundle/archive-memo.ts) through the activities that use it:
 * fetchSource, packBundle and uploadArtifact called in Temporal's activity test
 * environment against a real git smart-HTTP server, a real filesystem store. Sources
 * wanting one tree share one pack: the second fetch makes no checkout, its archive is
 * the same bytes as a pack of a fresh full clone, and nothing a source does to its
 * copy reaches the memo. Different ignore rules or commits are different trees;
 * validation answers the same with or without the memo.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bundleActivities } from '../../activities/bundle.js';
import { sourceActivities } from '../../activities/source.js';
import type { ArenaSourceSpec } from '../../src/api/schema.js';
import { bundleValidationOf } from '../../src/api/spec-rules.js';
import { ArchiveMemo, archiveMemoFor } from '../../src/bundle/archive-memo.js';
import { packDirectory } from '../../src/bundle/pack.js';
import { GitHttpServer } from '../../src/dev/demo-git/git-http-server.js';
import { bareRepoPath, commitFiles, git, seedRepo } from '../../src/dev/demo-git/repo.js';
import { InvalidBundleError } from '../../src/errors.js';
import { inActivity, localActivityDeps, type LocalActivityDeps } from '../helpers/activity-deps.js';
import { packJson, validPack } from '../helpers/promptpack.js';

const NS = 'team';
const FILES = {
  'README.md': '# repo\n',
  'packs/support/pack.json': packJson(validPack()),
  'packs/support/prompts/a.md': '# a\n',
  'packs/support/notes.tmp': 'scratch\n',
  'packs/broken/pack.json': packJson({ ...validPack(), version: 'one' }),
};

describe('archive memo: one pack per tree', () => {
  let dir: string;
  let server: GitHttpServer;
  let url: string;
  let deps: LocalActivityDeps;
  const spec = (path: string, extra: Partial<ArenaSourceSpec> = {}): ArenaSourceSpec => ({
    type: 'git',
    interval: '1h',
    timeout: '20s',
    git: { url, ref: { branch: 'main' }, path },
    ...extra,
  });
  const sha256 = async (file: string) => `sha256:${createHash('sha256').update(await readFile(file)).digest('hex')}`;

  /** One cycle's fetch and pack for source `name`; upload too unless `upload` is false. */
  async function cycle(name: string, s: ArenaSourceSpec, opts: { upload?: boolean; validation?: 'spec' | 'none' } = {}) {
    const source = { namespace: NS, name };
    const src = sourceActivities(deps);
    const bundle = bundleActivities(deps);
    const { revision, id } = await inActivity(() => src.resolveRevision({ source, spec: s }));
    const fetched = await inActivity(() => src.fetchSource({ source, spec: s, revision, ...(id ? { id } : {}) }));
    const checkedOut = await stat(fetched.bundleDir).then(
      () => true,
      () => false,
    );
    const validation = opts.validation === 'none' ? undefined : bundleValidationOf(s);
    const packed = await inActivity(() => bundle.packBundle({ workDir: fetched.workDir, bundleDir: fetched.bundleDir, ...(validation ? { validation } : {}) }));
    assert.equal(await sha256(packed.archivePath), packed.checksum, 'the archive is the bytes its checksum names');
    const uploaded =
      opts.upload === false
        ? undefined
        : await inActivity(() => bundle.uploadArtifact({ source, workDir: fetched.workDir, archivePath: packed.archivePath, checksum: packed.checksum }));
    return { fetched, packed, uploaded, checkedOut };
  }

  /** The checksum of a pack of `path` from a fresh full clone (no cache, no memo). */
  async function cloneChecksum(path: string, rmGlobs: string[] = []): Promise<string> {
    const work = await mkdtemp(join(dir, 'clone-'));
    await git(['clone', '--quiet', url, work]);
    for (const g of rmGlobs) await rm(join(work, path, g), { force: true });
    return (await packDirectory(join(work, path), join(work, '..', `${Date.now()}-${Math.random()}.tar.gz`))).checksum;
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'archive-memo-'));
    await seedRepo(join(dir, 'git'), 'repo', FILES);
    server = await GitHttpServer.start({ root: join(dir, 'git') });
    url = server.repoUrl('repo');
    deps = localActivityDeps(dir);
  });
  after(async () => {
    await server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('a second source on the same tree takes the first one’s archive: no checkout, the same bytes as a fresh clone’s pack', async () => {
    const memo = archiveMemoFor(deps.workRoot)!;
    const hits = memo.stats().hits;
    const first = await cycle('first', spec('packs/support'));
    assert.equal(first.checkedOut, true);
    const second = await cycle('second', spec('packs/support'));
    assert.equal(second.checkedOut, false, 'no checkout for the second source');
    assert.equal(memo.stats().hits, hits + 1);
    assert.equal(second.packed.checksum, first.packed.checksum);
    assert.equal(second.packed.checksum, await cloneChecksum('packs/support'));
    assert.deepEqual(second.packed.bundle, first.packed.bundle);
    assert.equal(second.packed.bundle?.valid, true);
    assert.equal(second.fetched.revision, first.fetched.revision);
    assert.equal(second.fetched.id, first.fetched.id);
    // Both stored, each under its own name, each the bytes of its checksum; the work directories are gone.
    for (const c of [first, second]) {
      const file = join(dir, 'artifacts', c.uploaded!.url.replace(/^http:\/\/127\.0\.0\.1:1\//, ''));
      assert.equal(await sha256(file), c.packed.checksum);
    }
    assert.deepEqual((await readdir(deps.workRoot)).filter((e) => e.startsWith(`${NS}.`)), []);
    // And a third after both uploads (the store moved their links away): still the same bytes.
    const third = await cycle('third', spec('packs/support'), { upload: false });
    assert.equal(third.checkedOut, false);
    assert.equal(third.packed.checksum, first.packed.checksum);
  });

  it('other ignore rules are another tree; a retried pack never rewrites the memo’s file', async () => {
    const ignoring = spec('packs/support', { ignore: '*.tmp\n' });
    const a = await cycle('ignoring-a', ignoring, { upload: false });
    assert.equal(a.checkedOut, true, 'spec.ignore differs from the first test’s sources: not the same tree');
    assert.equal(a.packed.checksum, await cloneChecksum('packs/support', ['notes.tmp']));
    assert.notEqual(a.packed.checksum, (await cycle('plain', spec('packs/support'), { upload: false })).packed.checksum);
    // A pack retried on the same work directory (its archive is now the memo's file, linked).
    const bundle = bundleActivities(deps);
    const again = await inActivity(() =>
      bundle.packBundle({ workDir: a.fetched.workDir, bundleDir: a.fetched.bundleDir, validation: bundleValidationOf(ignoring) }),
    );
    assert.equal(again.checksum, a.packed.checksum);
    const b = await cycle('ignoring-b', ignoring, { upload: false });
    assert.equal(b.checkedOut, false);
    assert.equal(await sha256(b.packed.archivePath), a.packed.checksum, 'the memo’s file is whole');
  });

  it('a new commit is a new tree', async () => {
    const before = await cycle('moving-1', spec('packs/support'), { upload: false });
    await commitFiles(bareRepoPath(join(dir, 'git'), 'repo'), { ...FILES, 'packs/support/prompts/b.md': '# b\n' }, { branch: 'main', message: 'b' });
    const after = await cycle('moving-2', spec('packs/support'), { upload: false });
    assert.equal(after.checkedOut, true);
    assert.notEqual(after.fetched.id, before.fetched.id);
    assert.notEqual(after.packed.checksum, before.packed.checksum);
    assert.equal(after.packed.checksum, await cloneChecksum('packs/support'));
    const later = await cycle('moving-3', spec('packs/support'), { upload: false });
    assert.equal(later.checkedOut, false);
    assert.equal(later.packed.checksum, after.packed.checksum);
  });

  it('validation answers the same from the memo: strict refuses an invalid tree every time; a run that asks for none gets none', async () => {
    const strict = spec('packs/broken', { validation: 'strict' });
    await assert.rejects(cycle('strict-1', strict), InvalidBundleError);
    const src = sourceActivities(deps);
    const source = { namespace: NS, name: 'strict-2' };
    const { revision, id } = await inActivity(() => src.resolveRevision({ source, spec: strict }));
    const fetched = await inActivity(() => src.fetchSource({ source, spec: strict, revision, ...(id ? { id } : {}) }));
    await assert.rejects(stat(fetched.bundleDir), 'memoized: no checkout');
    await assert.rejects(
      inActivity(() => bundleActivities(deps).packBundle({ workDir: fetched.workDir, bundleDir: fetched.bundleDir, validation: bundleValidationOf(strict) })),
      InvalidBundleError,
    );
    // The memo holds the support tree packed with validation; a run from before validation asks for none:
    // the tree comes back out of the archive and is packed without it, to the same bytes.
    const withValidation = await cycle('validated', spec('packs/support'), { upload: false });
    const unvalidated = await cycle('unvalidated', spec('packs/support'), { upload: false, validation: 'none' });
    assert.equal(unvalidated.checkedOut, false);
    assert.equal(unvalidated.packed.bundle, undefined);
    assert.equal(unvalidated.packed.checksum, withValidation.packed.checksum);
  });

  it('stays bounded: the least recently used entries beyond the limit go, and their files with them', async () => {
    const memoDir = join(dir, 'bounded-memo');
    const memo = new ArchiveMemo({ dir: memoDir, maxEntries: 2 });
    const archives: string[] = [];
    for (let i = 0; i < 3; i++) {
      const tree = await mkdtemp(join(dir, 'tree-'));
      await writeFile(join(tree, 'f.txt'), `file ${i}\n`);
      const archive = join(dir, `bounded-${i}.tar.gz`);
      const { checksum, size, files } = await packDirectory(tree, archive);
      await memo.remember(`k${i}`, archive, { checksum, size, files });
      archives.push(checksum);
    }
    assert.equal(memo.stats().entries, 2);
    assert.equal((await readdir(memoDir)).length, 2);
    assert.equal(await memo.take('k0', join(dir, 'taken-0.tar.gz')), undefined, 'the oldest went');
    const taken = await memo.take('k2', join(dir, 'taken-2.tar.gz'));
    assert.equal(taken?.checksum, archives[2]);
    assert.equal(await sha256(join(dir, 'taken-2.tar.gz')), archives[2]);
  });
});
