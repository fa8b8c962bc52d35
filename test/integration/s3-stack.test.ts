/**
 * The whole pipeline with the S3 store: real Temporal, real git, versitygw.
 * Two deployments (task queues) and, in one of them, two workers with their own
 * S3 clients reconcile different sources at once into one bucket and prefix;
 * any artifact server in front of the bucket serves every artifact.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { NativeConnection } from '@temporalio/worker';
import { retentionActivities } from '../../activities/retention.js';
import type { ArenaSource } from '../../src/api/schema.js';
import { DEFAULT_PACK_LIMITS } from '../../src/bundle/pack.js';
import { deleteSource, reconcileSource } from '../../src/client.js';
import { bareRepoPath, commitFiles, seedRepo } from '../../src/dev/demo-git/repo.js';
import type { SourceKey, StoredArtifact } from '../../src/store/artifact-store.js';
import { S3ArtifactStore } from '../../src/store/s3-store.js';
import { connectWorker, startWorker, type RunningWorker } from '../../src/worker.js';
import { startTestEnv, type TestEnv } from '../helpers/env.js';
import { startS3, type TestS3 } from '../helpers/s3.js';
import { temporalAddress } from '../helpers/temporal.js';

const PREFIX = 'fleet';
const pack = (id: string, v: string) => JSON.stringify({ id, version: v });

/** Records which artifacts this store instance (this worker) uploaded. */
class CountingS3Store extends S3ArtifactStore {
  readonly puts: string[] = [];
  override async put(source: SourceKey, file: string, checksum: string): Promise<StoredArtifact> {
    const stored = await super.put(source, file, checksum);
    this.puts.push(stored.key);
    return stored;
  }
}

