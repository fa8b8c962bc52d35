/** The default workflow cache size: --max-cached-workflows, else the cgroup's memory limit, else a share of the machine. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createMemoryCgroup } from '../helpers/cgroup.js';
import { cachedWorkflowsFor, heapLimitGiven, memoryLimit, MIN_CACHED_WORKFLOWS, NO_LIMIT_MEMORY_BYTES, workflowCacheSize, workflowHeapLimitMiB } from '../../src/workflow-cache.js';

const MiB = 1024 * 1024;

describe('workflow cache size', () => {
  it('takes the memory limit Node reads from the cgroup; none when unconstrained', () => {
    assert.equal(memoryLimit(512 * MiB, 24 * 1024 * MiB), 512 * MiB);
    assert.equal(memoryLimit(0, 24 * 1024 * MiB), undefined, 'Node answers 0 without a limit');
    assert.equal(memoryLimit(2 ** 64, 24 * 1024 * MiB), undefined, 'or a number past the machine (cgroup v1 "no limit")');
  });

  it('a process in a real 512 MiB memory cgroup sizes its cache from the limit, as in a pod', async () => {
    const cgroup = await createMemoryCgroup(`arena-source-test-${process.pid}`, 512 * MiB);
    try {
      const module = fileURLToPath(new URL('../../src/workflow-cache.js', import.meta.url));
      const script = `import(${JSON.stringify(module)}).then((m) => console.log(JSON.stringify(m.workflowCacheSize())))`;
      const { command, args } = cgroup.wrap(process.execPath, ['-e', script]);
      const size = JSON.parse(execFileSync(command, args, { encoding: 'utf8' }));
      assert.deepEqual(size, { maxCachedWorkflows: cachedWorkflowsFor(512 * MiB), minCachedWorkflows: MIN_CACHED_WORKFLOWS, from: 'memory limit (cgroup)', memoryBytes: 512 * MiB }, `cgroup v${cgroup.version}`);
    } finally {
      await cgroup.remove();
    }
  });

  it('grows with the pod memory and never goes below the SDK minimum', () => {
    assert.ok(cachedWorkflowsFor(1024 * MiB) > cachedWorkflowsFor(512 * MiB));
    assert.equal(cachedWorkflowsFor(64 * MiB), 2);
  });

  it('a flag wins, then the cgroup limit, then the default', () => {
    assert.deepEqual(workflowCacheSize(7, 1024 * MiB), { maxCachedWorkflows: 7, minCachedWorkflows: 7, from: 'flag' }, 'a minimum above the maximum is the maximum: a fixed cache');
    assert.equal(workflowCacheSize(undefined, 1024 * MiB).from, 'memory limit (cgroup)');
    assert.equal(workflowCacheSize(undefined, 1024 * MiB).maxCachedWorkflows, cachedWorkflowsFor(1024 * MiB));
    assert.deepEqual(workflowCacheSize(undefined, undefined), {
      maxCachedWorkflows: cachedWorkflowsFor(NO_LIMIT_MEMORY_BYTES),
      minCachedWorkflows: MIN_CACHED_WORKFLOWS,
      from: 'machine memory (no limit found)',
      memoryBytes: NO_LIMIT_MEMORY_BYTES,
    });
    assert.ok(NO_LIMIT_MEMORY_BYTES <= 2048 * MiB, 'never plans for more than 2 GiB without a limit');
    assert.equal(workflowCacheSize(undefined, 1024 * MiB, 300).minCachedWorkflows, 300, '--min-cached-workflows');
    assert.equal(workflowCacheSize(1000, undefined, 1).minCachedWorkflows, 2, 'never under the SDK minimum');
  });

  it('workflow threads get a heap sized to the cache, unless node was given a limit', () => {
    assert.ok(workflowHeapLimitMiB(2272) > workflowHeapLimitMiB(300));
    assert.ok(workflowHeapLimitMiB(300) >= 128 && workflowHeapLimitMiB(300) < 256, String(workflowHeapLimitMiB(300)));
    assert.equal(heapLimitGiven([], '--max-semi-space-size=1 --max-old-space-size=900'), true);
    assert.equal(heapLimitGiven(['--max_old_space_size=900'], ''), true);
    assert.equal(heapLimitGiven([], '--max-semi-space-size=1'), false);
    // In a process of its own: the limit applies to the threads started after it, as the SDK's are.
    const module = fileURLToPath(new URL('../../src/workflow-cache.js', import.meta.url));
    const script = `(async () => {
      const { limitWorkflowHeaps } = await import(${JSON.stringify(module)});
      const { Worker } = require('node:worker_threads');
      const set = limitWorkflowHeaps(300);
      const code = "require('node:worker_threads').parentPort.postMessage(require('node:v8').getHeapStatistics().heap_size_limit)";
      const limit = await new Promise((resolve) => { const w = new Worker(code, { eval: true }); w.on('message', (m) => { resolve(m); void w.terminate(); }); });
      console.log(JSON.stringify({ set, threadMiB: limit / 1048576 }));
    })();`;
    const run = (nodeOptions: string) =>
      JSON.parse(execFileSync(process.execPath, ['-e', script], { env: { ...process.env, NODE_OPTIONS: nodeOptions }, encoding: 'utf8' })) as { set?: number; threadMiB: number };
    const limited = run('');
    assert.equal(limited.set, workflowHeapLimitMiB(300));
    // heap_size_limit is the old generation plus the young one.
    assert.ok(limited.threadMiB >= limited.set! && limited.threadMiB < limited.set! + 64, JSON.stringify(limited));
    const given = run('--max-old-space-size=900');
    assert.equal(given.set, undefined);
    assert.ok(given.threadMiB >= 900, JSON.stringify(given));
  });
});
