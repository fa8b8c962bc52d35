/** The default workflow cache size: --max-cached-workflows, else the cgroup's memory.max, else a fixed default. */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { cachedWorkflowsFor, cgroupMemoryMax, NO_LIMIT_MEMORY_BYTES, workflowCacheSize } from '../../src/workflow-cache.js';

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
});
