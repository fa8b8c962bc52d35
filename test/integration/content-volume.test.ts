/**
 * Omnia's content volume, from a consumer's side: an Arena job reads
 * {root}/{workspace}/{namespace}/{status.artifact.contentPath}/config.arena.yaml and every file it
 * references. Real Temporal, a real git server, a real OCI registry, the
 * worker's own content volume (a directory, as a mounted PVC is).
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ArenaSource } from '../../src/api/schema.js';
import { findCondition } from '../../src/api/status.js';
import { deleteSource } from '../../src/client.js';
import { bareRepoPath, commitFiles, seedRepo } from '../../src/dev/demo-git/repo.js';
import { pushBundle } from '../../src/oci/push.js';
import { ARENA_PROJECT_FIXTURE, readArenaProject } from '../helpers/arena-project.js';
import { startTestEnv, type TestEnv } from '../helpers/env.js';
import { requireRegistryTools, startRegistry, type TestRegistry } from '../helpers/registry.js';

/** The fixture's files, for committing to git or copying into a workspace. */
async function projectFiles(dir = ARENA_PROJECT_FIXTURE, prefix = ''): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) Object.assign(out, await projectFiles(join(dir, entry.name), rel));
    else out[rel] = await readFile(join(dir, entry.name), 'utf8');
  }
  return out;
}

const under = (prefix: string, files: Record<string, string>) =>
  Object.fromEntries(Object.entries(files).map(([k, v]) => [`${prefix}/${k}`, v]));

