/**
 * Determinism of the source workflow across code changes. A running source is one
 * workflow that lives for months (continue-as-new carries it on), so a new worker
 * must replay histories written by the previous code. Each history under
 * test/fixtures/histories/ (recorded from a real run: fetches, a no-op cycle, a
 * reconcile signal, suspend/resume, a spec change and a failure) must replay
 * against the current workflow code without a nondeterminism error; a change that
 * reorders what a cycle schedules needs `patched()` (or a new workflow type).
 *
 * RECORD_HISTORIES=1 node scripts/run-tests.mjs replay  writes fresh fixtures from this code: one
 * per run of the lifecycle workflow (short runs: it continues as new after a fetch and every few
 * cycles); RECORD_HISTORIES_TAG=name goes into their file names.
 * Fixtures are the History protobuf in binary (the wire format; the SDK's JSON
 * helpers fail on the protobufjs versions this SDK release installs).
 */
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import proto from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { API_VERSION, KIND } from '../../src/api/schema.js';
import { applySource, reconcileSource, resumeSource, sourceHandle, suspendSource } from '../../src/client.js';
import { bareRepoPath, commitFiles, seedRepo } from '../../src/dev/demo-git/repo.js';
import { workflowBundle } from '../../src/worker.js';
import { startTestEnv, type TestEnv } from '../helpers/env.js';
import { waitFor } from '../helpers/wait.js';
import { runHistories } from '../helpers/history.js';

const FIXTURES = resolve('test/fixtures/histories');
/** A recorded run at least this long is a real one (runs are short: one continues as new after every fetch). */
const REAL_RUN_EVENTS = 10;
const History = proto.temporal.api.history.v1.History;

describe('workflow histories replay on the current code', () => {
  let env: TestEnv;
  before(async () => {
    env = await startTestEnv('replay');
  });
  after(async () => {
    await env?.close();
  });

  it('every recorded history replays without a nondeterminism error', async () => {
    const files = (await readdir(FIXTURES)).filter((f) => f.endsWith('.pb'));
    assert.ok(files.length > 0, `no recorded histories in ${FIXTURES}`);
    const bundle = await workflowBundle();
    for (const file of files) {
      const history = History.decode(await readFile(join(FIXTURES, file)));
      assert.ok((history.events?.length ?? 0) > REAL_RUN_EVENTS, `${file} is a real history`);
      await Worker.runReplayHistory({ workflowBundle: bundle, replayName: file }, history);
    }
  });

  it('a history made now, through every signal and a failure, replays too', async () => {
    const name = 'lifecycle';
    await seedRepo(env.gitRoot, name, { 'pack.json': '{"v":1}' });
    const bare = bareRepoPath(env.gitRoot, name);
    const ref = { namespace: env.namespace, name };
    const revision = (sha: string) => (s: { status?: { artifact?: { revision?: string } } }) => s.status?.artifact?.revision === `main@sha1:${sha}`;

    // Short runs: a few cycles per run, so the lifecycle spans several runs and continue-as-new replays too.
    await env.apply(name, { type: 'git', interval: '1s', git: { url: env.git.repoUrl(name) } }, { cyclesPerRun: 6 });
    await env.waitFor(name, 'Ready', (s) => s.status?.phase === 'Ready');
    const before = (await env.counters(name)).noops;
    await waitFor('a no-op cycle', () => env.counters(name), (c) => c.noops > before);
    const second = await commitFiles(bare, { 'pack.json': '{"v":2}' }, { branch: 'main', message: 'v2' });
    await env.waitFor(name, 'the new commit', revision(second));
    await reconcileSource(env.stack.client, ref, '2030-01-01T00:00:00Z');
    await env.waitFor(name, 'reconcile handled', (s) => s.status?.lastHandledReconcileAt === '2030-01-01T00:00:00Z');
    await suspendSource(env.stack.client, ref);
    await env.waitFor(name, 'suspended', (s) => s.status?.conditions?.some((c) => c.reason === 'Suspended') ?? false);
    const third = await commitFiles(bare, { 'pack.json': '{"v":3}' }, { branch: 'main', message: 'v3' });
    await resumeSource(env.stack.client, ref);
    await env.waitFor(name, 'resumed onto the newest commit', revision(third));
    // A path that is not in the repository: a failure, with the last artifact kept.
    await env.apply(name, { type: 'git', interval: '1s', git: { url: env.git.repoUrl(name), path: 'missing' } });
    await env.waitFor(name, 'Error', (s) => s.status?.phase === 'Error');
    await env.apply(name, { type: 'git', interval: '1s', git: { url: env.git.repoUrl(name) } });
    await env.waitFor(name, 'Ready again', (s) => s.status?.phase === 'Ready');
    // A spec only the workflow can refuse (past the edge, as a CR under Omnia's looser CRD): it stalls,
    // and suspend/resume signals while it is stalled are still handled.
    await applySource(env.stack.client, env.taskQueue, {
      apiVersion: API_VERSION,
      kind: KIND,
      metadata: { name, namespace: env.namespace },
      spec: { type: 'git', interval: '1s', targetPath: '../escape', git: { url: env.git.repoUrl(name) } },
    });
    await env.waitFor(name, 'stalled on InvalidTargetPath', (s) => s.status?.conditions?.some((c) => c.reason === 'InvalidTargetPath') ?? false);
    await suspendSource(env.stack.client, ref);
    await resumeSource(env.stack.client, ref);
    await env.apply(name, { type: 'git', interval: '1s', git: { url: env.git.repoUrl(name) } });
    await env.waitFor(name, 'Ready after the fix', (s) => s.status?.phase === 'Ready' && s.metadata.generation === s.status?.observedGeneration);

    // Every run, through the encoding a fixture is stored in.
    const runs = (await runHistories(env.stack.client, sourceHandle(env.stack.client, ref).workflowId)).map((h) => History.encode(h).finish());
    assert.ok(runs.length >= 2, `the lifecycle spans ${runs.length} runs`);
    for (const [i, bytes] of runs.entries()) {
      await Worker.runReplayHistory({ workflowBundle: await workflowBundle(), replayName: `fresh run ${i + 1}` }, History.decode(bytes));
      if (process.env.RECORD_HISTORIES === '1' && History.decode(bytes).events!.length > REAL_RUN_EVENTS) {
        const tag = process.env.RECORD_HISTORIES_TAG ? `-${process.env.RECORD_HISTORIES_TAG}` : '';
        await writeFile(join(FIXTURES, `lifecycle-${new Date().toISOString().slice(0, 10)}${tag}-run${i + 1}.pb`), bytes);
      }
    }
  });
});

