/**
 * Backoff after failure against a real git server that goes down and comes back:
 * a source polled hourly retries after 5 s, 10 s, 20 s… (not an hour), shows the
 * retry in nextFetchTime and Reconciling=ProgressingWithRetry, and is Ready again
 * within a minute of the server's return, back on its hourly interval.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { findCondition } from '../../src/api/status.js';
import type { ArenaSource } from '../../src/api/schema.js';
import { reconcileSource } from '../../src/client.js';
import { seedRepo } from '../../src/dev/demo-git/repo.js';
import { startTestEnv, type TestEnv } from '../helpers/env.js';

const MINUTE = 60_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** How far ahead the next fetch was scheduled when this status was written (lastFetchTime is the cycle's start). */
const scheduledAhead = (s: ArenaSource) => Date.parse(s.status!.nextFetchTime!) - Date.parse(s.status!.lastFetchTime!);

describe('failure backoff', () => {
  let env: TestEnv;
  before(async () => {
    env = await startTestEnv('backoff');
  });
  after(async () => env?.close());

  it('interval 1h: retries within seconds while the git server is down, Ready within a minute of its return', async () => {
    const sha = await seedRepo(env.gitRoot, 'hourly', { 'pack.json': '{"id":"p","version":"1"}' });
    await env.apply('hourly', { type: 'git', interval: '1h', timeout: '5s', git: { url: env.git.repoUrl('hourly') } });
    const ready = await env.waitFor('hourly', 'Ready', (s) => s.status?.phase === 'Ready', 60_000);
    assert.ok(scheduledAhead(ready) > 50 * MINUTE, 'a healthy source waits its interval');

    env.git.setFault({ kind: 'down' });
    // The next poll is an hour away: ask for a cycle now, as a user or a webhook would.
    await reconcileSource(env.stack.client, { namespace: env.namespace, name: 'hourly' }, new Date().toISOString());
    const failed = await env.waitFor('hourly', 'Error', (s) => s.status?.phase === 'Error', 60_000);
    const before = (await env.counters('hourly')).failures;
    assert.ok(scheduledAhead(failed) < MINUTE, `the retry is seconds away, not an hour: ${failed.status!.nextFetchTime}`);
    const reconciling = findCondition(failed.status!.conditions, 'Reconciling')!;
    assert.deepEqual({ status: reconciling.status, reason: reconciling.reason }, { status: 'True', reason: 'ProgressingWithRetry' });
    assert.match(reconciling.message, /^FetchFailed: .*retrying at /);
    assert.equal(findCondition(failed.status!.conditions, 'Stalled'), undefined, 'a transient failure does not stall');
    assert.deepEqual(failed.status!.artifact, ready.status!.artifact, 'the last artifact is still served');

    // Retried while down (an hourly poll would not have tried again), each retry scheduled later.
    const again = await env.waitFor(
      'hourly',
      'a retry that failed too',
      (s) => s.status?.phase === 'Error' && s.status.nextFetchTime !== failed.status!.nextFetchTime,
      60_000,
    );
    assert.ok(Date.parse(again.status!.nextFetchTime!) > Date.parse(failed.status!.nextFetchTime!));
    assert.ok(scheduledAhead(again) < MINUTE);
    assert.ok((await env.counters('hourly')).failures > before, 'more failed cycles while down');
    await sleep(10_000);

    env.git.setFault(null);
    const back = await env.waitFor('hourly', 'Ready within a minute of the server coming back', (s) => s.status?.phase === 'Ready', MINUTE);
    assert.equal(back.status!.artifact!.revision, `main@sha1:${sha}`);
    assert.ok(scheduledAhead(back) > 50 * MINUTE, `the first success returns to the interval: ${back.status!.nextFetchTime}`);
    assert.equal(findCondition(back.status!.conditions, 'Reconciling'), undefined);
  });
});
