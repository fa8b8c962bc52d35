/**
 * spec.validation end to end: real Temporal dev server, real git over smart HTTP, real
 * worker, store and artifact server. warn publishes and reports; strict keeps the last
 * good artifact, does not fetch the refused revision again, and recovers on a fixed commit.
 */
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Worker } from '@temporalio/worker';
import { findCondition } from '../../src/api/status.js';
import { activityCalls } from '../../src/temporal/history-activities.js';
import { workflowBundle } from '../../src/worker.js';
import { bareRepoPath, commitFiles, seedRepo, type FileContents } from '../../src/dev/demo-git/repo.js';
import { ARENA_PROJECT_FIXTURE } from '../helpers/arena-project.js';
import { startTestEnv, type TestEnv } from '../helpers/env.js';
import { packJson, validPack } from '../helpers/promptpack.js';
import { waitFor } from '../helpers/wait.js';
import type { ArenaSource } from '../../src/api/schema.js';
import { runHistories, wholeHistory } from '../helpers/history.js';

/** The arena-project fixture as repository files. */
async function arenaProject(): Promise<FileContents> {
  const files: FileContents = {};
  for (const entry of await readdir(ARENA_PROJECT_FIXTURE, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const abs = join(entry.parentPath, entry.name);
    files[relative(ARENA_PROJECT_FIXTURE, abs)] = await readFile(abs);
  }
  return files;
}

const bundleValid = (s: ArenaSource) => findCondition(s.status?.conditions, 'BundleValid');
const BROKEN_PACK = packJson({ ...validPack(), version: 'one' });
const MISSING = 'scenarios/summarize-note.scenario.yaml';

describe('bundle validation', () => {
  let env: TestEnv;
  let project: FileContents;

  before(async () => {
    env = await startTestEnv('validation');
    project = await arenaProject();
  });
  after(async () => env?.close());

  it('warn (the default): an invalid bundle is published, and BundleValid=False names each file and path', async () => {
    const broken: FileContents = { ...project, 'pack.json': BROKEN_PACK };
    delete broken[MISSING];
    const sha = await seedRepo(env.gitRoot, 'warn', broken);
    await env.apply('warn', { type: 'git', git: { url: env.git.repoUrl('warn') } });
    const src = await env.waitFor('warn', 'Ready', (s) => s.status?.phase === 'Ready' && bundleValid(s) !== undefined);
    assert.equal(src.spec.validation, 'warn');
    assert.equal(src.status!.artifact!.revision, `main@sha1:${sha}`);
    assert.equal((await env.download(src.status!.artifact!.url)).status, 200);
    const cond = bundleValid(src)!;
    assert.equal(cond.status, 'False');
    assert.equal(cond.reason, 'InvalidBundle');
    assert.match(cond.message, /^2 problems: pack\.json \/version: must match the pattern /);
    assert.match(cond.message, new RegExp(`config\\.arena\\.yaml spec\\.scenarios\\[1\\]\\.file: "${MISSING.replace(/\./g, '\\.')}" is not in the bundle`));
    assert.equal(findCondition(src.status!.conditions, 'Ready')!.status, 'True');
  });

  it('strict: an invalid revision is not published, the last good one stays served and is not refetched; a fix recovers', async () => {
    const good = await seedRepo(env.gitRoot, 'strict', { ...project, 'pack.json': packJson(validPack()) });
    await env.apply('strict', { type: 'git', interval: '1s', validation: 'strict', git: { url: env.git.repoUrl('strict') } });
    const first = await env.waitFor('strict', 'Ready and valid', (s) => s.status?.phase === 'Ready' && bundleValid(s)?.status === 'True');
    assert.equal(first.status!.artifact!.revision, `main@sha1:${good}`);
    assert.match(bundleValid(first)!.message, /^checked pack\.json \(PromptPack schema v1\.4\.0\), config\.arena\.yaml \(5 referenced paths present\)$/);

    const bad = await commitFiles(bareRepoPath(env.gitRoot, 'strict'), { 'pack.json': BROKEN_PACK }, { branch: 'main', message: 'break the pack' });
    const refused = await env.waitFor('strict', 'Error InvalidBundle', (s) => s.status?.phase === 'Error');
    const ready = findCondition(refused.status!.conditions, 'Ready')!;
    assert.equal(ready.reason, 'InvalidBundle');
    assert.match(ready.message, /spec\.validation is strict, so it is not published .*pack\.json \/version: must match the pattern/);
    assert.match(ready.message, new RegExp(`still serving the last artifact \\(revision 'main@sha1:${good}'\\)`));
    assert.deepEqual(refused.status!.artifact, first.status!.artifact, 'the last good artifact is kept');
    assert.equal(bundleValid(refused)!.status, 'False');
    const served = await env.download(first.status!.artifact!.url);
    assert.equal(served.status, 200);
    assert.equal(served.sha256, first.status!.artifact!.checksum);

    // Later cycles see the same revision and refuse it without fetching it again.
    const rejected = await env.waitFor('strict', 'rejection remembered', (s) => /was rejected; waiting for a new revision/.test(findCondition(s.status?.conditions, 'Ready')?.message ?? ''));
    assert.match(findCondition(rejected.status!.conditions, 'Ready')!.message, new RegExp(`revision 'main@sha1:${bad}' was rejected`));
    const fetches = async () => {
      const history = await wholeHistory(env.stack.client, `arena-source/${env.namespace}/strict`);
      return activityCalls(history.events ?? []).filter((c) => c.type === 'fetchSource' || c.type === 'fetchSourceHere').length;
    };
    const baseline = { fetched: await fetches(), cycles: (await env.counters('strict')).cycles };
    await waitFor('two more cycles', () => env.counters('strict'), (c) => c.cycles >= baseline.cycles + 2, 20_000);
    assert.equal(await fetches(), baseline.fetched, 'the refused revision is not fetched again');

    const fixed = await commitFiles(bareRepoPath(env.gitRoot, 'strict'), { 'pack.json': packJson(validPack('support-fixed')) }, { branch: 'main', message: 'fix the pack' });
    const recovered = await env.waitFor('strict', 'Ready on the fix', (s) => s.status?.phase === 'Ready' && s.status.artifact?.revision === `main@sha1:${fixed}`);
    assert.equal(bundleValid(recovered)!.status, 'True');
    assert.notEqual(recovered.status!.artifact!.checksum, first.status!.artifact!.checksum);

    // The patched path (a refusal, remembered rejections, the recovery) replays deterministically.
    const bundle = await workflowBundle();
    for (const [i, history] of (await runHistories(env.stack.client, `arena-source/${env.namespace}/strict`)).entries()) {
      await Worker.runReplayHistory({ workflowBundle: bundle, replayName: `strict-validation run ${i + 1}` }, history);
    }
  });

  it('strict with nothing published yet: Error without an artifact; switching to warn publishes the refused revision', async () => {
    const sha = await seedRepo(env.gitRoot, 'switch', { 'pack.json': BROKEN_PACK });
    const spec = { type: 'git' as const, git: { url: env.git.repoUrl('switch') } };
    await env.apply('switch', { ...spec, validation: 'strict' });
    const refused = await env.waitFor('switch', 'Error', (s) => s.status?.phase === 'Error');
    assert.equal(refused.status!.artifact, undefined);
    assert.equal(findCondition(refused.status!.conditions, 'ArtifactAvailable')!.reason, 'InvalidBundle');
    await env.apply('switch', { ...spec, validation: 'warn' });
    const published = await env.waitFor('switch', 'Ready', (s) => s.status?.phase === 'Ready');
    assert.equal(published.status!.artifact!.revision, `main@sha1:${sha}`);
    assert.equal(bundleValid(published)!.status, 'False');
  });

  it('a ConfigMap whose .json key is not a valid pack is reported', async () => {
    await env.stack.resources.putConfigMap({ namespace: env.namespace, name: 'cm', data: { 'bundle.json': '{"id": "cm"}' }, binaryData: {} });
    await env.apply('cm', { type: 'configmap', configMap: { name: 'cm', key: 'bundle.json' } });
    const src = await env.waitFor('cm', 'Ready', (s) => s.status?.phase === 'Ready' && bundleValid(s) !== undefined);
    assert.match(bundleValid(src)!.message, /^4 problems: bundle\.json \/: must have required property 'name'/);
  });
});
