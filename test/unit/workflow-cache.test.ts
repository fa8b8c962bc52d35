/** The default workflow cache size: --max-cached-workflows, else the cgroup's memory.max, else a fixed default. */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { cachedWorkflowsFor, cgroupMemoryMax, heapLimitGiven, NO_LIMIT_MEMORY_BYTES, workflowCacheSize, workflowHeapLimitMiB } from '../../src/workflow-cache.js';

const MiB = 1024 * 1024;

describe('workflow cache size', () => {
  it('reads cgroup v2 memory.max: a number of bytes, or nothing for "max" or no file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cgroup-'));
    try {
      await writeFile(join(dir, 'limited'), `${512 * MiB}\n`);
      await writeFile(join(dir, 'unlimited'), 'max\n');
      assert.equal(cgroupMemoryMax(join(dir, 'limited')), 512 * MiB);
      assert.equal(cgroupMemoryMax(join(dir, 'unlimited')), undefined);
      assert.equal(cgroupMemoryMax(join(dir, 'missing')), undefined);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('grows with the pod memory and never goes below the SDK minimum', () => {
    assert.ok(cachedWorkflowsFor(1024 * MiB) > cachedWorkflowsFor(512 * MiB));
    assert.equal(cachedWorkflowsFor(64 * MiB), 2);
  });

  it('a flag wins, then the cgroup limit, then the default', () => {
    assert.deepEqual(workflowCacheSize(7, 1024 * MiB), { maxCachedWorkflows: 7, from: 'flag' });
    assert.equal(workflowCacheSize(undefined, 1024 * MiB).from, 'cgroup memory.max');
    assert.equal(workflowCacheSize(undefined, 1024 * MiB).maxCachedWorkflows, cachedWorkflowsFor(1024 * MiB));
    assert.deepEqual(workflowCacheSize(undefined, undefined), {
      maxCachedWorkflows: cachedWorkflowsFor(NO_LIMIT_MEMORY_BYTES),
      from: 'machine memory (no limit found)',
      memoryBytes: NO_LIMIT_MEMORY_BYTES,
    });
    assert.ok(NO_LIMIT_MEMORY_BYTES <= 2048 * MiB, 'never plans for more than 2 GiB without a limit');
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
