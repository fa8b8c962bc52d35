/**
 * The reconcile loop's behaviour over time: new commits, no-op cycles, signals,
 * spec updates, continue-as-new, and an unreachable source. Real Temporal, real git.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { findCondition } from '../../src/api/status.js';
import { activityCalls } from '../../src/temporal/history-activities.js';
import { reconcileSource, resumeSource, sourceHandle, suspendSource } from '../../src/client.js';
import { bareRepoPath, commitFiles, seedRepo } from '../../src/dev/demo-git/repo.js';
import { startTestEnv, type TestEnv } from '../helpers/env.js';
import { waitFor } from '../helpers/wait.js';
import { runsOf, wholeHistory } from '../helpers/history.js';
import { updateSpecSignal } from '../../workflows/definitions.js';

const pack = (v: string) => JSON.stringify({ id: 'p', version: v });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('reconcile loop', () => {
  let env: TestEnv;
  const ref = (name: string) => ({ namespace: env.namespace, name });
  const repo = async (name: string) => {
    const sha = await seedRepo(env.gitRoot, name, { 'pack.json': pack('1'), 'sub/pack.json': pack('sub-1') });
    return { url: env.git.repoUrl(name), bare: bareRepoPath(env.gitRoot, name), sha };
  };
  const push = (bare: string, files: Record<string, string>) => commitFiles(bare, files, { branch: 'main', message: 'change' });

  before(async () => {
    env = await startTestEnv('loop');
  });
  after(async () => env?.close());

  it('picks up a new commit on the next cycle', async () => {
    const r = await repo('moving');
    await env.apply('moving', { type: 'git', interval: '1s', git: { url: r.url } });
    await env.waitFor('moving', 'Ready', (s) => s.status?.artifact?.revision === `main@sha1:${r.sha}`);
    const before = await env.counters('moving');
    const next = await push(r.bare, { 'pack.json': pack('2') });
    const src = await env.waitFor('moving', 'new revision', (s) => s.status?.artifact?.revision === `main@sha1:${next}`);
    const afterCounters = await env.counters('moving');
    // The cycle running at push time may have missed it; the one after must not.
    assert.ok(afterCounters.cycles - before.cycles <= 2, `took ${afterCounters.cycles - before.cycles} cycles`);
    assert.equal(src.status!.phase, 'Ready');
  });

  it('an unchanged remote gives no-op cycles: ls-remote only, no fetch, no new artifact', async () => {
    const r = await repo('quiet');
    await env.apply('quiet', { type: 'git', interval: '1s', git: { url: r.url } });
    const ready = await env.waitFor('quiet', 'Ready', (s) => s.status?.phase === 'Ready');
    const fetchesBefore = env.git.stats('quiet').fetches;
    const advertisedBefore = env.git.stats('quiet').advertisements;
    const c0 = await env.counters('quiet');
    await waitFor('three no-op cycles', () => env.counters('quiet'), (c) => c.noops >= c0.noops + 3, 20_000);
    const stats = env.git.stats('quiet');
    assert.equal(stats.fetches, fetchesBefore, 'no-op cycles must not fetch (clone) from the git server');
    assert.ok(stats.advertisements > advertisedBefore, 'each cycle asks the remote (ls-remote)');
    const c1 = await env.counters('quiet');
    assert.equal(c1.fetches, c0.fetches);
    const now = await env.get('quiet');
    assert.deepEqual(now.status!.artifact, ready.status!.artifact);
    assert.notEqual(now.status!.lastFetchTime, ready.status!.lastFetchTime);
    // Each no-op cycle is one local resolve that wrote the status itself: the worker found the previous
    // status by the fingerprint it was sent (src/status/last-statuses.ts); a miss would add a reportStatus.
    const { events } = await wholeHistory(env.stack.client, sourceHandle(env.stack.client, ref('quiet')).workflowId);
    const types = activityCalls(events ?? []).map((c) => c.type);
    const firstNoop = types.indexOf('resolveRevision', types.indexOf('reportStatus') + 1);
    assert.ok(firstNoop > 0 && types.length - firstNoop >= 3, types.join(','));
    assert.deepEqual([...new Set(types.slice(firstNoop))], ['resolveRevision'], types.join(','));
  });

  it('rebuilds an artifact that was deleted from the store', async () => {
    const r = await repo('rebuilt');
    await env.apply('rebuilt', { type: 'git', interval: '1s', git: { url: r.url } });
    const ready = await env.waitFor('rebuilt', 'Ready', (s) => s.status?.phase === 'Ready');
    const c0 = await env.counters('rebuilt');
    const key = new URL(ready.status!.artifact!.url).pathname.replace(/^\//, '');
    await rm(join(env.stack.store.root, key));
    await waitFor('a re-fetch', () => env.counters('rebuilt'), (c) => c.fetches > c0.fetches, 20_000);
    const dl = await env.download(ready.status!.artifact!.url);
    assert.equal(dl.status, 200);
    assert.equal(dl.sha256, ready.status!.artifact!.checksum);
  });

  it('suspend stops fetching and reports Ready=False/Suspended; resume picks up what changed', async () => {
    const r = await repo('paused');
    await env.apply('paused', { type: 'git', interval: '1s', git: { url: r.url } });
    await env.waitFor('paused', 'Ready', (s) => s.status?.phase === 'Ready');
    await suspendSource(env.stack.client, ref('paused'));
    const suspended = await env.waitFor('paused', 'Suspended', (s) => findCondition(s.status?.conditions, 'Ready')?.reason === 'Suspended');
    assert.equal(suspended.spec.suspend, true);
    assert.equal(suspended.status!.phase, 'Pending');
    assert.equal(findCondition(suspended.status!.conditions, 'Ready')!.status, 'False');
    assert.ok(suspended.status!.artifact, 'the last artifact stays published while suspended');
    const next = await push(r.bare, { 'pack.json': pack('2') });
    const seen = env.git.stats('paused');
    await sleep(2_500);
    assert.deepEqual(env.git.stats('paused'), seen, 'a suspended source does not contact the remote');
    assert.equal((await env.get('paused')).status!.artifact!.revision, `main@sha1:${r.sha}`);
    await resumeSource(env.stack.client, ref('paused'));
    const resumed = await env.waitFor('paused', 'resumed', (s) => s.status?.artifact?.revision === `main@sha1:${next}`);
    assert.equal(resumed.status!.phase, 'Ready');
    assert.equal(resumed.spec.suspend, false);
  });

  it('reconcile signal fetches now and echoes requestedAt', async () => {
    const r = await repo('manual');
    await env.apply('manual', { type: 'git', interval: '1h', git: { url: r.url } });
    await env.waitFor('manual', 'Ready', (s) => s.status?.phase === 'Ready');
    const next = await push(r.bare, { 'pack.json': pack('2') });
    await reconcileSource(env.stack.client, ref('manual'), '2026-11-25T10:00:00Z');
    const src = await env.waitFor('manual', 'reconciled', (s) => s.status?.artifact?.revision === `main@sha1:${next}`, 15_000);
    await env.waitFor('manual', 'echo', (s) => s.status?.lastHandledReconcileAt === '2026-11-25T10:00:00Z', 5_000);
    assert.equal(src.status!.phase, 'Ready');
  });

  it('a spec update takes effect in the running workflow, with a new generation', async () => {
    const r = await repo('edited');
    await env.apply('edited', { type: 'git', interval: '1h', git: { url: r.url } });
    const first = await env.waitFor('edited', 'Ready', (s) => s.status?.phase === 'Ready');
    const runId = (await sourceHandle(env.stack.client, ref('edited')).describe()).runId;
    await env.apply('edited', { type: 'git', interval: '1h', git: { url: r.url, path: 'sub' } });
    const second = await env.waitFor('edited', 'new checksum', (s) => s.status?.artifact?.checksum !== first.status!.artifact!.checksum && s.status?.phase === 'Ready');
    assert.equal(second.spec.git!.path, 'sub');
    assert.equal(second.metadata.generation, first.metadata.generation! + 1);
    assert.equal(second.status!.observedGeneration, second.metadata.generation);
    // The running workflow took the update as a signal, and its runs went on from the one running then
    // (continuing as new after the fetch): no run was terminated or started beside it.
    const runs = await runsOf(env.stack.client, sourceHandle(env.stack.client, ref('edited')).workflowId);
    assert.ok(runs.some((run) => run.runId === runId), 'the run that was running is in the chain');
    const events = runs.flatMap((run) => run.history.events ?? []);
    assert.ok(events.some((e) => e.workflowExecutionSignaledEventAttributes?.signalName === updateSpecSignal.name), 'a spec update signal');
    assert.ok(!events.some((e) => e.workflowExecutionTerminatedEventAttributes), 'no run terminated');
    // Re-applying the same spec changes nothing.
    await env.apply('edited', { type: 'git', interval: '1h', git: { url: r.url, path: 'sub' } });
    await sleep(500);
    assert.equal((await env.get('edited')).metadata.generation, second.metadata.generation);
  });

  it('continue-as-new keeps the artifact, counters and spec; history stays bounded', async () => {
    const r = await repo('long');
    await env.apply('long', { type: 'git', interval: '1s', git: { url: r.url } }, { maxHistoryEvents: 40 });
    const ready = await env.waitFor('long', 'Ready', (s) => s.status?.phase === 'Ready');
    const c = await waitFor('a continue-as-new', () => env.counters('long'), (x) => x.runs >= 3, 40_000);
    assert.equal(c.fetches, 1, 'the carried artifact is reused after continue-as-new: no re-fetch');
    const now = await env.get('long');
    assert.deepEqual(now.status!.artifact, ready.status!.artifact);
    const desc = await sourceHandle(env.stack.client, ref('long')).describe();
    assert.ok(desc.historyLength <= 60, `history length ${desc.historyLength}`);
  });

  it('an invalid spec that slipped past the edge ends in Error/InvalidSpec once, then recovers when fixed', async () => {
    const r = await repo('fixme');
    const { applySource } = await import('../../src/client.js');
    const bad = {
      apiVersion: 'omnia.altairalabs.ai/v1alpha1' as const,
      kind: 'ArenaSource' as const,
      metadata: { name: 'fixme', namespace: env.namespace },
      spec: { type: 'git' as const, interval: '1s', configMap: { name: 'x' } },
    };
    await applySource(env.stack.client, env.taskQueue, bad);
    const failed = await env.waitFor('fixme', 'InvalidSpec', (s) => findCondition(s.status?.conditions, 'Ready')?.reason === 'InvalidSpec');
    assert.equal(failed.status!.phase, 'Error');
    assert.match(findCondition(failed.status!.conditions, 'Ready')!.message, /spec\.git: required when type is "git"/);
    assert.equal(failed.status!.nextFetchTime, undefined, 'a stalled source schedules no fetch');
    const c0 = await env.counters('fixme');
    await sleep(2_500);
    assert.deepEqual(await env.counters('fixme'), c0, 'an invalid spec is not retried in a loop');
    await env.apply('fixme', { type: 'git', interval: '1s', git: { url: r.url } });
    await env.waitFor('fixme', 'Ready', (s) => s.status?.phase === 'Ready');
  });
});

describe('an unreachable source', () => {
  let env: TestEnv;
  before(async () => {
    env = await startTestEnv('down');
  });
  after(async () => env?.close());

  it('goes to Error with a clear reason, keeps serving the last artifact, and recovers by itself', async () => {
    const sha = await seedRepo(env.gitRoot, 'flaky', { 'pack.json': pack('1') });
    await env.apply('flaky', { type: 'git', interval: '1s', timeout: '5s', git: { url: env.git.repoUrl('flaky') } });
    const ready = await env.waitFor('flaky', 'Ready', (s) => s.status?.phase === 'Ready');
    env.git.setFault({ kind: 'status', code: 503 });
    const failed = await env.waitFor('flaky', 'Error', (s) => s.status?.phase === 'Error', 40_000);
    const readyCond = findCondition(failed.status!.conditions, 'Ready')!;
    assert.equal(readyCond.status, 'False');
    assert.equal(readyCond.reason, 'FetchFailed');
    assert.match(readyCond.message, /127\.0\.0\.1/);
    assert.match(readyCond.message, /still serving the last artifact/);
    assert.deepEqual(failed.status!.artifact, ready.status!.artifact);
    assert.equal(findCondition(failed.status!.conditions, 'ArtifactAvailable')!.status, 'True');
    const dl = await env.download(ready.status!.artifact!.url);
    assert.equal(dl.status, 200);
    assert.equal(dl.sha256, ready.status!.artifact!.checksum);
    env.git.setFault(null);
    const back = await env.waitFor('flaky', 'Ready again', (s) => s.status?.phase === 'Ready', 30_000);
    assert.equal(back.status!.artifact!.revision, `main@sha1:${sha}`);
  });

  it('a server slower than spec.timeout ends in a timeout error naming spec.timeout; a cut connection is retried, then recovers', async () => {
    const sha = await seedRepo(env.gitRoot, 'slowpoke', { 'pack.json': pack('1') });
    await env.apply('slowpoke', { type: 'git', interval: '1s', timeout: '2s', git: { url: env.git.repoUrl('slowpoke') } });
    const ready = await env.waitFor('slowpoke', 'Ready', (s) => s.status?.phase === 'Ready');
    env.git.setFault({ kind: 'delay', ms: 5_000 });
    const slow = await env.waitFor('slowpoke', 'timed out', (s) => s.status?.phase === 'Error', 60_000);
    assert.match(findCondition(slow.status!.conditions, 'Ready')!.message, /timed out after 2s \(spec\.timeout\)/);
    assert.deepEqual(slow.status!.artifact, ready.status!.artifact);
    env.git.setFault({ kind: 'cut' });
    const cut = await env.waitFor('slowpoke', 'cut error', (s) => /transfer closed|connection|Empty reply|RPC failed|unexpected/i.test(findCondition(s.status?.conditions, 'Ready')?.message ?? ''), 60_000);
    assert.equal(cut.status!.phase, 'Error');
    env.git.setFault(null);
    const back = await env.waitFor('slowpoke', 'Ready again', (s) => s.status?.phase === 'Ready', 60_000);
    assert.equal(back.status!.artifact!.revision, `main@sha1:${sha}`);
  });
});
