/**
 * The Kubernetes probes of `arena-source worker` and `arena-source controller` run as
 * processes (as in their pods), against the suite's Temporal dev server and a real
 * kube-apiserver: /healthz answers, /readyz turns 200 only when the process can do its
 * work (and names what is missing until then), and SIGTERM ends each one cleanly (exit 0).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort, startCli, type Proc } from '../helpers/processes.js';
import { installArenaSourceCrd, kubeSkipReason, startKube, type Kube } from '../helpers/kube.js';
import { temporalAddress, uniqueTaskQueue } from '../helpers/temporal.js';
import { waitFor } from '../helpers/wait.js';

async function probe(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

/** SIGTERM, then the exit code (null if a signal ended it). */
async function terminate(proc: Proc): Promise<number | null> {
  await proc.stop();
  return proc.child.exitCode;
}

describe('worker probes and shutdown', () => {
  let dir: string;
  let worker: Proc | undefined;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arena-probes-'));
  });
  after(async () => {
    await worker?.kill();
    await rm(dir, { recursive: true, force: true });
  });

  it('/readyz is 200 once both workers poll Temporal; SIGTERM drains and exits 0', async () => {
    const port = await freePort();
    worker = startCli([
      '--data-dir', dir, '--temporal-address', temporalAddress(), '--task-queue', uniqueTaskQueue('probes'),
      'worker', '--metrics-port', String(port), '--shutdown-grace', '5s',
    ]);
    const ready = await waitFor('worker /readyz 200', () => probe(port, '/readyz'), (r) => r.status === 200, 90_000)
      .catch((err) => assert.fail(`${err.message}\n${worker!.output()}`));
    assert.equal(ready.body, 'ok temporal\nok workers\n');
    assert.deepEqual(await probe(port, '/healthz'), { status: 200, body: 'ok\n' });

    assert.equal(await terminate(worker), 0, worker.output());
    assert.match(worker.output(), /worker shutting down/);
    assert.match(worker.output(), /"worker stopped"/);
  });
});

describe('controller probes and shutdown', { skip: kubeSkipReason() }, () => {
  let kube: Kube;
  let controller: Proc | undefined;

  before(async () => {
    kube = await startKube();
  });
  after(async () => {
    await controller?.kill();
    await kube?.close();
  });

  it('/readyz names the informers until the CRD exists, is 200 once they list and watch; SIGTERM exits 0', async () => {
    const port = await freePort();
    controller = startCli([
      '--temporal-address', temporalAddress(), '--task-queue', uniqueTaskQueue('probes'),
      'controller', '--kubeconfig', kube.kubeconfigPath, '--metrics-port', String(port),
    ]);
    const fail = (err: Error) => assert.fail(`${err.message}\n${controller!.output()}`);
    // No ArenaSource CRD yet: the API server and Temporal answer, the informer cannot list.
    const unready = await waitFor('controller /readyz names the informers', () => probe(port, '/readyz'),
      (r) => r.body.includes('failed informers'), 60_000).catch(fail);
    assert.equal(unready.status, 503);
    assert.match(unready.body, /^ok temporal$/m);
    assert.match(unready.body, /^ok kubernetes$/m);
    assert.deepEqual(await probe(port, '/healthz'), { status: 200, body: 'ok\n' });

    await installArenaSourceCrd(kube, { wait: false });
    const ready = await waitFor('controller /readyz 200', () => probe(port, '/readyz'), (r) => r.status === 200, 60_000).catch(fail);
    assert.equal(ready.body, 'ok temporal\nok kubernetes\nok informers\n');

    assert.equal(await terminate(controller), 0, controller.output());
    assert.match(controller.output(), /"controller stopped"/);
  });
});
