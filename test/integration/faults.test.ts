/**
 * Faults against real servers: a worker killed mid-fetch, the Temporal server
 * restarted under running workflows, a full disk under the artifact store.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeTimeoutType, defaultPayloadConverter } from '@temporalio/common';
import type { Client } from '@temporalio/client';
import { API_VERSION, KIND } from '../../src/api/schema.js';
import { findCondition } from '../../src/api/status.js';
import { parseArenaSource } from '../../src/api/validate.js';
import { applySource, connectClient, getCounters, getSource } from '../../src/client.js';
import { GitHttpServer } from '../../src/dev/demo-git/git-http-server.js';
import { FaultyGitHttpServer } from '../helpers/faulty-git-server.js';
import { bareRepoPath, commitFiles, seedRepo } from '../../src/dev/demo-git/repo.js';
import { startLocalStack } from '../../src/local/stack.js';
import { FilesystemArtifactStore } from '../../src/store/fs-store.js';
import { startTemporalDevServer } from '../../src/dev/temporal-server.js';
import { freePort, startCli, type Proc } from '../helpers/processes.js';
import { startTestEnv, type TestEnv } from '../helpers/env.js';
import { temporalAddress, uniqueTaskQueue } from '../helpers/temporal.js';
import { activityCalls } from '../../src/temporal/history-activities.js';
import { waitFor } from '../helpers/wait.js';
import { wholeHistory } from '../helpers/history.js';

const source = (namespace: string, name: string, spec: Record<string, unknown>) =>
  parseArenaSource({ apiVersion: API_VERSION, kind: KIND, metadata: { name, namespace }, spec });

/** For the tests of one describe block: a git server over a temporary directory, seeded with `repo`. */
function gitServerFixture(prefix: string, repo: string, files: () => Record<string, string | Buffer>): { dir: string; git: FaultyGitHttpServer } {
  const fx = {} as { dir: string; git: FaultyGitHttpServer };
  before(async () => {
    fx.dir = await mkdtemp(join(tmpdir(), prefix));
    fx.git = await FaultyGitHttpServer.start({ root: join(fx.dir, 'git') });
    await seedRepo(join(fx.dir, 'git'), repo, files());
  });
  after(async () => {
    await fx.git?.close();
    if (fx.dir) await rm(fx.dir, { recursive: true, force: true });
  });
  return fx;
}

/** `arena-source worker` as its own process on `taskQueue`, its data under `dir`. */
async function startWorkerProcess(dir: string, taskQueue: string, env: NodeJS.ProcessEnv = {}, role?: 'workflows' | 'activities') {
  const args = ['--data-dir', join(dir, 'data'), '--temporal-address', temporalAddress(), '--task-queue', taskQueue];
  return startCli([...args, 'worker', ...(role ? ['--role', role] : []), '--metrics-port', String(await freePort())], env);
}

/**
 * The first worker of a kill test (a process the test kills) and a client; `run` gets both once the
 * worker is up, and the worker, the source's workflow and the client are cleaned up whatever happens.
 */
async function withWorkerToKill(
  opts: { dir: string; taskQueue: string; workflowId: string; env?: NodeJS.ProcessEnv; role?: 'activities' },
  run: (first: Proc, client: Client) => Promise<void>,
): Promise<void> {
  const first = await startWorkerProcess(opts.dir, opts.taskQueue, opts.env, opts.role);
  const client = await connectClient({ address: temporalAddress(), namespace: 'default' });
  try {
    await waitFor('first worker', async () => first.output(), (o) => o.includes('worker started'), 60_000);
    await run(first, client);
  } finally {
    await first.kill();
    await client.workflow.getHandle(opts.workflowId).terminate('done').catch(() => undefined);
    await client.connection.close();
  }
}

