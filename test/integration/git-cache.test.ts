/**
 * The worker's git cache (src/sources/git/cache.ts) and the partial, sparse
 * fetch (src/sources/git/fetch.ts) against a real git smart-HTTP server: what they
 * write is exactly what a full checkout has under the path; sources on one
 * repository share fetches; credentials are never shared; concurrent checkouts
 * are safe; the cache stays bounded. Fetches are counted by the server.
 */
import assert from 'node:assert/strict';
import { chmod, lstat, mkdtemp, readdir, readFile, readlink, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { packDirectory } from '../../src/bundle/pack.js';
import { GitHttpServer } from '../../src/dev/demo-git/git-http-server.js';
import { bareRepoPath, commitFiles, git, seedRepo } from '../../src/dev/demo-git/repo.js';
import { AuthenticationFailedError } from '../../src/errors.js';
import { GitCache, gitCacheFor } from '../../src/sources/git/cache.js';
import { prepareGitAuth } from '../../src/sources/git/auth.js';
import { bundleDirOf, fetchGitRef, fetchTargetOf, type GitOptions } from '../../src/sources/git/index.js';
import type { GitSource } from '../../src/api/schema.js';

const FILES = {
  '.gitattributes': '*.txt text eol=crlf\n',
  'README.md': '# repo\n',
  'big/blob.bin': 'x'.repeat(200_000),
  'prompts/support/pack.json': '{"id":"support"}',
  'prompts/support/system.txt': 'line one\nline two\n',
  'prompts/support/run.sh': '#!/bin/sh\necho hi\n',
  'prompts/sales/pack.json': '{"id":"sales"}',
  'prompts/weird [dir]*/pack.json': '{"id":"weird"}',
};

describe('git cache and partial fetch', () => {
  let dir: string;
  let server: GitHttpServer;
  let url: string;
  let sha: string;
  const opts: GitOptions = { timeoutMs: 30_000 };
  const spec = (path: string, ref: GitSource['ref'] = { branch: 'main' }): GitSource => ({ url, ref, path });
  let n = 0;
  const out = () => join(dir, 'out', `c${n++}`);

  /** sha256 of the reproducible archive of a bundle directory. */
  const checksum = async (bundle: string) => (await packDirectory(bundle, join(dir, `a${n++}.tar.gz`))).checksum;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'git-cache-'));
    const root = join(dir, 'git');
    sha = await seedRepo(root, 'repo', FILES);
    // An executable and a symlink inside the bundle.
    const work = join(dir, 'work');
    await git(['clone', '--quiet', bareRepoPath(root, 'repo'), work]);
    await chmod(join(work, 'prompts/support/run.sh'), 0o755);
    await symlink('system.txt', join(work, 'prompts/support/link.txt'));
    await git(['add', '-A'], { cwd: work });
    await git(['commit', '--quiet', '-m', 'exec and link'], { cwd: work });
    await git(['push', '--quiet', 'origin', 'HEAD:refs/heads/main'], { cwd: work });
    sha = (await git(['rev-parse', 'HEAD'], { cwd: work })).stdout.trim();
    server = await GitHttpServer.start({ root });
    url = server.repoUrl('repo');
  });
  after(async () => {
    await server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('a partial, sparse fetch writes exactly what a full checkout has under the path', async () => {
    const full = await fetchGitRef(spec(''), fetchTargetOf(spec(''))!, out(), opts);
    const partial = await fetchGitRef(spec('prompts/support'), fetchTargetOf(spec('prompts/support'))!, out(), opts, { path: 'prompts/support' });
    assert.equal(partial.revision, `main@sha1:${sha}`);
    assert.equal(partial.sha, full.sha);
    const a = bundleDirOf(full.dir, 'prompts/support');
    const b = bundleDirOf(partial.dir, 'prompts/support');
    assert.equal(await checksum(b), await checksum(a));
    assert.equal(await readFile(join(b, 'system.txt'), 'utf8'), 'line one\r\nline two\r\n', 'the root .gitattributes applies');
    assert.ok(((await lstat(join(b, 'run.sh'))).mode & 0o111) !== 0, 'executable kept');
    assert.equal(await readlink(join(b, 'link.txt')), 'system.txt');
    await assert.rejects(lstat(join(partial.dir, 'big/blob.bin')), 'nothing outside the path is written');
  });

  it('paths with wildcard characters are matched literally', async () => {
    const path = 'prompts/weird [dir]*';
    const c = await fetchGitRef(spec(path), fetchTargetOf(spec(path))!, out(), opts, { path });
    assert.equal(await readFile(join(bundleDirOf(c.dir, path), 'pack.json'), 'utf8'), '{"id":"weird"}');
    await assert.rejects(lstat(join(c.dir, 'prompts/sales')));
  });

  it('the cache: one fetch per commit for every source of the repository, the same bytes as without it', async () => {
    const cache = new GitCache({ root: join(dir, 'cache-a') });
    server.resetStats();
    const commit = sha;
    const target = fetchTargetOf(spec('prompts/support'))!;
    const first = await cache.checkout({ git: spec('prompts/support'), target, commit, credentials: '', dir: out(), path: 'prompts/support', options: opts });
    assert.equal(first.fetched, true);
    const fetchesAfterFirst = server.stats('repo').fetches;
    assert.equal(fetchesAfterFirst, 2, 'the commit and its trees, then the blobs of the path');
    const second = await cache.checkout({ git: spec('prompts/support'), target, commit, credentials: '', dir: out(), path: 'prompts/support', options: opts });
    assert.equal(second.fetched, false);
    assert.equal(second.blobsFetched, 0);
    assert.equal(server.stats('repo').fetches, fetchesAfterFirst, 'same commit and path: no request at all');
    const other = await cache.checkout({ git: spec('prompts/sales'), target, commit, credentials: '', dir: out(), path: 'prompts/sales', options: opts });
    assert.equal(other.fetched, false);
    assert.equal(server.stats('repo').fetches, fetchesAfterFirst + 1, 'another path: only its blobs');
    assert.equal(await checksum(bundleDirOf(second.dir, 'prompts/support')), await checksum(bundleDirOf(first.dir, 'prompts/support')));
    const plain = await fetchGitRef(spec('prompts/support'), target, out(), opts, { path: 'prompts/support', partial: false });
    assert.equal(await checksum(bundleDirOf(first.dir, 'prompts/support')), await checksum(bundleDirOf(plain.dir, 'prompts/support')));
    assert.equal(await readFile(join(bundleDirOf(first.dir, 'prompts/support'), 'system.txt'), 'utf8'), 'line one\r\nline two\r\n');

    // A new commit: one incremental fetch brings it with its changed blobs.
    const next = await commitFiles(bareRepoPath(join(dir, 'git'), 'repo'), { 'prompts/support/pack.json': '{"id":"support","v":2}' }, { branch: 'main', message: 'v2' });
    server.resetStats();
    const moved = await cache.checkout({ git: spec('prompts/support'), target, commit: next, credentials: '', dir: out(), path: 'prompts/support', options: opts });
    assert.equal(moved.revision, `main@sha1:${next}`);
    assert.equal(server.stats('repo').fetches, 1);
    assert.equal(await readFile(join(bundleDirOf(moved.dir, 'prompts/support'), 'pack.json'), 'utf8'), '{"id":"support","v":2}');
    sha = next;
  });

  it('asks for the commit resolveRevision saw by id: no ref listing, and a branch that moved since still gives it', async () => {
    const seen = sha;
    const moved = await commitFiles(bareRepoPath(join(dir, 'git'), 'repo'), { 'prompts/support/pack.json': '{"id":"support","v":3}' }, { branch: 'main', message: 'v3' });
    const target = fetchTargetOf(spec('prompts/support'))!;
    server.resetStats();
    const cached = await new GitCache({ root: join(dir, 'cache-by-id') }).checkout({
      git: spec('prompts/support'), target, commit: seen, credentials: '', dir: out(), path: 'prompts/support', options: opts,
    });
    const plain = await fetchGitRef(spec('prompts/support'), target, out(), opts, { path: 'prompts/support', commit: seen });
    for (const c of [cached, plain]) {
      assert.equal(c.revision, `main@sha1:${seen}`);
      assert.equal(await readFile(join(bundleDirOf(c.dir, 'prompts/support'), 'pack.json'), 'utf8'), '{"id":"support","v":2}');
    }
    assert.equal(server.stats('repo').lsRefs, 0, 'protocol v2: a fetch by id lists no refs');
    sha = moved;
  });

  it('a protocol v0 server that refuses commits by id: the branch by name, a pinned commit through every branch, the same content', async () => {
    const bare = bareRepoPath(join(dir, 'git'), 'repo');
    await git(['config', 'uploadpack.allowReachableSHA1InWant', 'false'], { cwd: bare });
    const old = await GitHttpServer.start({ root: join(dir, 'git'), protocolV0Only: true });
    try {
      const v0 = (path: string): GitSource => ({ url: old.repoUrl('repo'), ref: { branch: 'main' }, path });
      const target = fetchTargetOf(v0('prompts/support'))!;
      const input = { git: v0('prompts/support'), target, commit: sha, credentials: '', path: 'prompts/support', options: opts };
      const cache = new GitCache({ root: join(dir, 'cache-v0') });
      const first = await cache.checkout({ ...input, dir: out() });
      const plain = await fetchGitRef(v0('prompts/support'), target, out(), opts, { path: 'prompts/support', commit: sha });
      const reference = await fetchGitRef(spec('prompts/support'), target, out(), opts, { path: 'prompts/support', partial: false });
      for (const c of [first, plain]) {
        assert.equal(c.revision, `main@sha1:${sha}`);
        assert.equal(await checksum(bundleDirOf(c.dir, 'prompts/support')), await checksum(bundleDirOf(reference.dir, 'prompts/support')));
      }
      // A pinned commit below the tip (not advertised, so refused by id): every branch, then that commit.
      const parent = (await git(['rev-parse', `${sha}~1`], { cwd: bare })).stdout.trim();
      const pinnedSpec: GitSource = { url: old.repoUrl('repo'), ref: { commit: parent }, path: 'prompts/support' };
      const pinnedTarget = fetchTargetOf(pinnedSpec)!;
      const pinnedReference = await fetchGitRef({ ...pinnedSpec, url }, pinnedTarget, out(), opts, { path: 'prompts/support', partial: false });
      const pinnedCached = await new GitCache({ root: join(dir, 'cache-v0-pinned') }).checkout({ ...input, git: pinnedSpec, target: pinnedTarget, commit: parent, dir: out() });
      const pinnedPlain = await fetchGitRef(pinnedSpec, pinnedTarget, out(), opts, { path: 'prompts/support' });
      for (const c of [pinnedCached, pinnedPlain]) {
        assert.equal(c.sha, parent);
        assert.equal(await checksum(bundleDirOf(c.dir, 'prompts/support')), await checksum(bundleDirOf(pinnedReference.dir, 'prompts/support')));
      }
      assert.equal(old.stats('repo').lsRefs, 0, 'no protocol v2 spoken');
    } finally {
      await old.close();
      await git(['config', 'uploadpack.allowReachableSHA1InWant', 'true'], { cwd: bare });
    }
  });

  it('concurrent checkouts of one repository fetch once and all get the same bytes', async () => {
    const cache = new GitCache({ root: join(dir, 'cache-b') });
    server.resetStats();
    const target = fetchTargetOf(spec('prompts/support'))!;
    const results = await Promise.all(
      Array.from({ length: 8 }, () =>
        cache.checkout({ git: spec('prompts/support'), target, commit: sha, credentials: '', dir: out(), path: 'prompts/support', options: opts }),
      ),
    );
    assert.equal(results.filter((r) => r.fetched).length, 1);
    assert.equal(server.stats('repo').fetches, 2);
    const sums = new Set(await Promise.all(results.map((r) => checksum(bundleDirOf(r.dir, 'prompts/support')))));
    assert.equal(sums.size, 1);
  });

  it('sources wanting one folder at one commit share one checkout: hard links, no .git, pruning one leaves the others whole', async () => {
    const cache = new GitCache({ root: join(dir, 'cache-e') });
    const target = fetchTargetOf(spec('prompts/support'))!;
    const take = (extra: Partial<Parameters<GitCache['checkout']>[0]> = {}) =>
      cache.checkout({ git: spec('prompts/support'), target, commit: sha, credentials: '', dir: out(), path: 'prompts/support', options: opts, ...extra });
    const results = await Promise.all(Array.from({ length: 6 }, () => take()));
    assert.equal(cache.stats().exports, 1, 'one shared export for six checkouts');
    const plain = await fetchGitRef(spec('prompts/support'), target, out(), opts, { path: 'prompts/support', partial: false });
    const expected = await checksum(bundleDirOf(plain.dir, 'prompts/support'));
    for (const r of results) {
      assert.equal(r.sha, sha);
      assert.equal(await checksum(bundleDirOf(r.dir, 'prompts/support')), expected, 'the same bytes as a full checkout');
      await assert.rejects(lstat(join(r.dir, '.git')), 'a linked checkout is not a repository');
    }
    const a = bundleDirOf(results[0]!.dir, 'prompts/support');
    assert.ok((await lstat(join(a, 'pack.json'))).nlink > 1, 'files are hard links, not copies');
    assert.equal(await readlink(join(a, 'link.txt')), 'system.txt', 'symlinks stay symlinks');
    assert.ok(((await lstat(join(a, 'run.sh'))).mode & 0o111) !== 0, 'executable kept');
    // What pruneIgnored and discarding do to one source's tree never reaches another's.
    await rm(join(a, 'system.txt'));
    await rm(results[1]!.dir, { recursive: true });
    const later = await take();
    assert.equal(await checksum(bundleDirOf(later.dir, 'prompts/support')), expected);
    assert.equal(await readFile(join(bundleDirOf(results[2]!.dir, 'prompts/support'), 'system.txt'), 'utf8'), 'line one\r\nline two\r\n');
    // spec.git.verify needs a repository of its own.
    const own = await take({ ownRepository: true });
    assert.ok((await lstat(join(own.dir, '.git'))).isDirectory());
    assert.equal(await checksum(bundleDirOf(own.dir, 'prompts/support')), expected);
  });

  it('shared exports stay bounded: the least recently used beyond the limit go once nobody links from them', async () => {
    const cache = new GitCache({ root: join(dir, 'cache-f'), maxExportsPerMirror: 2 });
    const paths = ['prompts/support', 'prompts/sales', 'prompts/weird [dir]*', 'prompts'];
    for (const path of paths) {
      const c = await cache.checkout({ git: spec(path), target: fetchTargetOf(spec(path))!, commit: sha, credentials: '', dir: out(), path, options: opts });
      assert.equal(await checksum(bundleDirOf(c.dir, path)), await checksum(bundleDirOf((await fetchGitRef(spec(path), fetchTargetOf(spec(path))!, out(), opts, { path })).dir, path)));
    }
    assert.equal(cache.stats().exports, 2);
    const mirrors = (await readdir(join(dir, 'cache-f'))).filter((n) => n.endsWith('.git'));
    assert.equal(mirrors.length, 1);
    // Removal runs in the background; give it a moment.
    for (let i = 0; i < 50 && (await readdir(join(dir, 'cache-f', mirrors[0]!, 'arena-exports'))).length > 2; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal((await readdir(join(dir, 'cache-f', mirrors[0]!, 'arena-exports'))).length, 2, 'the evicted exports are gone from disk');
  });

  it('a mirror is rebuilt after maxFetchesPerMirror fetches, and the whole tree works too', async () => {
    const cache = new GitCache({ root: join(dir, 'cache-c'), maxFetchesPerMirror: 1 });
    const target = fetchTargetOf(spec(''))!;
    server.resetStats();
    const a = await cache.checkout({ git: spec(''), target, credentials: '', dir: out(), path: '', options: opts });
    assert.equal(server.stats('repo').fetches, 1, 'the whole tree: commit, trees and blobs in one request');
    const b = await cache.checkout({ git: spec(''), target, credentials: '', dir: out(), path: '', options: opts });
    assert.equal(b.fetched, true);
    assert.equal(cache.stats().fetches, 1, 'the second fetch went into a new mirror');
    assert.equal(await checksum(b.dir), await checksum(a.dir));
    assert.equal((await readFile(join(a.dir, 'big/blob.bin'))).length, 200_000);
  });

  it('a server that refuses filters still gives the right content', async () => {
    const bare = bareRepoPath(join(dir, 'git'), 'repo');
    await git(['config', 'uploadpack.allowFilter', 'false'], { cwd: bare });
    try {
      const cache = new GitCache({ root: join(dir, 'cache-d') });
      const target = fetchTargetOf(spec('prompts/support'))!;
      const c = await cache.checkout({ git: spec('prompts/support'), target, credentials: '', dir: out(), path: 'prompts/support', options: opts });
      const p = await fetchGitRef(spec('prompts/support'), target, out(), opts, { path: 'prompts/support' });
      assert.equal(await checksum(bundleDirOf(c.dir, 'prompts/support')), await checksum(bundleDirOf(p.dir, 'prompts/support')));
    } finally {
      await git(['config', 'uploadpack.allowFilter', 'true'], { cwd: bare });
    }
  });

  it('ARENA_SOURCE_GIT_CACHE=off turns it off', () => {
    const before = process.env.ARENA_SOURCE_GIT_CACHE;
    process.env.ARENA_SOURCE_GIT_CACHE = 'off';
    try {
      assert.equal(gitCacheFor(join(dir, 'x')), undefined);
    } finally {
      if (before === undefined) delete process.env.ARENA_SOURCE_GIT_CACHE;
      else process.env.ARENA_SOURCE_GIT_CACHE = before;
    }
    assert.ok(gitCacheFor(join(dir, 'x')) instanceof GitCache);
  });
});

describe('git cache and credentials', () => {
  let dir: string;
  let server: GitHttpServer;
  let sha: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'git-cache-auth-'));
    sha = await seedRepo(join(dir, 'git'), 'private', { 'pack/pack.json': '{"id":"private"}' });
    server = await GitHttpServer.start({ root: join(dir, 'git'), basicAuth: { username: 'reader', password: 'right' } });
  });
  after(async () => {
    await server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('a source with other (or no) credentials never gets what another fetched into the cache', async () => {
    const source: GitSource = { url: server.repoUrl('private'), ref: { branch: 'main' }, path: 'pack' };
    const secret = (password: string) => ({ namespace: 'ns', name: password, data: { username: Buffer.from('reader'), password: Buffer.from(password) } });
    const envOf = async (s: ReturnType<typeof secret> | undefined) => (await prepareGitAuth(source, s)).env;
    const cache = new GitCache({ root: join(dir, 'cache') });
    const target = fetchTargetOf(source)!;
    const commit = sha;
    const good = await cache.checkout({ git: source, target, commit, credentials: 'ns/right', dir: join(dir, 'o1'), path: 'pack', options: { timeoutMs: 20_000, env: await envOf(secret('right')) } });
    assert.equal(await readFile(join(good.dir, 'pack/pack.json'), 'utf8'), '{"id":"private"}');
    for (const [credentials, env] of [
      ['ns/wrong', await envOf(secret('wrong'))],
      ['', await envOf(undefined)],
    ] as const) {
      await assert.rejects(
        cache.checkout({ git: source, target, commit, credentials, dir: join(dir, `o-${credentials || 'none'}`), path: 'pack', options: { timeoutMs: 20_000, env } }),
        (err: unknown) => err instanceof AuthenticationFailedError,
      );
    }
    assert.equal(cache.stats().mirrors, 3, 'one mirror per credentials');
  });
});
