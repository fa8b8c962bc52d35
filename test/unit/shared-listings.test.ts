/** Git listings shared between sources: young enough for polls, started after the call for everything else, never failures, never across credentials. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { listingKey, pollListingMaxAgeMs, SharedListings } from '../../src/sources/git/shared-listings.js';
import type { SecretObject } from '../../src/resources/types.js';

const secret = (password: string): SecretObject => ({ namespace: 'n', name: 's', data: { username: Buffer.from('u'), password: Buffer.from(password) } });

describe('shared git listings', () => {
  it('answers from a listing younger than maxAge, and asks again after', async () => {
    let now = 1_000;
    const listings = new SharedListings(100, () => now);
    let asked = 0;
    const list = async () => `answer ${++asked}`;
    assert.equal(await listings.get('k', 5_000, list), 'answer 1');
    now += 4_999;
    assert.equal(await listings.get('k', 5_000, list), 'answer 1', 'younger than maxAge');
    now += 1;
    assert.equal(await listings.get('k', 5_000, list), 'answer 2', 'maxAge old');
    assert.equal(await listings.get('k', 0, list), 'answer 3', 'maxAge 0 always asks');
    assert.equal(await listings.get('other', 5_000, list), 'answer 4', 'another key asks');
  });

  it('shares a listing in flight; a failure is neither kept nor handed to another caller', async () => {
    const listings = new SharedListings();
    let release!: (v: string) => void;
    let asked = 0;
    const first = listings.get('k', 5_000, () => (asked++, new Promise<string>((r) => (release = r))));
    const second = listings.get('k', 5_000, async () => (asked++, 'never'));
    release('one answer');
    assert.deepEqual(await Promise.all([first, second]), ['one answer', 'one answer']);
    assert.equal(asked, 1);

    await assert.rejects(listings.get('bad', 5_000, async () => Promise.reject(new Error('host down'))), /host down/);
    assert.equal(await listings.get('bad', 5_000, async () => 'up again'), 'up again', 'the failure was not kept');

    // One waiting on a listing in flight that fails (say its activity was cancelled) asks for itself.
    let fail!: (e: Error) => void;
    const owner = listings.get('cancelled', 5_000, () => new Promise<string>((_, reject) => (fail = reject)));
    const waiter = listings.get('cancelled', 5_000, async () => 'asked itself');
    fail(new Error('cancelled'));
    await assert.rejects(owner, /cancelled/);
    assert.equal(await waiter, 'asked itself');
  });

  it('fresh: only a listing started after the call; callers during one in flight share the next', async () => {
    const listings = new SharedListings();
    const started: Array<(v: string) => void> = [];
    const list = () => new Promise<string>((r) => started.push(r));
    const tick = () => new Promise((r) => setImmediate(r));
    const first = listings.fresh('k', list);
    assert.equal(started.length, 1, 'nothing in flight: it starts at once');
    // Asked while the first is in flight: that one may predate a push these callers know of.
    const second = listings.fresh('k', list);
    const third = listings.fresh('k', list);
    await tick();
    assert.equal(started.length, 1, 'the next listing waits for the one in flight');
    started[0]!('answer 1');
    assert.equal(await first, 'answer 1');
    await tick();
    assert.equal(started.length, 2, 'one listing for both waiting callers');
    const fourth = listings.fresh('k', list);
    started[1]!('answer 2');
    assert.deepEqual(await Promise.all([second, third]), ['answer 2', 'answer 2']);
    await tick();
    assert.equal(started.length, 3, 'asked while the second was in flight: a third listing');
    started[2]!('answer 3');
    assert.equal(await fourth, 'answer 3');
    assert.equal(await listings.get('k', 5_000, async () => 'asked'), 'answer 3', 'a poll takes the fresh answer');
    assert.equal(await listings.fresh('k', async () => 'answer 4'), 'answer 4', 'nothing in flight: a new listing');
  });

  it('fresh: a failed shared listing is not handed on; each waiting caller asks for itself', async () => {
    const listings = new SharedListings();
    let fail!: (e: Error) => void;
    let asked = 0;
    const owner = listings.fresh('k', () => new Promise<string>((_, reject) => (fail = reject)));
    const waiting = listings.fresh('k', () => (asked++ === 0 ? Promise.reject(new Error('host down')) : Promise.resolve('asked itself')));
    fail(new Error('cancelled'));
    await assert.rejects(owner, /cancelled/);
    assert.equal(await waiting, 'asked itself');
    assert.equal(asked, 2, 'the shared attempt, then its own');
  });

  it('keeps at most maxEntries, dropping the oldest', async () => {
    const listings = new SharedListings(2);
    for (const k of ['a', 'b', 'c']) await listings.get(k, 5_000, async () => k);
    assert.equal(listings.size, 2);
    assert.equal(await listings.get('a', 5_000, async () => 'asked again'), 'asked again');
  });

  it('keys differ by URL, credentials and arguments; the key shows no secret', () => {
    const base = listingKey('https://h/r.git', [secret('p1'), undefined], ['--symref', 'HEAD']);
    assert.equal(listingKey('https://h/r.git', [secret('p1'), undefined], ['--symref', 'HEAD']), base);
    assert.notEqual(listingKey('https://h/r.git', [secret('p2'), undefined], ['--symref', 'HEAD']), base, 'other password');
    assert.notEqual(listingKey('https://h/r.git', [undefined, undefined], ['--symref', 'HEAD']), base, 'no credentials');
    assert.notEqual(listingKey('https://h/r.git', [undefined, secret('p1')], ['--symref', 'HEAD']), base, 'the same Secret as proxy credentials');
    assert.notEqual(listingKey('https://h/other.git', [secret('p1'), undefined], ['--symref', 'HEAD']), base, 'other repository');
    assert.notEqual(listingKey('https://h/r.git', [secret('p1'), undefined], ['--tags']), base, 'other listing');
    assert.match(base, /^[0-9a-f]{64}$/);
  });

  it('a poll accepts a tenth of its interval, at most 5 s', () => {
    assert.equal(pollListingMaxAgeMs(60_000), 5_000);
    assert.equal(pollListingMaxAgeMs(10_000), 1_000);
    assert.equal(pollListingMaxAgeMs(1_000), 100);
  });
});