describe('a worker killed in the middle of a fetch', () => {
  const fx = gitServerFixture('arena-kill-', 'slow', () => ({ 'pack.json': '{"v":1}', 'more/data.txt': 'x'.repeat(10_000) }));

  it('another worker completes the cycle; no partial artifact is ever published', async () => {
    const taskQueue = uniqueTaskQueue('kill');
    const ns = 'killed';
    const { dir, git } = fx;
    await withWorkerToKill({ dir, taskQueue, workflowId: `arena-source/${ns}/victim` }, async (first, client) => {
      // Every request waits, so the fetch is still running when the worker dies.
      git.setFault({ kind: 'delay', ms: 1_500 });
      await applySource(client, taskQueue, source(ns, 'victim', { type: 'git', interval: '1h', timeout: '60s', git: { url: git.repoUrl('slow') } }), {
        heartbeatTimeoutMs: 3_000,
      });
      const events = join(dir, 'data', 'status', ns, 'victim.events.json');
      await waitFor('fetch started', () => readFile(events, 'utf8').catch(() => ''), (t) => t.includes('FetchStarted'), 60_000);
      await first.kill();
      git.setFault(null);
      assert.equal(await new FilesystemArtifactStore(join(dir, 'data', 'artifacts')).verify({ namespace: ns, name: 'victim' }, `sha256:${'0'.repeat(64)}`), false);
      const second = await startWorkerProcess(dir, taskQueue);
      try {
        const ready = await waitFor('Ready on the second worker', () => getSource(client, { namespace: ns, name: 'victim' }), (s) => s.status?.phase === 'Ready', 90_000);
        const store = new FilesystemArtifactStore(join(dir, 'data', 'artifacts'));
        assert.equal(await store.verify({ namespace: ns, name: 'victim' }, ready.status!.artifact!.checksum!), true);
        const history = await wholeHistory(client, `arena-source/${ns}/victim`);
        const timedOut = (history.events ?? []).filter((e) => e.activityTaskTimedOutEventAttributes);
        const retried = (history.events ?? []).some((e) => (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1);
        // The fetch ran in the worker's workflow task (a local activity): the task died with it and ran again.
        const taskLost = (history.events ?? []).some((e) => e.workflowTaskTimedOutEventAttributes || e.workflowTaskFailedEventAttributes);
        assert.ok(retried || timedOut.length > 0 || taskLost, 'the killed attempt was retried');
      } finally {
        await second.stop();
      }
    });
  });
});

describe('a worker killed after its fetch, while it packs the checkout', () => {
  // Incompressible content, so packing takes long enough for the kill to land inside it.
  const fx = gitServerFixture('arena-kill-pinned-', 'pinned', () => ({ 'pack.json': '{"v":1}', 'data.bin': randomBytes(6 * 1024 * 1024) }));

  it('one worker doing it all: the workflow task is lost with it, and another worker runs the whole cycle', async () => {
    const taskQueue = uniqueTaskQueue('pinned-here');
    const ns = 'pinned-here';
    const { dir, git } = fx;
    const workflowId = `arena-source/${ns}/orphaned`;
    await withWorkerToKill({ dir, taskQueue, workflowId, env: { ARENA_SOURCE_LOG_LEVEL: 'debug' } }, async (first, client) => {
      const killedAtPack = new Promise<void>((resolve) => {
        first.child.stdout!.on('data', (chunk: Buffer) => {
          if (chunk.toString().split('\n').some((line) => line.includes('"activityType":"packBundleHere"') && line.includes('Activity started'))) {
            first.child.kill('SIGKILL');
            resolve();
          }
        });
      });
      await applySource(client, taskQueue, source(ns, 'orphaned', { type: 'git', interval: '1h', timeout: '60s', git: { url: git.repoUrl('pinned') } }));
      await killedAtPack;
      await first.kill();
      assert.deepEqual(await readdir(join(dir, 'data', 'artifacts', ns)).catch(() => []), [], 'nothing was stored by the killed worker');
      const second = await startWorkerProcess(dir, taskQueue);
      try {
        const ready = await waitFor('Ready on the second worker', () => getSource(client, { namespace: ns, name: 'orphaned' }), (s) => s.status?.phase === 'Ready', 90_000);
        const store = new FilesystemArtifactStore(join(dir, 'data', 'artifacts'));
        assert.equal(await store.verify({ namespace: ns, name: 'orphaned' }, ready.status!.artifact!.checksum!), true, 'the published artifact matches its checksum');
        const events = (await wholeHistory(client, workflowId)).events ?? [];
        assert.ok(events.some((e) => e.workflowTaskTimedOutEventAttributes || e.workflowTaskFailedEventAttributes), "the killed worker's workflow task was lost");
        // Only the second worker's cycle is in history: one fetch, one upload, both local, nothing through the server.
        const calls = activityCalls(events).map((c) => `${c.type}:${c.local ? 'local' : 'remote'}`);
        assert.deepEqual(calls.filter((c) => /^(fetch|pack|upload)/.test(c)), ['fetchSourceHere:local', 'packBundleHere:local', 'uploadArtifactHere:local']);
      } finally {
        await second.stop();
      }
    });
  });

  it('split roles: the checkout is lost with the activities worker, and the cycle fetches again on another', async () => {
    const taskQueue = uniqueTaskQueue('pinned');
    const ns = 'pinned';
    const { dir, git } = fx;
    const workflowId = `arena-source/${ns}/orphaned`;
    // A workflows worker that lives through it: the fetch and the pinned steps are remote activities.
    const workflows = await startWorkerProcess(dir, taskQueue, {}, 'workflows');
    try {
      await waitFor('workflows worker', async () => workflows.output(), (o) => o.includes('worker started'), 60_000);
      // Debug level: the SDK logs 'Activity started' with the activity type, which is when the kill lands.
      await withWorkerToKill({ dir, taskQueue, workflowId, env: { ARENA_SOURCE_LOG_LEVEL: 'debug' }, role: 'activities' }, async (first, client) => {
        const killedAtPack = new Promise<void>((resolve) => {
          first.child.stdout!.on('data', (chunk: Buffer) => {
            const started = chunk.toString().split('\n').some((line) => /"activityType":"packBundle(Here)?"/.test(line) && line.includes('Activity started'));
            if (started) {
              first.child.kill('SIGKILL');
              resolve();
            }
          });
        });
        await applySource(client, taskQueue, source(ns, 'orphaned', { type: 'git', interval: '1h', timeout: '60s', git: { url: git.repoUrl('pinned') } }), {
          heartbeatTimeoutMs: 2_000,
          pinnedScheduleToStartMs: 2_000,
        });
        await killedAtPack;
        await first.kill();
        const store = new FilesystemArtifactStore(join(dir, 'data', 'artifacts'));
        assert.deepEqual(await readdir(join(dir, 'data', 'artifacts', ns)).catch(() => []), [], 'nothing was stored by the killed worker');
        const second = await startWorkerProcess(dir, taskQueue, {}, 'activities');
        try {
          const ready = await waitFor('Ready on the second worker', () => getSource(client, { namespace: ns, name: 'orphaned' }), (s) => s.status?.phase === 'Ready', 90_000);
          assert.equal(await store.verify({ namespace: ns, name: 'orphaned' }, ready.status!.artifact!.checksum!), true, 'the published artifact matches its checksum');

          const events = (await wholeHistory(client, workflowId)).events ?? [];
          const scheduled = new Map<string, string>();
          for (const e of events) {
            const a = e.activityTaskScheduledEventAttributes;
            if (a) scheduled.set(String(e.eventId), `${a.activityType?.name}@${a.taskQueue?.name}`);
          }
          const timeouts = events
            .filter((e) => e.activityTaskTimedOutEventAttributes)
            .map((e) => ({
              activity: scheduled.get(String(e.activityTaskTimedOutEventAttributes!.scheduledEventId)) ?? '',
              type: decodeTimeoutType(e.activityTaskTimedOutEventAttributes!.failure?.timeoutFailureInfo?.timeoutType),
            }));
          // The pack waited on the dead worker's own queue until schedule-to-start gave up on it...
          assert.ok(
            timeouts.some((t) => t.activity.startsWith('packBundle@') && t.activity.includes('/worker/') && t.type === 'SCHEDULE_TO_START'),
            `pack timed out on the dead worker's queue: ${JSON.stringify(timeouts)}`,
          );
          // ...and the source was fetched again, by the second worker.
          const fetchers = events
            .filter((e) => e.activityTaskStartedEventAttributes && scheduled.get(String(e.activityTaskStartedEventAttributes.scheduledEventId))?.startsWith('fetchSource@'))
            .map((e) => e.activityTaskStartedEventAttributes!.identity);
          assert.equal(fetchers.length, 2, `two fetches: ${JSON.stringify(fetchers)}`);
          assert.notEqual(fetchers[0], fetchers[1], 'the second fetch ran on another worker');
          // Uploads on a worker's queue, or here (a local activity on the worker holding the checkout).
          const uploads = activityCalls(events).filter(
            (c) => c.type === 'uploadArtifact' || (c.type === 'uploadArtifactHere' && c.result && defaultPayloadConverter.fromPayload<{ here: boolean }>(c.result).here),
          );
          assert.equal(uploads.length, 1, 'exactly one upload, by the second worker');
        } finally {
          await second.stop();
        }
      });
    } finally {
      await workflows.kill();
    }
  });
});

describe('a worker killed while it writes a version to the content volume', () => {
  // Thousands of small files: extracting and fsyncing them takes long enough to kill the worker inside it.
  const fx = gitServerFixture('arena-kill-content-', 'many', () => {
    const files: Record<string, string> = { 'config.arena.yaml': 'kind: Arena\n' };
    for (let i = 0; i < 3_000; i++) files[`prompts/p${i}.yaml`] = `id: p${i}\n`;
    return files;
  });

  it('no partial version is ever visible; another worker publishes it whole and clears the staging', async () => {
    const taskQueue = uniqueTaskQueue('kill-content');
    const ns = 'content-kill';
    const { dir, git } = fx;
    const contentRoot = join(dir, 'workspace-content');
    const arena = join(contentRoot, ns, ns, 'arena', 'victim', '.arena');
    const workflowId = `arena-source/${ns}/victim`;
    await withWorkerToKill({ dir, taskQueue, workflowId, env: { ARENA_SOURCE_CONTENT_ROOT: contentRoot } }, async (first, client) => {
      // Heartbeats every 2 s: a 6 s timeout notices the kill quickly without tripping on a loaded machine.
      await applySource(client, taskQueue, source(ns, 'victim', { type: 'git', interval: '1h', timeout: '120s', git: { url: git.repoUrl('many') } }), {
        heartbeatTimeoutMs: 6_000,
        pinnedScheduleToStartMs: 3_000,
      });
      // Killed once the version is being written into staging, before it can be renamed into view.
      const staging = join(arena, 'staging');
      await waitFor('materialization under way', async () => {
        const entries = await readdir(staging).catch(() => [] as string[]);
        return entries.length > 0 ? (await readdir(join(staging, entries[0]!)).catch(() => [] as string[])).length : 0;
      }, (files) => files > 0, 60_000, 5);
      await first.kill();
      assert.deepEqual(await readdir(join(arena, 'versions')).catch(() => []), [], 'no version became visible');
      await assert.rejects(readFile(join(arena, 'HEAD')), 'HEAD was never written');

      const second = await startWorkerProcess(dir, taskQueue, { ARENA_SOURCE_CONTENT_ROOT: contentRoot });
      try {
        const ready = await waitFor('Ready on the second worker', () => getSource(client, { namespace: ns, name: 'victim' }), (s) => s.status?.phase === 'Ready', 90_000);
        const version = ready.status!.artifact!.version!;
        assert.deepEqual(await readdir(join(arena, 'versions')), [version]);
        assert.equal(await readFile(join(arena, 'HEAD'), 'utf8'), version);
        assert.equal((await readdir(join(arena, 'versions', version, 'prompts'))).length, 3_000, 'the version is whole');
        assert.deepEqual(await readdir(staging).catch(() => []), [], "the killed attempt's staging is gone");
      } finally {
        await second.stop();
      }
    });
  });
});

describe('the Temporal server restarted under running workflows', () => {
  it('every source continues afterwards', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'arena-restart-'));
    const port = await freePort();
    let temporal = await startTemporalDevServer({ port, dbFilename: join(dir, 'temporal.db') });
    const git = await GitHttpServer.start({ root: join(dir, 'git') });
    await seedRepo(join(dir, 'git'), 'r', { 'pack.json': '{"v":1}' });
    const taskQueue = uniqueTaskQueue('restart');
    const stack = await startLocalStack({ dataDir: join(dir, 'data'), temporalAddress: `127.0.0.1:${port}`, taskQueue });
    const refs = ['one', 'two', 'three'].map((name) => ({ namespace: 'restart', name }));
    try {
      for (const ref of refs) {
        await applySource(stack.client, taskQueue, source(ref.namespace, ref.name, { type: 'git', interval: '1s', git: { url: git.repoUrl('r') } }));
      }
      for (const ref of refs) await waitFor(`${ref.name} Ready`, () => getSource(stack.client, ref), (s) => s.status?.phase === 'Ready', 60_000);
      const before = await Promise.all(refs.map((ref) => getCounters(stack.client, ref)));
      await temporal.stop();
      await new Promise((r) => setTimeout(r, 2_000));
      temporal = await startTemporalDevServer({ port, dbFilename: join(dir, 'temporal.db') });
      const sha = await commitFiles(bareRepoPath(join(dir, 'git'), 'r'), { 'pack.json': '{"v":2}' }, { branch: 'main', message: 'v2' });
      for (const [i, ref] of refs.entries()) {
        const after = await waitFor(`${ref.name} continues`, () => getSource(stack.client, ref), (s) => s.status?.artifact?.revision === `main@sha1:${sha}`, 90_000);
        assert.equal(after.status!.phase, 'Ready');
        assert.ok((await getCounters(stack.client, ref)).cycles > before[i]!.cycles);
      }
    } finally {
      for (const ref of refs) await stack.client.workflow.getHandle(`arena-source/${ref.namespace}/${ref.name}`).terminate().catch(() => undefined);
      await stack.close();
      await git.close();
      await temporal.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** A real full filesystem needs a tmpfs mount, which needs root. */
function canMount(): string | false {
  if (process.getuid?.() !== 0) return 'mounting a small tmpfs needs root';
  return false;
}

describe('a full disk under the artifact store', { skip: canMount() }, () => {
  let env: TestEnv;
  let mountPoint: string;
  before(async () => {
    env = await startTestEnv('full');
    mountPoint = join(env.stack.store.root);
    await mkdir(mountPoint, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'tmpfs', mountPoint]);
  });
  after(async () => {
    if (mountPoint) execFileSync('umount', ['-l', mountPoint]);
    await env?.close();
  });

  it('ends in Error/StorageFailed with a clear message, and the previous artifact stays intact', async () => {
    await seedRepo(env.gitRoot, 'big', { 'pack.json': '{"v":1}' });
    await env.apply('big', { type: 'git', interval: '1h', git: { url: env.git.repoUrl('big') } });
    const ready = await env.waitFor('big', 'Ready', (s) => s.status?.phase === 'Ready');
    // Random bytes do not compress: this archive cannot fit in 512 KiB.
    await commitFiles(bareRepoPath(env.gitRoot, 'big'), { 'blob.bin': randomBytes(1_500_000) }, { branch: 'main', message: 'big' });
    const { reconcileSource } = await import('../../src/client.js');
    await reconcileSource(env.stack.client, { namespace: env.namespace, name: 'big' });
    const failed = await env.waitFor('big', 'Error', (s) => s.status?.phase === 'Error', 60_000);
    const cond = findCondition(failed.status!.conditions, 'Ready')!;
    assert.equal(cond.reason, 'StorageFailed');
    assert.match(cond.message, /no space|ENOSPC|full/i);
    assert.deepEqual(failed.status!.artifact, ready.status!.artifact);
    const dl = await env.download(ready.status!.artifact!.url);
    assert.equal(dl.status, 200);
    assert.equal(dl.sha256, ready.status!.artifact!.checksum);
  });
});
