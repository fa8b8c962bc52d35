/**
 * The controller's work queue (src/controller/work-queue.ts): one entry per key, never
 * handed out twice at once, re-queued when added during processing, and retries that
 * back off per key (the delay returned is the one applied) under an overall rate.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WorkQueue } from '../../src/controller/work-queue.js';

describe('WorkQueue', () => {
  it('de-duplicates keys and hands them out in order', async () => {
    const q = new WorkQueue();
    for (const k of ['a', 'b', 'a', 'c', 'b']) q.add(k);
    assert.equal(q.length, 3);
    assert.deepEqual([await q.get(), await q.get(), await q.get()], ['a', 'b', 'c']);
  });

  it('a key added while processed is not handed out again until done, then once', async () => {
    const q = new WorkQueue();
    q.add('a');
    assert.equal(await q.get(), 'a');
    q.add('a');
    q.add('a');
    assert.equal(q.length, 0, 'held back while processing');
    q.done('a');
    assert.equal(q.length, 1);
    assert.equal(await q.get(), 'a');
    q.done('a');
    assert.equal(q.length, 0);
  });

  it('a waiting get receives the next key added', async () => {
    const q = new WorkQueue();
    const next = q.get();
    q.add('x');
    assert.equal(await next, 'x');
  });

  it('per-key exponential backoff, reset by forget, capped', () => {
    const q = new WorkQueue({ baseDelayMs: 100, maxDelayMs: 1_000 });
    const delays = Array.from({ length: 6 }, () => q.addRateLimited('k'));
    assert.deepEqual(delays, [100, 200, 400, 800, 1_000, 1_000]);
    assert.equal(q.retries('k'), 6);
    assert.equal(q.addRateLimited('other'), 100, 'keys back off independently');
    q.forget('k');
    assert.equal(q.addRateLimited('k'), 100);
    q.shutDown();
  });

  it('the overall bucket spaces retries once its burst is spent', () => {
    const q = new WorkQueue({ baseDelayMs: 1, qps: 10, burst: 2 });
    const delays = ['a', 'b', 'c', 'd'].map((k) => q.addRateLimited(k));
    assert.deepEqual(delays.slice(0, 2), [1, 1]);
    assert.ok(delays[2]! >= 90 && delays[3]! >= 190, delays.join(','));
    q.shutDown();
  });

  it('addAfter keeps the earliest wake-up; a rate-limited key arrives after its delay', async () => {
    const q = new WorkQueue({ baseDelayMs: 20 });
    q.addAfter('k', 60_000);
    q.addRateLimited('k');
    assert.equal(await q.get(), 'k');
    q.shutDown();
  });

  it('shutDown wakes waiting gets and drops pending retries', async () => {
    const q = new WorkQueue();
    const waiting = q.get();
    q.addAfter('later', 60_000);
    q.shutDown();
    assert.equal(await waiting, undefined);
    assert.equal(await q.get(), undefined);
    q.add('x');
    assert.equal(q.length, 0);
  });
});