describe('the workspace content volume (Omnia ArenaJobs)', () => {
  let env: TestEnv;
  let registry: TestRegistry;
  let project: Record<string, string>;
  let root: string;
  const ready = (s: ArenaSource) => s.status?.phase === 'Ready';
  /** Where a consumer finds the source's current content: the directory status names. */
  const WORKSPACE = 'team-a';
  const contentDir = (s: ArenaSource) => join(root, WORKSPACE, env.namespace, s.status!.artifact!.contentPath!);
  const head = (targetPath: string) => readFile(join(root, WORKSPACE, env.namespace, targetPath, '.arena', 'HEAD'), 'utf8');
  const versions = (targetPath: string) => readdir(join(root, WORKSPACE, env.namespace, targetPath, '.arena', 'versions')).then((v) => v.sort());

  before(async () => {
    await requireRegistryTools();
    registry = await startRegistry();
    env = await startTestEnv('content', { retention: { keep: 2, ttlMs: 0 }, contentKeep: 3 });
    root = env.stack.content.root;
    // The namespace's label names the workspace directory (a namespace without it uses its own name: e2e/cli).
    await env.stack.resources.putNamespace({ name: env.namespace, labels: { 'omnia.altairalabs.ai/workspace': WORKSPACE } });
    project = await projectFiles();
    await seedRepo(env.gitRoot, 'prompts', { ...under('packs/support', project), 'README.md': 'outside the bundle\n' });
  });
  after(async () => {
    await env?.close();
    await registry?.close();
  });

  it('git: a job reads config.arena.yaml and every file it references from status.artifact.contentPath', async () => {
    await env.apply('support', { type: 'git', interval: '1h', git: { url: env.git.repoUrl('prompts'), ref: { branch: 'main' }, path: 'packs/support' } });
    const s = await env.waitFor('support', 'Ready', ready);
    const artifact = s.status!.artifact!;
    assert.equal(artifact.version, artifact.checksum!.slice('sha256:'.length, 'sha256:'.length + 12));
    assert.equal(artifact.contentPath, `arena/support/.arena/versions/${artifact.version}`);
    assert.deepEqual(
      { head: s.status!.headVersion, count: s.status!.versionCount, rev: s.status!.lastSyncRevision, created: s.status!.lastVersionCreated },
      { head: artifact.version, count: 1, rev: artifact.revision, created: artifact.version },
    );
    assert.equal(await head('arena/support'), artifact.version, 'HEAD holds the version, no newline');
    const read = await readArenaProject(contentDir(s));
    assert.deepEqual(Object.keys(read.files).sort(), Object.keys(project).filter((f) => f !== 'config.arena.yaml' && f !== 'README.md').sort());
    for (const [file, text] of Object.entries(read.files)) assert.equal(text, project[file], file);
    // Only the bundle path: the repository's README is not in the version.
    await assert.rejects(stat(join(contentDir(s), '..', '..', '..', 'README.md')));
    assert.equal(findCondition(s.status!.conditions, 'SourceValid')!.status, 'True');
  });

  it('a push moves HEAD to a new version; a commit outside `path` creates none', async () => {
    const before = await env.get('support');
    const v1 = before.status!.artifact!.version!;
    await commitFiles(bareRepoPath(env.gitRoot, 'prompts'), { 'README.md': 'still outside\n' }, { branch: 'main', message: 'docs' });
    await env.stack.client.workflow.getHandle(`arena-source/${env.namespace}/support`).signal('reconcile');
    const outside = await env.waitFor('support', 'the docs commit synced', (s) => ready(s) && s.status!.artifact!.revision !== before.status!.artifact!.revision);
    assert.equal(outside.status!.artifact!.version, v1, 'same content, same version');
    assert.equal(outside.status!.versionCount, 1);
    assert.equal(outside.status!.lastVersionCreated, v1);
    assert.deepEqual(await versions('arena/support'), [v1]);

    const edited = project['prompts/greeter.yaml']!.replace(/system_template: .*/, 'system_template: "Hello again, {{name}}."');
    assert.notEqual(edited, project['prompts/greeter.yaml'], 'the fixture has a system_template line to edit');
    await commitFiles(bareRepoPath(env.gitRoot, 'prompts'), { 'packs/support/prompts/greeter.yaml': edited }, { branch: 'main', message: 'edit' });
    await env.stack.client.workflow.getHandle(`arena-source/${env.namespace}/support`).signal('reconcile');
    const s = await env.waitFor('support', 'a new version', (x) => ready(x) && x.status!.artifact!.version !== v1);
    const v2 = s.status!.artifact!.version!;
    assert.equal(await head('arena/support'), v2);
    assert.equal(s.status!.lastVersionCreated, v2);
    assert.equal(s.status!.versionCount, 2);
    assert.equal(await readFile(join(contentDir(s), 'prompts/greeter.yaml'), 'utf8'), edited);
    // The previous version is still there for a job that read HEAD before it moved.
    assert.equal(await readFile(join(root, WORKSPACE, env.namespace, 'arena/support/.arena/versions', v1, 'prompts/greeter.yaml'), 'utf8'), project['prompts/greeter.yaml']);
  });

  it('OCI: the same project pushed as an artifact lands under its targetPath', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'arena-content-oci-'));
    try {
      for (const [file, text] of Object.entries(project)) {
        await mkdir(join(dir, file, '..'), { recursive: true });
        await writeFile(join(dir, file), text);
      }
      await pushBundle(dir, registry.url('acme/support', 'v1'), { insecure: true });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    await env.apply('from-oci', { type: 'oci', interval: '1h', targetPath: 'arena/projects/oci', oci: { url: registry.url('acme/support', 'v1'), insecure: true } });
    const s = await env.waitFor('from-oci', 'Ready', ready);
    assert.match(s.status!.artifact!.contentPath!, /^arena\/projects\/oci\/\.arena\/versions\/[0-9a-f]{12}$/);
    const read = await readArenaProject(contentDir(s));
    assert.equal(Object.keys(read.files).length, Object.keys(project).length - 2);
  });

  it('workspace: a directory of the volume is snapshotted; unchanged is a no-op; an edit is a new version', async () => {
    const src = join(root, WORKSPACE, env.namespace, 'arena/projects/edited');
    for (const [file, text] of Object.entries(project)) {
      await mkdir(join(src, file, '..'), { recursive: true });
      await writeFile(join(src, file), text);
    }
    await env.apply('snap', { type: 'workspace', interval: '1s', workspace: { path: 'arena/projects/edited' }, targetPath: 'arena/deployed/edited' });
    const s = await env.waitFor('snap', 'Ready', ready);
    assert.match(s.status!.artifact!.revision, /^sha256:[0-9a-f]{64}$/);
    await readArenaProject(contentDir(s));
    const fetched = (await env.counters('snap')).fetches;
    await new Promise((r) => setTimeout(r, 3_000)); // a few 1 s intervals
    const counters = await env.counters('snap');
    assert.ok(counters.noops >= 1, `unchanged directory: no-op cycles (${JSON.stringify(counters)})`);
    assert.equal(counters.fetches, fetched, 'nothing fetched again');
    // The source directory is only read.
    assert.equal(await readFile(join(src, 'config.arena.yaml'), 'utf8'), project['config.arena.yaml']);

    await writeFile(join(src, 'prompts/greeter.yaml'), `${project['prompts/greeter.yaml']}\n# edited in the dashboard\n`);
    const edited = await env.waitFor('snap', 'the edit synced', (x) => ready(x) && x.status!.artifact!.revision !== s.status!.artifact!.revision, 30_000);
    assert.notEqual(edited.status!.artifact!.version, s.status!.artifact!.version);
    assert.match(await readFile(join(contentDir(edited), 'prompts/greeter.yaml'), 'utf8'), /edited in the dashboard/);
  });

  it('workspace: a symlink out of the directory is UnsafeContent, and the last version stays served', async () => {
    const src = join(root, WORKSPACE, env.namespace, 'arena/projects/edited');
    await symlink('/etc/passwd', join(src, 'prompts', 'leak.yaml'));
    try {
      const s = await env.waitFor('snap', 'Error', (x) => x.status?.phase === 'Error', 30_000);
      const readyCond = findCondition(s.status!.conditions, 'Ready')!;
      assert.equal(readyCond.reason, 'UnsafeContent');
      assert.match(readyCond.message, /leak\.yaml/);
      await readArenaProject(contentDir(s)); // still the previous version
    } finally {
      await rm(join(src, 'prompts', 'leak.yaml'));
    }
  });

  it("the namespace's omnia.altairalabs.ai/workspace label decides the workspace directory", async () => {
    await env.apply('labelled', { type: 'git', interval: '1h', git: { url: env.git.repoUrl('prompts'), path: 'packs/support' } });
    const s = await env.waitFor('labelled', 'Ready', ready);
    await readArenaProject(contentDir(s));
    assert.equal(await head('arena/labelled'), s.status!.artifact!.version);
    assert.deepEqual(await readdir(root), [WORKSPACE], 'nothing under a namespace-named workspace');
  });

  it('a targetPath that climbs out is Error with SourceValid=False InvalidTargetPath, not retried', async () => {
    // Past the edge validation (as a CR admitted by Omnia's looser CRD would be): the workflow still refuses it.
    const { applySource } = await import('../../src/client.js');
    await applySource(env.stack.client, env.taskQueue, {
      apiVersion: 'omnia.altairalabs.ai/v1alpha1',
      kind: 'ArenaSource',
      metadata: { name: 'escape', namespace: env.namespace },
      spec: { type: 'git', interval: '1s', targetPath: '../../other-team/x', git: { url: env.git.repoUrl('prompts') } },
    });
    const s = await env.waitFor('escape', 'Error', (x) => x.status?.phase === 'Error');
    const valid = findCondition(s.status!.conditions, 'SourceValid')!;
    assert.deepEqual({ status: valid.status, reason: valid.reason }, { status: 'False', reason: 'InvalidTargetPath' });
    assert.match(valid.message, /spec\.targetPath: must not contain "\.\."/);
    await new Promise((r) => setTimeout(r, 2_500));
    assert.equal((await env.counters('escape')).cycles, 0, 'stalled: no cycle runs until the spec changes');
    await assert.rejects(stat(join(root, 'other-team')));
  });

  it('createVersionOnSync: false keeps only the current version', async () => {
    await env.apply('latest-only', { type: 'configmap', interval: '1h', createVersionOnSync: false, configMap: { name: 'latest-only' } });
    const seen = new Set<string>();
    for (let i = 1; i <= 3; i++) {
      await env.stack.resources.putConfigMap({ namespace: env.namespace, name: 'latest-only', data: { 'pack.json': JSON.stringify({ id: 'p', v: i }) }, binaryData: {} });
      await env.stack.client.workflow.getHandle(`arena-source/${env.namespace}/latest-only`).signal('reconcile');
      const s = await env.waitFor('latest-only', `version ${i}`, (x) => ready(x) && !seen.has(x.status!.artifact!.version!) && x.status!.artifact!.revision.length > 0);
      seen.add(s.status!.artifact!.version!);
      assert.equal(s.status!.versionCount, 1, 'only HEAD is kept (the retention TTL here is 0)');
      assert.deepEqual(await versions('arena/latest-only'), [s.status!.artifact!.version!]);
    }
  });

  it('retention keeps the newest --content-keep versions and always HEAD', async () => {
    const s0 = await env.get('support');
    for (let i = 0; i < 4; i++) {
      await commitFiles(bareRepoPath(env.gitRoot, 'prompts'), { [`packs/support/prompts/extra-${i}.yaml`]: `n: ${i}\n` }, { branch: 'main', message: `extra ${i}` });
      const prev = (await env.get('support')).status!.artifact!.version;
      await env.stack.client.workflow.getHandle(`arena-source/${env.namespace}/support`).signal('reconcile');
      await env.waitFor('support', `extra ${i}`, (x) => ready(x) && x.status!.artifact!.version !== prev);
    }
    const s = await env.get('support');
    const kept = await versions('arena/support');
    assert.equal(kept.length, 3, `contentKeep 3 (TTL 0): ${kept.join(', ')}`);
    assert.ok(kept.includes(s.status!.headVersion!), 'HEAD is kept');
    assert.ok(!kept.includes(s0.status!.artifact!.version!), 'the oldest went');
    assert.equal(s.status!.versionCount, 3);
  });

  it('deleting the source removes its versions and HEAD', async () => {
    const s = await env.get('support');
    assert.ok(s.status?.artifact?.contentPath);
    assert.equal(await deleteSource(env.stack.client, { namespace: env.namespace, name: 'support' }), true);
    await assert.rejects(stat(join(root, WORKSPACE, env.namespace, 'arena/support')), 'the target directory is gone');
    // Other sources' content is untouched.
    await stat(join(root, WORKSPACE, env.namespace, 'arena/projects/oci/.arena/HEAD'));
  });
});
