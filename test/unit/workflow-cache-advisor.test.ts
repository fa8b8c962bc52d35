/** The workflow cache's size by what a larger one would save: Little's law over the cycles a worker ran. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CacheAdvisor, GROW_AT_CORE_SHARE, hitsPerSecond, REPLAY_CPU_SECONDS } from '../../src/workflow-cache-advisor.js';

const bounds = { min: 100, max: 1514 };

/** A window of `seconds` in which `sources` sources of `interval` each ran their cycles. */
function window(advisor: CacheAdvisor, start: number, seconds: number, groups: Array<{ sources: number; interval: string; intervalSeconds: number }>): number {
  for (const g of groups) for (let i = 0; i < Math.round((g.sources * seconds) / g.intervalSeconds); i++) advisor.cycle(g.interval);
  return start + seconds * 1000;
}

describe('workflow cache advisor', () => {
  it('1,000 sources at 1m fit 1,514 cached and save ~17 replays a second: the worker grows its cache', () => {
    const advisor = new CacheAdvisor(bounds, 0);
    const now = window(advisor, 0, 60, [{ sources: 1000, interval: '1m', intervalSeconds: 60 }]);
    const advice = advisor.review(now, bounds.min);
    assert.equal(advice.size, bounds.max);
    assert.equal(advice.workingSet, 1000);
    assert.ok(Math.abs(advice.replaysSavedPerSecond - 1000 / 60) < 0.01, String(advice.replaysSavedPerSecond));
    // And keeps it while that holds.
    assert.equal(advisor.review(window(advisor, now, 60, [{ sources: 1000, interval: '1m', intervalSeconds: 60 }]), bounds.max).size, bounds.max);
  });

  it('10,000 sources at 10m do not fit: the large cache would save nothing and the small one stays', () => {
    const advisor = new CacheAdvisor(bounds, 0);
    const advice = advisor.review(window(advisor, 0, 60, [{ sources: 10_000, interval: '10m', intervalSeconds: 600 }]), bounds.min);
    assert.equal(advice.size, bounds.min);
    assert.equal(advice.workingSet, 10_000);
    assert.equal(advice.replaysSavedPerSecond, 0);
  });

  it('a cache that stops paying is given up (sources added beyond it), one that pays a little is kept (hysteresis)', () => {
    const advisor = new CacheAdvisor(bounds, 0);
    const shrunk = advisor.review(window(advisor, 0, 60, [{ sources: 3000, interval: '1m', intervalSeconds: 60 }]), bounds.max);
    assert.equal(shrunk.size, bounds.min, '3,000 at 1m: LRU evicts each before it comes due');
    // 3 replays a second saved: under the 4 that grow a small cache, over the 2 that shrink a large one.
    const between = (current: number) => {
      const a = new CacheAdvisor(bounds, 0);
      return a.review(window(a, 0, 100, [{ sources: 300, interval: '100s', intervalSeconds: 100 }]), current).size;
    };
    assert.ok(3 * REPLAY_CPU_SECONDS < GROW_AT_CORE_SHARE);
    assert.equal(between(bounds.min), bounds.min);
    assert.equal(between(bounds.max), bounds.max);
  });

  it('sources that fit but cycle seldom do not pay for their memory: 1,000 at 5m keep the small cache', () => {
    const advisor = new CacheAdvisor(bounds, 0);
    const advice = advisor.review(window(advisor, 0, 300, [{ sources: 1000, interval: '5m', intervalSeconds: 300 }]), bounds.min);
    assert.equal(advice.workingSet, 1000);
    assert.equal(advice.size, bounds.min, `${advice.replaysSavedPerSecond.toFixed(2)} replays a second saved`);
  });

  it('mixed intervals: the fast sources stay cached while slow ones pass through (LRU under periodic cycles)', () => {
    // 1,000 at 1m and 10,000 at 1h: within a minute 1,000 + 167 distinct workflows cycle, under 1,514.
    const rates = [
      { intervalSeconds: 60, perSecond: 1000 / 60 },
      { intervalSeconds: 3600, perSecond: 10_000 / 3600 },
    ];
    assert.ok(Math.abs(hitsPerSecond(rates, 1514) - 1000 / 60) < 1e-9, 'the 1m sources hit, the 1h ones do not');
    assert.equal(hitsPerSecond(rates, 100), 0);
    assert.equal(hitsPerSecond(rates, 1100), 0, '1,167 cycle within a minute: a cache of 1,100 evicts the fast ones too');
    assert.ok(Math.abs(hitsPerSecond(rates, 20_000) - (1000 / 60 + 10_000 / 3600)) < 1e-9, 'everything fits');
  });

  it('a window with no cycles (suspended sources, an idle worker) asks for the small cache', () => {
    const advisor = new CacheAdvisor(bounds, 0);
    assert.deepEqual(advisor.review(60_000, bounds.max), { size: bounds.min, cyclesPerSecond: 0, workingSet: 0, replaysSavedPerSecond: 0 });
  });

  it('fixed bounds (min = max) never change, and an interval it cannot read is not counted', () => {
    const advisor = new CacheAdvisor({ min: 50, max: 50 }, 0);
    advisor.cycle('soon');
    const advice = advisor.review(window(advisor, 0, 60, [{ sources: 40, interval: '1s', intervalSeconds: 1 }]), 50);
    assert.equal(advice.size, 50);
    assert.equal(advice.cyclesPerSecond, 40);
  });
});
