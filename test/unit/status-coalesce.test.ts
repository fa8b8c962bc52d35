/**
 * What a worker keeps of the statuses it writes: writes that would change only the fetch times are
 * coalesced (src/status/coalesce.ts), and the last status per source is found by fingerprint
 * (src/status/last-statuses.ts, statusDigest).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ArenaSourceStatus } from '../../src/api/schema.js';
import { statusDigest } from '../../src/api/status.js';
import { FetchTimeCoalescer, sameApartFromFetchTimes } from '../../src/status/coalesce.js';
import { LastStatuses } from '../../src/status/last-statuses.js';

const ready = (over: Partial<ArenaSourceStatus> = {}): ArenaSourceStatus => ({
  phase: 'Ready',
  observedGeneration: 1,
  artifact: { revision: 'main@sha1:abc', checksum: 'sha256:1', url: 'u', lastUpdateTime: '2026-01-01T00:00:00Z', size: 1 } as ArenaSourceStatus['artifact'],
  conditions: [{ type: 'Ready', status: 'True', reason: 'Succeeded', message: 'ok', lastTransitionTime: '2026-01-01T00:00:00Z', observedGeneration: 1 }] as ArenaSourceStatus['conditions'],
  lastFetchTime: '2026-01-01T00:00:00Z',
  nextFetchTime: '2026-01-01T00:01:00Z',
  ...over,
});

describe('FetchTimeCoalescer', () => {
  it('only the fetch times differ: same; anything else (any field, key order aside): different', () => {
    assert.ok(sameApartFromFetchTimes(ready(), ready({ lastFetchTime: '2026-01-01T00:01:00Z', nextFetchTime: '2026-01-01T00:02:00Z' })));
    const reordered = Object.fromEntries(Object.entries(ready()).reverse()) as ArenaSourceStatus;
    assert.ok(sameApartFromFetchTimes(ready(), reordered));
    assert.ok(!sameApartFromFetchTimes(ready(), ready({ observedGeneration: 2 })));
    assert.ok(!sameApartFromFetchTimes(ready(), ready({ conditions: [...ready().conditions!, { type: 'Reconciling' } as never] })));
    assert.ok(!sameApartFromFetchTimes(ready(), { ...ready(), extra: 1 } as ArenaSourceStatus), 'fields it does not know count as changes');
  });

  it('skips a times-only write unless this process has not written the source for maxAge', () => {
    const c = new FetchTimeCoalescer(600_000);
    const next = ready({ lastFetchTime: '2026-01-01T00:01:00Z' });
    assert.ok(c.shouldWrite('ns/a', ready(), next, 0), 'never written by this process');
    c.written('ns/a', 0);
    assert.ok(!c.shouldWrite('ns/a', ready(), next, 60_000));
    assert.ok(c.shouldWrite('ns/a', ready(), ready({ phase: 'Error' }), 60_000), 'a real change is written at once');
    assert.ok(c.shouldWrite('ns/a', undefined, next, 60_000), 'nothing to compare with');
    assert.ok(c.shouldWrite('ns/a', ready(), next, 600_000), 'times refreshed after maxAge');
    c.forget('ns/a');
    assert.ok(c.shouldWrite('ns/a', ready(), next, 60_000));
  });
});

describe('statusDigest', () => {
  it('equal statuses, whatever their key order, have one fingerprint; any change gives another', () => {
    const reordered = Object.fromEntries(Object.entries(ready()).reverse()) as ArenaSourceStatus;
    assert.equal(statusDigest(reordered), statusDigest(ready()));
    assert.equal(statusDigest(ready({ lastVersionCreated: undefined })), statusDigest(ready()), 'an undefined field is no field');
    assert.notEqual(statusDigest(ready({ lastFetchTime: '2026-01-01T00:00:01Z' })), statusDigest(ready()));
    assert.notEqual(statusDigest(ready({ observedGeneration: 2 })), statusDigest(ready()));
    assert.match(statusDigest(ready()), /^[0-9a-z]+\.[0-9a-z]+$/);
  });

  it('is the same function from release to release (the value session 15 computed)', () => {
    assert.equal(statusDigest({ phase: 'Ready', observedGeneration: 1, lastFetchTime: '2026-01-01T00:00:00Z' }), 'jwojyuuyrp.1d000c7z6qe');
  });
});

describe('LastStatuses', () => {
  it('recalls the status last written for a source only by its fingerprint', () => {
    const last = new LastStatuses();
    const first = ready();
    const second = ready({ lastFetchTime: '2026-01-01T00:01:00Z' });
    last.remember('ns/a', first);
    assert.deepEqual(last.recall('ns/a', statusDigest(first)), first);
    last.remember('ns/a', second);
    assert.equal(last.recall('ns/a', statusDigest(first)), undefined, 'an older status is a miss');
    assert.deepEqual(last.recall('ns/a', statusDigest(second)), second);
    assert.equal(last.recall('ns/b', statusDigest(second)), undefined, 'another source is a miss');
    last.forget('ns/a');
    assert.equal(last.recall('ns/a', statusDigest(second)), undefined);
  });

  it('keeps at most its bound, the least recently written out first', () => {
    const last = new LastStatuses(2);
    const s = ready();
    last.remember('a', s);
    last.remember('b', s);
    last.remember('a', s); // written again: now the most recent
    last.remember('c', s);
    assert.equal(last.recall('b', statusDigest(s)), undefined);
    assert.ok(last.recall('a', statusDigest(s)) && last.recall('c', statusDigest(s)));
  });
});
