import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FIRST_RETRY_MS, MAX_RETRY_MS, backsOff, retryDelayMs } from '../../workflows/backoff.js';

const HOUR = 3_600_000;
const MIN = 60_000;

describe('failure backoff', () => {
  it('doubles from 5 s (random 0.5 is the unjittered delay)', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map((n) => retryDelayMs(n, HOUR, 0.5)),
      [5_000, 10_000, 20_000, 40_000, 80_000, 160_000],
    );
    assert.equal(retryDelayMs(1, HOUR, 0.5), FIRST_RETRY_MS);
  });

  it('is capped at min(interval, 10 min), jitter included', () => {
    assert.equal(retryDelayMs(20, HOUR, 0.5), MAX_RETRY_MS);
    assert.equal(retryDelayMs(20, HOUR, 1), MAX_RETRY_MS);
    assert.equal(retryDelayMs(20, HOUR, 0), 0.9 * MAX_RETRY_MS);
    assert.equal(retryDelayMs(10, 2 * MIN, 0.99), 2 * MIN, 'a short interval caps it lower');
    assert.equal(retryDelayMs(1, 1_000, 0.5), 1_000, 'never later than a healthy source would poll');
    assert.equal(retryDelayMs(10_000, HOUR, 0.5), MAX_RETRY_MS, 'no overflow after many failures');
  });

  it('jitters ±10% below the cap', () => {
    assert.equal(retryDelayMs(3, HOUR, 0), 18_000);
    assert.equal(retryDelayMs(3, HOUR, 1), 22_000);
    for (const r of [0, 0.13, 0.5, 0.77, 0.999]) {
      const d = retryDelayMs(4, HOUR, r);
      assert.ok(d >= 36_000 && d <= 44_000, `${d}`);
    }
  });

  it('a first retry within a minute of the first failure, the cap after ~7 failures', () => {
    const total = (n: number) => Array.from({ length: n }, (_, i) => retryDelayMs(i + 1, HOUR, 1)).reduce((a, b) => a + b, 0);
    assert.ok(total(3) < MIN, 'three retries within the first minute');
    assert.equal(retryDelayMs(8, HOUR, 0.5), MAX_RETRY_MS);
  });

  it('stalled failures and rejected content do not back off', () => {
    assert.equal(backsOff('FetchFailed', false), true);
    assert.equal(backsOff('AuthenticationFailed', false), true, 'a Secret can be fixed without a spec change');
    assert.equal(backsOff('SecretNotFound', false), true);
    assert.equal(backsOff('StorageFailed', false), true);
    assert.equal(backsOff('InvalidSpec', true), false);
    assert.equal(backsOff('InvalidTargetPath', true), false);
    assert.equal(backsOff('UnsafeContent', false), false, 'waits for a new revision at the interval');
    assert.equal(backsOff('ArtifactTooLarge', false), false);
  });
});
