/**
 * `arena-source worker` and `arena-source serve` as separate processes (as in a
 * deployment): structured JSON logs carry the source and revision on every
 * activity line, and /metrics exposes cycles, durations, phases and requests.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { API_VERSION, KIND } from '../../src/api/schema.js';
import { parseArenaSource } from '../../src/api/validate.js';
import { applySource, connectClient, getCounters, getSource } from '../../src/client.js';
import { activityCalls } from '../../src/temporal/history-activities.js';
import { GitHttpServer } from '../../src/dev/demo-git/git-http-server.js';
import { seedRepo } from '../../src/dev/demo-git/repo.js';
import { temporalAddress, uniqueTaskQueue } from '../helpers/temporal.js';
import { waitFor } from '../helpers/wait.js';
import { freePort } from '../helpers/free-port.js';
import { jsonLogLines } from '../helpers/processes.js';
import { wholeHistory } from '../helpers/history.js';

const BIN = resolve('bin/arena-source.js');


function start(args: string[], sink: { out: string }, level = 'info'): ChildProcess {
  const child = spawn('node', [BIN, ...args], { env: { ...process.env, ARENA_SOURCE_LOG_LEVEL: level }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d) => (sink.out += d));
  child.stderr!.on('data', (d) => (sink.out += d));
  return child;
}

describe('worker and artifact server as processes', () => {
  let dir: string;
  let git: GitHttpServer;
  let worker: ChildProcess;
  let server: ChildProcess;
  const workerLog = { out: '' };
  const serverLog = { out: '' };
  let ports: { artifacts: number; metrics: number };
  const taskQueue = uniqueTaskQueue('proc');
  const namespace = `p${taskQueue.replace(/[^a-z0-9]/g, '').slice(-12)}`;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arena-proc-'));
    git = await GitHttpServer.start({ root: join(dir, 'git') });
    await seedRepo(join(dir, 'git'), 'packs', { 'pack.json': '{"id":"p"}' });
    ports = { artifacts: await freePort(), metrics: await freePort() };
    const common = ['--data-dir', join(dir, 'data'), '--temporal-address', temporalAddress(), '--task-queue', taskQueue];
    server = start([...common, 'serve', '--port', String(ports.artifacts)], serverLog);
    worker = start([...common, 'worker', '--artifact-base-url', `http://127.0.0.1:${ports.artifacts}`, '--metrics-port', String(ports.metrics)], workerLog);
    await waitFor('worker started', async () => workerLog.out, (o) => o.includes('"worker started"'), 60_000);
    // The test runner wrote dist/workflow-bundle.js for this build: the worker loads it instead of running webpack.
    assert.match(workerLog.out, /"workflowBundle":"prebuilt"/);
  });

  after(async () => {
    for (const child of [worker, server]) {
      if (child && child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
    }
    await git?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('reconciles a source, logs JSON with source and revision, and exposes metrics', async () => {
    const client = await connectClient({ address: temporalAddress(), namespace: 'default' });
    try {
      const source = parseArenaSource({
        apiVersion: API_VERSION,
        kind: KIND,
        metadata: { name: 'logged', namespace },
        spec: { type: 'git', interval: '1s', git: { url: git.repoUrl('packs') } },
      });
      await applySource(client, taskQueue, source);
      const ref = { namespace, name: 'logged' };
      const ready = await waitFor('Ready', () => getSource(client, ref), (s) => s.status?.phase === 'Ready', 60_000);
      const res = await fetch(ready.status!.artifact!.url);
      assert.equal(res.status, 200);
      await res.arrayBuffer();
      await waitFor('two no-op cycles', async () => workerLog.out, (o) => (o.match(/"result":"noop"/g) ?? []).length >= 2, 20_000);
      await client.workflow.getHandle(`arena-source/${namespace}/logged`).terminate('done');
    } finally {
      await client.connection.close();
    }

    const lines = jsonLogLines(workerLog.out);
    const cycle = lines.find((l) => l.msg === 'cycle finished' && l.result === 'fetched');
    assert.ok(cycle, workerLog.out.slice(-2000));
    assert.equal(cycle.sourceNamespace, namespace);
    assert.equal(cycle.sourceName, 'logged');
    assert.match(String(cycle.revision), /^main@sha1:[0-9a-f]{40}$/);
    assert.equal(cycle.workflowId, `arena-source/${namespace}/logged`);
    assert.equal(cycle.level, 'info');

    const metrics = await (await fetch(`http://127.0.0.1:${ports.metrics}/metrics`)).text();
    assert.match(metrics, /arena_source_cycles_total\{result="fetched",type="git"\} [1-9]/);
    assert.match(metrics, /arena_source_cycles_total\{result="noop",type="git"\} [1-9]/);
    assert.match(metrics, /arena_source_activity_duration_seconds_count\{activity="resolveRevision",outcome="succeeded"\} [1-9]/);
    assert.match(metrics, /arena_source_activity_duration_seconds_count\{activity="packBundleHere",outcome="succeeded"\} [1-9]/);
    assert.match(metrics, /arena_source_sources\{phase="Ready"\} 1/);
    assert.match(metrics, /arena_source_noop_ratio 0\.[1-9]/);
    // No flag and no memory limit here: the cache is sized from the machine.
    assert.match(metrics, /arena_source_worker_cached_workflows_max\{from="machine memory \(no limit found\)"\} [1-9]/);
    // One source saves well under 4 replays a second: the worker keeps the small cache.
    assert.match(metrics, /arena_source_worker_cached_workflows 100\n/);
    assert.match(metrics, /arena_source_artifact_size_bytes_count [1-9]/);
    const served = await (await fetch(`http://127.0.0.1:${ports.artifacts}/metrics`)).text();
    assert.match(served, /arena_source_artifact_requests_total\{method="GET",code="200"\} [1-9]/);
  });
});

describe('secrets never reach the logs', () => {
  it('a worker logging a failing and a succeeding private source prints no credential', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'arena-secret-log-'));
    const password = `pw-${Math.random().toString(36).slice(2)}-S3cr3t`;
    const git = await GitHttpServer.start({ root: join(dir, 'git'), basicAuth: { username: 'bot', password } });
    await seedRepo(join(dir, 'git'), 'private', { 'pack.json': '{"id":"p"}' });
    const taskQueue = uniqueTaskQueue('secretlog');
    const namespace = `s${taskQueue.replace(/[^a-z0-9]/g, '').slice(-12)}`;
    const { LocalResourceStore } = await import('../../src/resources/local-store.js');
    const resources = new LocalResourceStore(join(dir, 'data', 'resources'));
    await resources.putSecret({ namespace, name: 'good', data: { username: Buffer.from('bot'), password: Buffer.from(password) } });
    await resources.putSecret({ namespace, name: 'bad', data: { username: Buffer.from('bot'), password: Buffer.from(`${password}-wrong`) } });
    const log = { out: '' };
    const worker = start(
      ['--data-dir', join(dir, 'data'), '--temporal-address', temporalAddress(), '--task-queue', taskQueue, 'worker', '--metrics-port', String(await freePort())],
      log,
    );
    const client = await connectClient({ address: temporalAddress(), namespace: 'default' });
    try {
      await waitFor('worker started', async () => log.out, (o) => o.includes('"worker started"'), 60_000);
      for (const name of ['good', 'bad']) {
        const source = parseArenaSource({
          apiVersion: API_VERSION,
          kind: KIND,
          metadata: { name, namespace },
          spec: { type: 'git', interval: '1h', git: { url: git.repoUrl('private'), secretRef: { name } } },
        });
        await applySource(client, taskQueue, source);
      }
      await waitFor('good Ready', () => getSource(client, { namespace, name: 'good' }), (s) => s.status?.phase === 'Ready', 60_000);
      await waitFor('bad Error', () => getSource(client, { namespace, name: 'bad' }), (s) => s.status?.phase === 'Error', 60_000);
      await waitFor('failure logged', async () => log.out, (o) => o.includes('Activity failed'), 10_000);
      for (const secret of [password, Buffer.from(password).toString('base64'), Buffer.from(`bot:${password}`).toString('base64')]) {
        assert.ok(!log.out.includes(secret), 'a credential appeared in the worker log');
      }
    } finally {
      for (const name of ['good', 'bad']) await client.workflow.getHandle(`arena-source/${namespace}/${name}`).terminate().catch(() => undefined);
      await client.connection.close();
      worker.kill('SIGTERM');
      await new Promise((r) => worker.once('exit', r));
      await git.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('worker roles as processes', () => {
  it('a `workflows` worker resolves revisions itself (local activities); an `activities` worker fetches, packs and uploads', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'arena-roles-'));
    const git = await GitHttpServer.start({ root: join(dir, 'git') });
    await seedRepo(join(dir, 'git'), 'packs', { 'pack.json': '{"id":"p"}' });
    const taskQueue = uniqueTaskQueue('roles');
    const namespace = `r${taskQueue.replace(/[^a-z0-9]/g, '').slice(-12)}`;
    const common = ['--data-dir', join(dir, 'data'), '--temporal-address', temporalAddress(), '--task-queue', taskQueue, 'worker'];
    const logs = { workflows: { out: '' }, activities: { out: '' } };
    const workers = {
      workflows: start([...common, '--role', 'workflows', '--metrics-port', String(await freePort())], logs.workflows),
      activities: start([...common, '--role', 'activities', '--metrics-port', String(await freePort())], logs.activities),
    };
    const client = await connectClient({ address: temporalAddress(), namespace: 'default' });
    try {
      for (const log of Object.values(logs)) await waitFor('worker started', async () => log.out, (o) => o.includes('"worker started"'), 60_000);
      const source = parseArenaSource({
        apiVersion: API_VERSION,
        kind: KIND,
        metadata: { name: 'split', namespace },
        spec: { type: 'git', interval: '1s', git: { url: git.repoUrl('packs') } },
      });
      await applySource(client, taskQueue, source);
      const ref = { namespace, name: 'split' };
      await waitFor('Ready', () => getSource(client, ref), (s) => s.status?.phase === 'Ready', 60_000);
      await waitFor('two no-op cycles', () => getCounters(client, ref), (c) => c.noops >= 2, 20_000);
      const events = (await wholeHistory(client, `arena-source/${namespace}/split`)).events ?? [];
      const calls = activityCalls(events);
      assert.ok(calls.filter((c) => c.type === 'resolveRevision').length >= 3);
      assert.ok(calls.filter((c) => c.type === 'resolveRevision').every((c) => c.local), 'resolveRevision is local');
      // The workflows worker holds no checkout: asked to pack here, it says so, and pack and upload run on the activities worker's queue.
      const steps = calls.filter((c) => /^(pack|upload)/.test(c.type)).map((c) => `${c.type}:${c.local ? 'local' : 'remote'}`);
      assert.deepEqual(steps, ['packBundleHere:local', 'packBundle:remote', 'uploadArtifact:remote']);
      // Remote activities ran on the activities worker: its pid is in the identity that started them.
      const identities = new Set(events.flatMap((e) => (e.activityTaskStartedEventAttributes ? [e.activityTaskStartedEventAttributes.identity] : [])));
      assert.ok(identities.size > 0 && [...identities].every((id) => id?.startsWith(`${workers.activities.pid}@`)), [...identities].join(','));
    } finally {
      await client.workflow.getHandle(`arena-source/${namespace}/split`).terminate().catch(() => undefined);
      await client.connection.close();
      for (const worker of Object.values(workers)) {
        worker.kill('SIGTERM');
        await new Promise((r) => worker.once('exit', r));
      }
      await git.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('a worker sizes its workflow cache by what it saves', () => {
  it('takes the large cache while its sources fit and cycle often, gives it up when they no longer fit, and every source keeps cycling', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'arena-cache-'));
    const git = await GitHttpServer.start({ root: join(dir, 'git') });
    await seedRepo(join(dir, 'git'), 'packs', { 'pack.json': '{"id":"p"}' });
    const taskQueue = uniqueTaskQueue('cache');
    const namespace = `c${taskQueue.replace(/[^a-z0-9]/g, '').slice(-12)}`;
    const metricsPort = await freePort();
    const log = { out: '' };
    // Bounds 2 and 12, reviewed every 3 s: 8 sources at 1s fit in 12 (≈ 8 replays a second saved);
    // 20 do not (the LRU would evict each before it comes due).
    const worker = start(
      ['--data-dir', join(dir, 'data'), '--temporal-address', temporalAddress(), '--task-queue', taskQueue, 'worker',
        '--max-cached-workflows', '12', '--min-cached-workflows', '2', '--cache-review-interval', '3s', '--metrics-port', String(metricsPort)],
      log,
      'debug', // each review's figures, for a failure's message
    );
    const reviews = () => jsonLogLines(log.out).filter((l) => /cache/.test(String(l.msg)) || l.level === 'warn' || l.level === 'error').slice(-5).map((l) => JSON.stringify(l)).join('\n');
    const metrics = async () => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const resized = (to: number) => async () => jsonLogLines(log.out).find((l) => l.msg === 'workflow cache resized' && l.to === to);
    const names = Array.from({ length: 20 }, (_, i) => `s${i}`);
    const client = await connectClient({ address: temporalAddress(), namespace: 'default' });
    const apply = async (some: string[]) => {
      for (const name of some) {
        const spec = { type: 'git', interval: '1s', git: { url: git.repoUrl('packs') } };
        await applySource(client, taskQueue, parseArenaSource({ apiVersion: API_VERSION, kind: KIND, metadata: { name, namespace }, spec }));
      }
    };
    try {
      await waitFor('worker started', async () => log.out, (o) => o.includes('"worker started"'), 60_000);
      const started = jsonLogLines(log.out).find((l) => l.msg === 'worker started')!;
      assert.deepEqual([started.minCachedWorkflows, started.maxCachedWorkflows, started.cachedWorkflows], [2, 12, 2], 'starts small');

      await apply(names.slice(0, 8));
      const grown = await waitFor('cache grown to 12', resized(12), Boolean, 60_000).catch((err) => assert.fail(`${err}\n${reviews()}`));
      assert.equal(grown!.from, 2);
      assert.ok(Number(grown!.workingSet) <= 12 && Number(grown!.replaysSavedPerSecond) >= 4, JSON.stringify(grown));
      assert.match(await metrics(), /arena_source_worker_cached_workflows 12\n/);

      await apply(names.slice(8));
      const shrunk = await waitFor('cache back to 2', resized(2), Boolean, 90_000).catch((err) => assert.fail(`${err}\n${reviews()}`));
      assert.ok(Number(shrunk!.cyclesPerSecond) > 12, JSON.stringify(shrunk)); // at 1s: more than 12 cached would hold
      const text = await metrics();
      assert.match(text, /arena_source_worker_cached_workflows 2\n/);
      assert.match(text, /arena_source_worker_cache_resizes_total\{direction="grow"\} 1\n/);
      assert.match(text, /arena_source_worker_cache_resizes_total\{direction="shrink"\} 1\n/);

      // The SDK workers replaced lost no source: each cycles on (asked by queries, which make the worker
      // replay evicted workflows: TIMER_BETWEEN_CYCLES's case), is Ready, and no workflow task failed (a
      // replay that disagrees with the history fails its task; read from the histories).
      const before = await Promise.all(names.map((name) => getCounters(client, { namespace, name })));
      for (const [i, name] of names.entries()) {
        const ref = { namespace, name };
        const now = await waitFor(`${name} cycles on`, () => getCounters(client, ref), (c) => c.cycles >= before[i]!.cycles + 2, 30_000);
        assert.equal(now.failures, 0, name);
        assert.equal((await getSource(client, ref)).status?.phase, 'Ready', name);
      }
      for (const name of names) {
        const events = (await wholeHistory(client, `arena-source/${namespace}/${name}`)).events ?? [];
        const failed = events.flatMap((e) => (e.workflowTaskFailedEventAttributes ? [e.workflowTaskFailedEventAttributes.failure?.message ?? ''] : []));
        assert.deepEqual(failed, [], `${name}: workflow tasks failed`);
      }
    } finally {
      for (const name of names) await client.workflow.getHandle(`arena-source/${namespace}/${name}`).terminate().catch(() => undefined);
      await client.connection.close();
      worker.kill('SIGTERM');
      await new Promise((r) => worker.once('exit', r));
      await git.close();
      await rm(dir, { recursive: true, force: true });
    }
    // Stopped as it should, with the workers it started along the way.
    assert.equal(worker.exitCode, 0, log.out.slice(-2000));
    assert.ok(jsonLogLines(log.out).some((l) => l.msg === 'worker stopped'), log.out.slice(-2000));
  });
});
