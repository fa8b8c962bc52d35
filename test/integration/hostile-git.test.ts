/**
 * Hostile or oversized git content: a clear error in status, the last good artifact
 * kept, nothing written outside the store, and no re-download of the same rejected
 * revision every interval.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { findCondition } from '../../src/api/status.js';
import { bareRepoPath, commitFiles, git, seedRepo } from '../../src/dev/demo-git/repo.js';
import { startTestEnv, type TestEnv } from '../helpers/env.js';
import { waitFor } from '../helpers/wait.js';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Commits a symlink (which the helpers' file map cannot express) with the real git CLI. */
async function commitSymlink(bare: string, linkPath: string, target: string): Promise<string> {
  const work = await mkdtemp(join(tmpdir(), 'symlink-'));
  try {
    await git(['clone', '--quiet', bare, work]);
    await symlink(target, join(work, linkPath));
    await writeFile(join(work, 'marker'), String(Date.now()));
    await git(['add', '-A'], { cwd: work });
    await git(['commit', '--quiet', '-m', 'add symlink'], { cwd: work });
    await git(['push', '--quiet', 'origin', 'HEAD:main'], { cwd: work });
    return (await git(['rev-parse', 'HEAD'], { cwd: work })).stdout.trim();
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

describe('hostile git content', () => {
  let env: TestEnv;
  before(async () => {
    env = await startTestEnv('hostile', { packLimits: { maxBytes: 200_000, maxFiles: 50 } });
  });
  after(async () => env?.close());

  for (const [label, target] of [['absolute', '/etc/passwd'], ['relative', '../../../../etc/passwd']] as const) {
    it(`a symlink escaping the bundle (${label}) is UnsafeContent; the last artifact stays; the revision is not re-fetched`, async () => {
      const name = `link-${label}`;
      await seedRepo(env.gitRoot, name, { 'pack.json': '{"v":1}' });
      await env.apply(name, { type: 'git', interval: '1s', git: { url: env.git.repoUrl(name) } });
      const ready = await env.waitFor(name, 'Ready', (s) => s.status?.phase === 'Ready');
      const bad = await commitSymlink(bareRepoPath(env.gitRoot, name), 'evil', target);
      const failed = await env.waitFor(name, 'Error', (s) => s.status?.phase === 'Error', 30_000);
      const cond = findCondition(failed.status!.conditions, 'Ready')!;
      assert.equal(cond.reason, 'UnsafeContent');
      assert.match(cond.message, /evil/);
      assert.deepEqual(failed.status!.artifact, ready.status!.artifact);
      assert.equal((await env.download(ready.status!.artifact!.url)).status, 200);
      // Later cycles see the same rejected revision: they ask the remote, but do not download it again.
      const fetches = env.git.stats(name).fetches;
      const c0 = await env.counters(name);
      await waitFor('two more cycles', () => env.counters(name), (c) => c.cycles >= c0.cycles + 2, 20_000);
      assert.equal(env.git.stats(name).fetches, fetches, `revision ${bad} was downloaded again`);
      assert.match(findCondition((await env.get(name)).status!.conditions, 'Ready')!.message, /was rejected; waiting for a new revision/);
      // A fixed revision recovers by itself.
      const fixed = await commitFiles(bareRepoPath(env.gitRoot, name), { 'pack.json': '{"v":2}' }, { branch: 'main', message: 'fix', remove: ['evil'] });
      await env.waitFor(name, 'Ready again', (s) => s.status?.artifact?.revision === `main@sha1:${fixed}`, 30_000);
    });
  }

  it('a repository over the size limit is ArtifactTooLarge with the limit in the message', async () => {
    await seedRepo(env.gitRoot, 'huge', { 'pack.json': '{}', 'big.txt': 'x'.repeat(300_000) });
    await env.apply('huge', { type: 'git', interval: '1h', git: { url: env.git.repoUrl('huge') } });
    const failed = await env.waitFor('huge', 'Error', (s) => s.status?.phase === 'Error');
    const cond = findCondition(failed.status!.conditions, 'Ready')!;
    assert.equal(cond.reason, 'ArtifactTooLarge');
    assert.match(cond.message, /200000|195\.3 KiB|limit/);
  });

  it('too many files is ArtifactTooLarge', async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 80; i++) files[`f${i}.txt`] = String(i);
    await seedRepo(env.gitRoot, 'many', files);
    await env.apply('many', { type: 'git', interval: '1h', git: { url: env.git.repoUrl('many') } });
    const failed = await env.waitFor('many', 'Error', (s) => s.status?.phase === 'Error');
    assert.equal(findCondition(failed.status!.conditions, 'Ready')!.reason, 'ArtifactTooLarge');
  });

  it('a path that does not exist in the revision is a clear error, retried on the next interval (not stalled)', async () => {
    await seedRepo(env.gitRoot, 'nopath', { 'pack.json': '{}' });
    await env.apply('nopath', { type: 'git', interval: '1h', git: { url: env.git.repoUrl('nopath'), path: 'missing/dir' } });
    const failed = await env.waitFor('nopath', 'Error', (s) => s.status?.phase === 'Error');
    const cond = findCondition(failed.status!.conditions, 'Ready')!;
    assert.equal(cond.reason, 'FetchFailed');
    assert.match(cond.message, /the bundle path "missing\/dir" does not exist in this revision/);
    assert.ok(failed.status!.nextFetchTime, 'a later commit may add the directory: the source keeps polling');
  });
});
