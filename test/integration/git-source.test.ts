/**
 * The reconcile loop end to end for git sources: real Temporal dev server, real
 * git over smart HTTP, real worker, store and artifact server.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { listArchive } from '../../src/bundle/pack.js';
import { seedRepo } from '../../src/dev/demo-git/repo.js';
import { findCondition } from '../../src/api/status.js';
import { activityCalls } from '../../src/temporal/history-activities.js';
import { startTestEnv, type TestEnv } from '../helpers/env.js';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { wholeHistory } from '../helpers/history.js';

const PACK = (version: string) => JSON.stringify({ id: 'support', name: 'Support', version }, null, 2);

describe('git sources', () => {
  let env: TestEnv;
  let repoUrl: string;
  let firstSha: string;

  before(async () => {
    env = await startTestEnv('git');
    firstSha = await seedRepo(env.gitRoot, 'prompts', {
      'customer-support/pack.json': PACK('1.0.0'),
      'customer-support/prompts/system.md': 'You are helpful.\n',
      'other/pack.json': PACK('0.0.1'),
      'README.md': '# prompts\n',
    }, { tag: 'v1.0.0' });
    repoUrl = env.git.repoUrl('prompts');
  });
  after(async () => env?.close());

  it('reaches Ready with a downloadable artifact for a branch, with the spec revision format', async () => {
    await env.apply('branch', { type: 'git', git: { url: repoUrl, ref: { branch: 'main' }, path: './customer-support' } });
    const src = await env.waitFor('branch', 'Ready', (s) => s.status?.phase === 'Ready');
    const artifact = src.status!.artifact!;
    assert.equal(artifact.revision, `main@sha1:${firstSha}`);
    assert.match(artifact.checksum!, /^sha256:[0-9a-f]{64}$/);
    assert.equal(findCondition(src.status!.conditions, 'Ready')?.status, 'True');
    assert.equal(findCondition(src.status!.conditions, 'ArtifactAvailable')?.status, 'True');
    assert.equal(findCondition(src.status!.conditions, 'Fetching')?.status, 'False');
    assert.ok(src.status!.lastFetchTime && src.status!.nextFetchTime);
    const dl = await env.download(artifact.url);
    assert.equal(dl.status, 200);
    assert.equal(dl.sha256, artifact.checksum);
    assert.equal(dl.body.length, artifact.size);
    const tmp = join(tmpdir(), `dl-${process.pid}.tar.gz`);
    await writeFile(tmp, dl.body);
    const files = (await listArchive(tmp)).filter((e) => e.type === 'file').map((e) => e.path);
    assert.deepEqual(files.sort(), ['pack.json', 'prompts/system.md']);
  });

  it('uses the remote default branch when no ref is given, and the whole repository when no path', async () => {
    await env.apply('default-branch', { type: 'git', git: { url: repoUrl } });
    const src = await env.waitFor('default-branch', 'Ready', (s) => s.status?.phase === 'Ready');
    assert.equal(src.status!.artifact!.revision, `main@sha1:${firstSha}`);
  });

  it('formats tag and commit revisions as the spec says', async () => {
    await env.apply('tag', { type: 'git', git: { url: repoUrl, ref: { tag: 'v1.0.0' }, path: 'customer-support' } });
    await env.apply('commit', { type: 'git', git: { url: repoUrl, ref: { commit: firstSha }, path: 'customer-support' } });
    const tag = await env.waitFor('tag', 'Ready', (s) => s.status?.phase === 'Ready');
    const commit = await env.waitFor('commit', 'Ready', (s) => s.status?.phase === 'Ready');
    assert.equal(tag.status!.artifact!.revision, `v1.0.0@sha1:${firstSha}`);
    assert.equal(commit.status!.artifact!.revision, `sha1:${firstSha}`);
    // Same files under the same path ⇒ byte-identical artifacts.
    assert.equal(tag.status!.artifact!.checksum, commit.status!.artifact!.checksum);
  });

  it('history shows each cycle as activities with one-line summaries (what the Temporal UI lists)', async () => {
    await env.waitFor('branch', 'Ready', (s) => s.status?.phase === 'Ready');
    const history = await wholeHistory(env.stack.client, `arena-source/${env.namespace}/branch`);
    const calls = activityCalls(history.events ?? []);
    const types = calls.map((c) => c.type);
    for (const t of ['reportStatus', 'resolveRevision', 'fetchSourceHere', 'packBundleHere', 'uploadArtifactHere']) assert.ok(types.includes(t), t);
    assert.ok(calls.every((c) => c.local), 'every step runs as a local activity (a marker) on the worker that fetches');
    const summaries = calls.map((c) => c.summary ?? '');
    assert.ok(summaries.some((x) => x === `resolve git ${repoUrl} branch main path ./customer-support`), summaries.join(' | '));
    assert.ok(summaries.some((x) => x === `fetch main@sha1:${firstSha}`));
    assert.ok(summaries.some((x) => /^upload sha256:[0-9a-f]{64} \(\d+ bytes, \d+ entries\)$/.test(x)));
  });
});

describe('search attributes', () => {
  let env: TestEnv;
  before(async () => {
    env = await startTestEnv('sa');
  });
  after(async () => env?.close());

  it('lists sources by namespace, type, phase and revision through Temporal visibility', async () => {
    const sha = await seedRepo(env.gitRoot, 'sa', { 'pack.json': PACK('1') });
    await env.apply('findme', { type: 'git', interval: '1h', git: { url: env.git.repoUrl('sa') } });
    await env.waitFor('findme', 'Ready', (s) => s.status?.phase === 'Ready');
    const query = `ArenaSourceNamespace = '${env.namespace}' AND ArenaSourceType = 'git' AND ArenaSourcePhase = 'Ready' AND ArenaSourceRevision = 'main@sha1:${sha}' AND ExecutionStatus = 'Running'`;
    const { waitFor } = await import('../helpers/wait.js');
    const ids = await waitFor('visibility', async () => {
      const found: string[] = [];
      for await (const wf of env.stack.client.workflow.list({ query })) found.push(wf.workflowId);
      return found;
    }, (found) => found.length === 1, 15_000);
    assert.deepEqual(ids, [`arena-source/${env.namespace}/findme`]);
  });

  it('a Temporal namespace without them still works; search-attributes registers them', async () => {
    const { Client } = await import('@temporalio/client');
    const { registerSearchAttributes, searchAttributesRegistered } = await import('../../src/search-attributes-setup.js');
    const ns = `bare-${Date.now().toString(36)}`;
    const conn = env.stack.client.connection;
    await conn.workflowService.registerNamespace({ namespace: ns, workflowExecutionRetentionPeriod: { seconds: 86400 } as never });
    const { waitFor } = await import('../helpers/wait.js');
    const client = new Client({ connection: conn, namespace: ns });
    await waitFor('namespace ready', () => client.workflow.count().then(() => true), (ok) => ok, 20_000);
    assert.equal(await searchAttributesRegistered(client), false);
    // A worker on that namespace, and a source that must not try to upsert unknown attributes.
    const { connectWorker, startWorker } = await import('../../src/worker.js');
    const { temporalAddress } = await import('../helpers/temporal.js');
    const { applySource, getSource } = await import('../../src/client.js');
    const { parseArenaSource } = await import('../../src/api/validate.js');
    const wconn = await connectWorker(temporalAddress());
    const worker = await startWorker({
      connection: wconn,
      namespace: ns,
      taskQueue: `${env.taskQueue}-bare`,
      workRoot: env.dataDir + '/work-bare',
      deps: { store: env.stack.store, artifactBaseUrl: env.stack.artifactServer.url, statusSink: env.stack.statuses, resources: env.stack.resources, packLimits: { maxBytes: 1e8, maxFiles: 1e4 } },
    });
    try {
      await seedRepo(env.gitRoot, 'bare', { 'pack.json': PACK('1') });
      const src = parseArenaSource({ apiVersion: 'omnia.altairalabs.ai/v1alpha1', kind: 'ArenaSource', metadata: { name: 'plain', namespace: 'x' }, spec: { type: 'git', interval: '1h', git: { url: env.git.repoUrl('bare') } } });
      await applySource(client, `${env.taskQueue}-bare`, src);
      await waitFor('Ready without search attributes', () => getSource(client, { namespace: 'x', name: 'plain' }), (s) => s.status?.phase === 'Ready', 30_000);
      assert.deepEqual((await registerSearchAttributes(client)).sort(), ['ArenaSourceName', 'ArenaSourceNamespace', 'ArenaSourcePhase', 'ArenaSourceRef', 'ArenaSourceRepository', 'ArenaSourceRevision', 'ArenaSourceType']);
      assert.equal(await searchAttributesRegistered(client), true);
      assert.deepEqual(await registerSearchAttributes(client), []);
    } finally {
      await client.workflow.getHandle('arena-source/x/plain').terminate().catch(() => undefined);
      await worker.shutdown();
      await wconn.close();
    }
  });
});
