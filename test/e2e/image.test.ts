/**
 * The product image as a cluster runs it: built by test/image/build.sh from deploy/Dockerfile
 * (on registry-free stand-in base images), started by podman with the pods' security settings
 * (read-only root filesystem, uid 65532, no capabilities, a tmpfs at /tmp like the emptyDir),
 * on the host network so that it reaches the suite's Temporal dev server and a git server on
 * 127.0.0.1. `podman stop` sends SIGTERM as the kubelet does.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { API_VERSION, KIND } from '../../src/api/schema.js';
import { parseArenaSource } from '../../src/api/validate.js';
import { applySource, connectClient, getSource } from '../../src/client.js';
import { GitHttpServer } from '../../src/dev/demo-git/git-http-server.js';
import { seedRepo } from '../../src/dev/demo-git/repo.js';
import { freePort } from '../helpers/processes.js';
import { podman, podmanSkipReason, run } from '../helpers/podman.js';
import { temporalAddress, uniqueTaskQueue } from '../helpers/temporal.js';
import { waitFor } from '../helpers/wait.js';

const SECURE = ['--network', 'host', '--read-only', '--user', '65532:65532', '--cap-drop', 'ALL', '--tmpfs', '/tmp'];
const BUILD_TIMEOUT_MS = 30 * 60_000; // cold: base images and every layer, on a busy 2-core machine

describe('the product image', { skip: podmanSkipReason() }, () => {
  let image: string;
  const containers: string[] = [];

  const start = async (name: string, args: string[]): Promise<string> => {
    const container = `arena-e2e-${name}-${process.pid}`;
    containers.push(container);
    const res = await podman(['run', '-d', '--name', container, ...SECURE, image, ...args]);
    assert.equal(res.code, 0, res.stderr);
    return container;
  };
  const logs = async (container: string) => {
    const res = await podman(['logs', container]);
    return res.stdout + res.stderr;
  };
  /** podman stop (SIGTERM, SIGKILL only after 60 s), then the container's exit code. */
  const stop = async (container: string): Promise<number> => {
    const res = await podman(['stop', '-t', '60', container]);
    assert.equal(res.code, 0, res.stderr);
    return Number((await podman(['inspect', '--format', '{{.State.ExitCode}}', container])).stdout.trim());
  };
  const get = async (url: string) => {
    const res = await fetch(url);
    return { status: res.status, body: await res.text() };
  };

  before(
    async () => {
      const built = await run('bash', ['test/image/build.sh', '--tag', 'e2e'], BUILD_TIMEOUT_MS);
      assert.equal(built.code, 0, built.stderr.slice(-5000));
      image = built.stdout.trim();
      assert.equal(image, 'localhost/arena-source:e2e');
    },
    { timeout: BUILD_TIMEOUT_MS },
  );
  after(async () => {
    for (const container of containers) await podman(['rm', '-f', '-t', '0', container]);
  });

  it('runs as 65532, ships the product code only (no test/ or bench/), with git, ssh and oras', async () => {
    assert.equal((await podman(['image', 'inspect', '--format', '{{.Config.User}}', image])).stdout.trim(), '65532:65532');
    const sh = (script: string) => podman(['run', '--rm', ...SECURE, '--entrypoint', 'sh', image, '-c', script]);
    assert.equal((await sh('id -u')).stdout.trim(), '65532');
    assert.deepEqual((await sh('ls /app')).stdout.split('\n').filter(Boolean), ['bin', 'dist', 'node_modules', 'package.json']);
    // The workflow bundle made at build time (src/workflow-bundle.ts) ships beside the code it was made from.
    assert.deepEqual((await sh('ls /app/dist')).stdout.split('\n').filter(Boolean), [
      'activities',
      'src',
      'workflow-bundle.fingerprint',
      'workflow-bundle.js',
      'workflows',
    ]);
    const strays = await sh('find /app/dist /app/bin -name "*.test.js" -o -path "*/test/*" -o -path "*/bench/*"');
    assert.equal(strays.code, 0, strays.stderr);
    assert.equal(strays.stdout, '', 'test or bench code in the image');
    const tools = await sh('git --version && ssh -V && oras version');
    assert.equal(tools.code, 0, tools.stderr);
    assert.match(tools.stdout, /^git version 2\./m);
    assert.match(tools.stdout, /^Version:\s+1\.3\.6/m);
    // node runs on jemalloc (deploy/Dockerfile's LD_PRELOAD); git, ssh and oras run on glibc's malloc.
    const mapped = await sh(`node -e "process.stdout.write(String(/libjemalloc/.test(require('fs').readFileSync('/proc/self/maps', 'utf8'))))"`);
    assert.equal(mapped.stdout, 'true', mapped.stderr);
  });

  it('serve: /healthz answers with a read-only root and no capabilities; SIGTERM exits 0', async () => {
    const port = await freePort();
    const container = await start('serve', ['--data-dir', '/tmp/data', 'serve', '--port', String(port)]);
    const fail = async (err: Error) => assert.fail(`${err.message}\n${await logs(container)}`);
    await waitFor('serve /healthz', () => get(`http://127.0.0.1:${port}/healthz`), (r) => r.status === 200, 60_000).catch(fail);
    assert.equal(await stop(container), 0, await logs(container));
  });

  it('worker: /readyz turns 200 against Temporal, a git source gets Ready; SIGTERM drains and exits 0', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'arena-image-'));
    const git = await GitHttpServer.start({ root: join(dir, 'git') });
    const client = await connectClient({ address: temporalAddress(), namespace: 'default' });
    try {
      await seedRepo(join(dir, 'git'), 'packs', { 'pack.json': '{"id":"p"}' });
      const taskQueue = uniqueTaskQueue('image');
      const port = await freePort();
      const container = await start('worker', [
        '--data-dir', '/tmp/data', '--temporal-address', temporalAddress(), '--task-queue', taskQueue,
        'worker', '--metrics-port', String(port), '--shutdown-grace', '5s',
      ]);
      const fail = async (err: Error) => assert.fail(`${err.message}\n${await logs(container)}`);
      const ready = await waitFor('worker /readyz', () => get(`http://127.0.0.1:${port}/readyz`), (r) => r.status === 200, 180_000).catch(fail);
      assert.equal(ready.body, 'ok temporal\nok workers\n');
      assert.deepEqual(await get(`http://127.0.0.1:${port}/healthz`), { status: 200, body: 'ok\n' });
      assert.match(await logs(container), /"workflowBundle":"prebuilt"/, 'the worker loads the bundle the image build made (no webpack at start-up)');

      // git, pack and upload inside the container: HOME and the work and data dirs on /tmp only.
      const namespace = `i${taskQueue.replace(/[^a-z0-9]/g, '').slice(-12)}`;
      const source = parseArenaSource({
        apiVersion: API_VERSION,
        kind: KIND,
        metadata: { name: 'imaged', namespace },
        spec: { type: 'git', interval: '1h', git: { url: git.repoUrl('packs') } },
      });
      await applySource(client, taskQueue, source);
      const got = await waitFor('source Ready', () => getSource(client, { namespace, name: 'imaged' }), (s) => s.status?.phase === 'Ready', 120_000)
        .catch(fail);
      assert.match(got.status!.artifact!.revision, /^main@sha1:[0-9a-f]{40}$/);
      await client.workflow.getHandle(`arena-source/${namespace}/imaged`).terminate('test done');

      assert.equal(await stop(container), 0, await logs(container));
      assert.match(await logs(container), /"worker stopped"/);
    } finally {
      await client.connection.close();
      await git.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
