/** The statuses a worker last wrote, found by fingerprint (src/status/last-statuses.ts, statusDigest). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ArenaSourceStatus } from '../../src/api/schema.js';
import { statusDigest } from '../../src/api/status.js';
import { LastStatuses } from '../../src/status/last-statuses.js';

const ready = (over: Partial<ArenaSourceStatus> = {}): ArenaSourceStatus => ({
  phase: 'Ready',
  observedGeneration: 1,
  artifact: { revision: 'main@sha1:abc', checksum: 'sha256:1', url: 'u', lastUpdateTime: '2026-01-01T00:00:00Z', size: 1 } as ArenaSourceStatus['artifact'],
  conditions: [{ type: 'Ready', status: 'True', reason: 'Succeeded', message: 'ok', lastTransitionTime: '2026-01-01T00:00:00Z', observedGeneration: 1 }] as ArenaSourceStatus['conditions'],
  lastFetchTime: '2026-01-01T00:00:00Z',
  ...over,
});

describe('statusDigest', () => {
  it('equal statuses, whatever their key order, have one fingerprint; any change gives another', () => {
    const reordered = Object.fromEntries(Object.entries(ready()).reverse()) as ArenaSourceStatus;
    assert.equal(statusDigest(reordered), statusDigest(ready()));
    assert.equal(statusDigest(ready({ nextFetchTime: undefined })), statusDigest(ready()), 'an undefined field is no field');
    assert.notEqual(statusDigest(ready({ lastFetchTime: '2026-01-01T00:00:01Z' })), statusDigest(ready()));
    assert.notEqual(statusDigest(ready({ observedGeneration: 2 })), statusDigest(ready()));
    assert.match(statusDigest(ready()), /^[0-9a-z]+\.[0-9a-z]+$/);
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