describe('full stack on S3', () => {
  let s3: TestS3;
  let envA: TestEnv;
  let envB: TestEnv;
  let storeA1: CountingS3Store;
  let storeA2: CountingS3Store;
  let storeB: CountingS3Store;
  let connection: NativeConnection | undefined;
  let workerA2: RunningWorker | undefined;

  const objectKey = (env: TestEnv, name: string, checksum: string) => `${PREFIX}/${env.namespace}/${name}/${checksum.slice('sha256:'.length)}.tar.gz`;
  const keysUnder = async (prefix: string) =>
    ((await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix }))).Contents ?? []).map((o) => o.Key!).sort();

  before(async () => {
    s3 = await startS3();
    storeA1 = new CountingS3Store(s3.storeOptions(PREFIX));
    storeA2 = new CountingS3Store(s3.storeOptions(PREFIX));
    storeB = new CountingS3Store(s3.storeOptions(PREFIX));
    envA = await startTestEnv('s3a', { store: storeA1 });
    envB = await startTestEnv('s3b', { store: storeB });
    // A second worker process-equivalent on A's queue, with its own S3 client and scratch space.
    connection = await connectWorker(temporalAddress());
    workerA2 = await startWorker({
      connection,
      namespace: 'default',
      taskQueue: envA.taskQueue,
      workRoot: join(envA.dataDir, 'work-2'),
      deps: {
        store: storeA2,
        artifactBaseUrl: envA.stack.artifactServer.url,
        statusSink: envA.stack.statuses,
        resources: envA.stack.resources,
        packLimits: DEFAULT_PACK_LIMITS,
      },
    });
  });
  after(async () => {
    await workerA2?.shutdown();
    await connection?.close();
    await envA?.close();
    await envB?.close();
    for (const s of [storeA1, storeA2, storeB]) s?.destroy();
    await s3?.close();
  });

  it('workers of two deployments publish different sources at once into one bucket; every artifact server serves all', async () => {
    const names = ['alpha', 'beta', 'gamma'];
    const seed = async (env: TestEnv, name: string) => {
      const sha = await seedRepo(env.gitRoot, name, { 'pack.json': pack(`${env.namespace}-${name}`, '1'), 'prompts/a.md': `# ${name}\n` });
      return { name, sha, url: env.git.repoUrl(name) };
    };
    const reposA = await Promise.all(names.map((n) => seed(envA, n)));
    const reposB = await Promise.all(names.map((n) => seed(envB, n)));
    await Promise.all([
      ...reposA.map((r) => envA.apply(r.name, { type: 'git', interval: '1m', git: { url: r.url } })),
      ...reposB.map((r) => envB.apply(r.name, { type: 'git', interval: '1m', git: { url: r.url } })),
    ]);
    const ready = (env: TestEnv, r: { name: string; sha: string }) =>
      env.waitFor(r.name, 'Ready', (s) => s.status?.phase === 'Ready' && s.status.artifact?.revision === `main@sha1:${r.sha}`, 60_000);
    const srcA = await Promise.all(reposA.map((r) => ready(envA, r)));
    const srcB = await Promise.all(reposB.map((r) => ready(envB, r)));

    const check = async (env: TestEnv, other: TestEnv, s: ArenaSource) => {
      const art = s.status!.artifact!;
      const checksum = art.checksum!;
      const key = `${env.namespace}/${s.metadata.name}/${checksum.slice('sha256:'.length)}.tar.gz`;
      assert.equal(art.url, `${env.stack.artifactServer.url}/${key}`, 'status.artifact.url is the artifact server URL, not S3');
      const dl = await env.download(art.url);
      assert.equal(dl.status, 200);
      assert.equal(dl.sha256, art.checksum);
      assert.equal(dl.body.length, art.size);
      const viaOther = await other.download(`${other.stack.artifactServer.url}/${key}`);
      assert.equal(viaOther.sha256, art.checksum, 'the other deployment serves it from the same bucket');
      const head = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: `${PREFIX}/${key}` }));
      assert.equal(head.ContentLength, art.size);
      assert.equal(head.Metadata?.sha256, checksum.slice('sha256:'.length));
    };
    for (const s of srcA) await check(envA, envB, s);
    for (const s of srcB) await check(envB, envA, s);

    const uploadedA = [...storeA1.puts, ...storeA2.puts].sort();
    assert.deepEqual(
      uploadedA,
      srcA.map((s) => `${envA.namespace}/${s.metadata.name}/${s.status!.artifact!.checksum!.slice(7)}.tar.gz`).sort(),
      "A's sources were uploaded by A's workers, once each",
    );
    assert.equal(storeB.puts.length, 3);
    console.log(`# deployment A: worker 1 uploaded ${storeA1.puts.length}, worker 2 uploaded ${storeA2.puts.length}`);
    assert.deepEqual(
      (await keysUnder(`${PREFIX}/`)).length,
      6,
      'one object per source, nothing else (no temp or partial objects)',
    );
  });

  it('a new revision adds an artifact; retention and delete touch only their own source', async () => {
    const before = await envA.get('alpha');
    const old = before.status!.artifact!;
    const oldSum = old.checksum!;
    // S3's LastModified has one-second resolution: publish v2 in a later second than v1, so that
    // "newest" is not a tie (retention breaks ties by key, which could keep the older one).
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(old.lastUpdateTime) + 1_100 - Date.now())));
    const next = await commitFiles(bareRepoPath(envA.gitRoot, 'alpha'), { 'pack.json': pack('alpha', '2') }, { branch: 'main', message: 'v2' });
    await reconcileSource(envA.stack.client, { namespace: envA.namespace, name: 'alpha' });
    const after = await envA.waitFor('alpha', 'v2', (s) => s.status?.artifact?.revision === `main@sha1:${next}` && s.status.phase === 'Ready', 60_000);
    const cur = after.status!.artifact!;
    const curSum = cur.checksum!;
    assert.notEqual(curSum, oldSum);
    assert.deepEqual(await keysUnder(`${PREFIX}/${envA.namespace}/alpha/`), [objectKey(envA, 'alpha', oldSum), objectKey(envA, 'alpha', curSum)].sort());

    // Retention with keep 1 and no TTL, as the workflow's pruneArtifacts would run it.
    const { pruneArtifacts } = retentionActivities({ store: storeA2, retention: { keep: 1, ttlMs: 0 } });
    const pruned = await pruneArtifacts({ source: { namespace: envA.namespace, name: 'alpha' }, current: curSum });
    assert.deepEqual(pruned.deleted, [`${envA.namespace}/alpha/${oldSum.slice(7)}.tar.gz`]);
    assert.equal((await envA.download(cur.url!)).sha256, curSum);
    assert.equal((await envA.download(old.url!)).status, 404);

    // Delete: the workflow's removeSource empties the source's prefix only.
    assert.equal(await deleteSource(envA.stack.client, { namespace: envA.namespace, name: 'alpha' }), true);
    assert.deepEqual(await keysUnder(`${PREFIX}/${envA.namespace}/alpha/`), []);
    assert.equal((await keysUnder(`${PREFIX}/${envA.namespace}/`)).length, 2, "A's other sources stay");
    assert.equal((await keysUnder(`${PREFIX}/${envB.namespace}/`)).length, 3, "B's sources stay");
    const beta = await envA.get('beta');
    assert.equal((await envB.download(`${envB.stack.artifactServer.url}/${envA.namespace}/beta/${beta.status!.artifact!.checksum!.slice(7)}.tar.gz`)).status, 200);
  });
});
