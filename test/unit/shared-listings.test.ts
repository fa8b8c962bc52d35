/** Git listings shared between scheduled polls: fresh enough, in flight, never failures, never across credentials. */
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
