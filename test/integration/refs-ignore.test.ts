/**
 * Issue 14 items 1-2 through the whole stack (Temporal, worker, store) against a
 * real git smart-HTTP server and a real registry: semver ranges over tags (git and
 * OCI, with semverFilter), a pull-request ref by name, and ignore rules
 * (spec.ignore, .sourceignore) that shape the archive — and leave its digest
 * alone when a commit only touches excluded files.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ArenaSource } from '../../src/api/schema.js';
import { listArchive } from '../../src/bundle/pack.js';
import { bareRepoPath, commitFiles, git, seedRepo } from '../../src/dev/demo-git/repo.js';
import { pushBundle } from '../../src/oci/push.js';
import { startTestEnv, type TestEnv } from '../helpers/env.js';
import { requireRegistryTools, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { waitFor } from '../helpers/wait.js';

describe('refs by semver and name, ignore rules', () => {
  let env: TestEnv;
  let registry: TestRegistry;
  let work: string;
  let n = 0;

  before(async () => {
    await requireRegistryTools();
    registry = await startRegistry();
    work = await mkdtemp(join(tmpdir(), 'arena-refs-ignore-'));
    env = await startTestEnv('refs-ignore');
  });
  after(async () => {
    await env?.close();
    await registry?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** The file paths of a source's stored artifact. */
  async function filesOf(src: ArenaSource): Promise<string[]> {
    const dl = await env.download(src.status!.artifact!.url);
    const file = join(work, `a${++n}.tar.gz`);
    await writeFile(file, dl.body);
    return (await listArchive(file)).filter((e) => e.type === 'file').map((e) => e.path).sort();
  }
  const revisionIs = (name: string, revision: string) => env.waitFor(name, revision, (s) => s.status?.artifact?.revision === revision);

  it('git semver: the highest matching tag wins, a newly pushed one is followed, a no-op cycle is one ls-refs', async () => {
    const repo = bareRepoPath(env.gitRoot, 'versions');
    await seedRepo(env.gitRoot, 'versions', { 'pack.json': '{"v":"1.0.0"}' }, { tag: 'v1.0.0' });
    const v11 = await commitFiles(repo, { 'pack.json': '{"v":"1.1.0"}' }, { branch: 'main', message: '1.1', tag: 'v1.1.0', annotatedTag: true });
    await commitFiles(repo, { 'pack.json': '{"v":"2.0.0"}' }, { branch: 'main', message: '2.0', tag: 'v2.0.0' });
    await commitFiles(repo, { 'pack.json': '{"v":"1.2.0-rc.1"}' }, { branch: 'main', message: 'rc', tag: 'v1.2.0-rc.1' });

    await env.apply('semver', { type: 'git', interval: '1s', git: { url: env.git.repoUrl('versions'), ref: { semver: '>=1.0.0 <2.0.0' } } });
    const first = await revisionIs('semver', `v1.1.0@sha1:${v11}`);
    assert.equal(first.status!.phase, 'Ready');

    const c0 = await env.counters('semver');
    env.git.resetStats();
    await waitFor('two no-op cycles', () => env.counters('semver'), (c) => c.noops >= c0.noops + 2, 30_000);
    const stats = env.git.stats('versions');
    const c1 = await env.counters('semver');
    assert.equal(stats.fetches, 0, 'no fetch on a no-op cycle');
    // Counted by completed no-op cycles: `cycles` moves when a cycle starts, so a cycle in flight when c0
    // was read may have listed the tags before resetStats; one more may be in flight at the end.
    const noops = c1.noops - c0.noops;
    assert.ok(stats.lsRefs >= 1 && stats.lsRefs <= noops + 1, `one tag listing per cycle (${stats.lsRefs} for ${noops} no-op cycles)`);

    const v12 = await commitFiles(repo, { 'pack.json': '{"v":"1.2.0"}' }, { branch: 'main', message: '1.2', tag: 'v1.2.0', annotatedTag: true });
    const moved = await revisionIs('semver', `v1.2.0@sha1:${v12}`);
    assert.notEqual(moved.status!.artifact!.checksum, first.status!.artifact!.checksum);
  });

  it('git ref.name: a pull-request ref (refs/pull/42/head) pushed to the server', async () => {
    const repo = bareRepoPath(env.gitRoot, 'pulls');
    await seedRepo(env.gitRoot, 'pulls', { 'support/pack.json': '{"id":"main"}' });
    const head = await commitFiles(repo, { 'support/pack.json': '{"id":"pr-42"}', 'support/new.md': 'N' }, { branch: 'pr-42', message: 'PR 42' });
    // As a forge stores a pull request: a ref outside refs/heads, pushed over HTTP, and no branch.
    await git(['push', '--quiet', env.git.repoUrl('pulls'), `${head}:refs/pull/42/head`, ':refs/heads/pr-42'], { cwd: repo });

    await env.apply('pull', { type: 'git', git: { url: env.git.repoUrl('pulls'), ref: { name: 'refs/pull/42/head' }, path: 'support' } });
    const src = await revisionIs('pull', `refs/pull/42/head@sha1:${head}`);
    assert.deepEqual(await filesOf(src), ['new.md', 'pack.json']);
  });

  it('git ignore rules: spec.ignore and .sourceignore (also above the path) shape the archive; excluded-only commits keep its digest', async () => {
    const repo = bareRepoPath(env.gitRoot, 'ignored');
    await seedRepo(env.gitRoot, 'ignored', {
      '.sourceignore': '*.tmp\n',
      'support/.sourceignore': '/scratch/\n',
      'support/.gitattributes': '* text=auto\n',
      'support/pack.json': '{"id":"support"}',
      'support/prompts/a.md': 'A',
      'support/drafts/wip.md': 'W',
      'support/notes.tmp': 'T',
      'support/scratch/x.json': '{}',
      'other/pack.json': '{}',
    });
    await env.apply('ignored', { type: 'git', interval: '1s', git: { url: env.git.repoUrl('ignored'), ref: { branch: 'main' }, path: 'support' }, ignore: 'drafts/\n' });
    const first = await env.waitFor('ignored', 'Ready', (s) => s.status?.phase === 'Ready');
    assert.deepEqual(await filesOf(first), ['.sourceignore', 'pack.json', 'prompts/a.md']);

    // Only excluded files change: the revision moves (a new commit, as Flux reports it), the artifact stays.
    const excludedOnly = await commitFiles(repo, { 'support/drafts/more.md': 'M', 'support/new.tmp': 'N', 'support/scratch/y.json': '{}' }, { branch: 'main', message: 'excluded only' });
    const second = await revisionIs('ignored', `main@sha1:${excludedOnly}`);
    const [a, b] = [first.status!.artifact!, second.status!.artifact!];
    assert.equal(b.checksum, a.checksum);
    assert.equal(b.url, a.url);
    assert.equal(b.lastUpdateTime, a.lastUpdateTime, 'consumers see no new artifact');

    // Changing the rules changes the archive.
    const ruleChange = await commitFiles(repo, { 'support/.sourceignore': '/scratch/\nprompts/\n' }, { branch: 'main', message: 'rules' });
    const third = await revisionIs('ignored', `main@sha1:${ruleChange}`);
    assert.notEqual(third.status!.artifact!.checksum, a.checksum);
    assert.deepEqual(await filesOf(third), ['.sourceignore', 'pack.json']);
  });

  it('OCI semver over the repository tags (and semverFilter): highest match, follows a new tag, a no-op cycle is one tag listing', async () => {
    const push = async (tag: string, files: Record<string, string>) => {
      const dir = join(work, `b${++n}`);
      for (const [name, content] of Object.entries(files)) {
        await mkdir(join(dir, name, '..'), { recursive: true });
        await writeFile(join(dir, name), content);
      }
      return pushBundle(dir, registry.url('arena/semver', tag), { insecure: true });
    };
    await push('1.0.0', { 'pack.json': '{"v":"1.0.0"}' });
    const p11 = await push('1.1.0', { 'pack.json': '{"v":"1.1.0"}', 'drafts/x.md': 'X' });
    const rc = await push('1.2.0-rc.1', { 'pack.json': '{"v":"1.2.0-rc.1"}' });
    await push('2.0.0', { 'pack.json': '{"v":"2.0.0"}' });
    await push('latest', { 'pack.json': '{"v":"latest"}' });
    const url = `oci://${registry.host}/arena/semver`;

    await env.apply('oci-semver', { type: 'oci', interval: '1s', oci: { url, insecure: true, ref: { semver: '>=1.0.0, <2.0.0' } }, ignore: 'drafts/' });
    const first = await revisionIs('oci-semver', `1.1.0@${p11.digest}`);
    assert.deepEqual(await filesOf(first), ['pack.json'], 'spec.ignore applies to OCI content too');

    const tagLists = () => registry.requests().filter((r) => r.method === 'GET' && r.path.startsWith('/v2/arena/semver/tags/list')).length;
    const heads = () => registry.requests().filter((r) => r.method === 'HEAD' && r.path.startsWith('/v2/arena/semver/manifests/')).length;
    const c0 = await env.counters('oci-semver');
    const [lists0, heads0] = [tagLists(), heads()];
    await waitFor('two no-op cycles', () => env.counters('oci-semver'), (c) => c.noops >= c0.noops + 2, 30_000);
    assert.equal(heads(), heads0, 'an unchanged tag is not resolved again');
    assert.ok(tagLists() >= lists0 + 2, 'each cycle lists the tags');

    const p13 = await push('1.3.0', { 'pack.json': '{"v":"1.3.0"}' });
    const at13 = await revisionIs('oci-semver', `1.3.0@${p13.digest}`);

    // A re-pushed version tag is not looked up while the stored artifact is intact (one listing per
    // cycle); when that artifact must be rebuilt anyway, the tag is resolved again instead of trusted.
    const repushed = await push('1.3.0', { 'pack.json': '{"v":"1.3.0","again":true}' });
    assert.notEqual(repushed.digest, p13.digest);
    await rm(join(env.stack.store.root, new URL(at13.status!.artifact!.url).pathname.replace(/^\//, '')));
    await revisionIs('oci-semver', `1.3.0@${repushed.digest}`);

    await env.apply('oci-rc', { type: 'oci', oci: { url, insecure: true, ref: { semver: '>=1.0.0-0', semverFilter: '.*-rc.*' } } });
    await revisionIs('oci-rc', `1.2.0-rc.1@${rc.digest}`);
  });

  it('ConfigMap: spec.ignore is matched against the key; excluding the only file is InvalidSpec', async () => {
    await env.stack.resources.putConfigMap({ namespace: env.namespace, name: 'cm-pack', data: { 'pack.json': '{"id":"cm"}' }, binaryData: {} });
    await env.apply('cm-kept', { type: 'configmap', configMap: { name: 'cm-pack' }, ignore: '*.yaml' });
    assert.deepEqual(await filesOf(await env.waitFor('cm-kept', 'Ready', (s) => s.status?.phase === 'Ready')), ['pack.json']);
    await env.apply('cm-excluded', { type: 'configmap', configMap: { name: 'cm-pack' }, ignore: '*.json' });
    const src = await env.waitFor('cm-excluded', 'Error', (s) => s.status?.phase === 'Error');
    const ready = src.status!.conditions!.find((c) => c.type === 'Ready')!;
    assert.equal(ready.reason, 'InvalidSpec');
    assert.match(ready.message, /spec\.ignore excludes the ConfigMap key 'pack\.json'/);
  });

  it('reports a range no tag matches, and waits for one', async () => {
    await seedRepo(env.gitRoot, 'untagged', { 'pack.json': '{}' }, { tag: 'v0.1.0' });
    await env.apply('no-match', { type: 'git', git: { url: env.git.repoUrl('untagged'), ref: { semver: '^1' } } });
    const src = await env.waitFor('no-match', 'Error', (s) => s.status?.phase === 'Error');
    const ready = src.status!.conditions!.find((c) => c.type === 'Ready')!;
    assert.match(ready.message, /no tag matching semver range '\^1' in .*untagged.* \(1 tags listed\)/);
  });
});
