/**
 * `ls-remote` answers shared between sources that list the same repository with the same
 * credentials. A thousand ArenaSources on one monorepo (one per bundle folder) would otherwise
 * ask the git host a thousand times per interval, and a thousand times when they are applied at once.
 * - A scheduled poll takes an answer younger than a few seconds (or one still in flight).
 * - Everything else — a reconcile, a spec change, a push webhook, a source's first cycle — takes only
 *   an answer from a listing that **started after it asked**, so it can never miss a push made before
 *   it: it joins the next listing of the repository (at most one in flight and one waiting to start
 *   per key), and a burst of N sources costs a few listings instead of N.
 * Failures are never shared. simple-git has no such cache, so this is a small map of promises.
 */
import { createHash } from 'node:crypto';
import type { SecretObject } from '../../resources/types.js';

/** How old a shared answer a poll accepts: a tenth of the interval, at most 5 s. */
export function pollListingMaxAgeMs(intervalMs: number): number {
  return Math.min(5_000, Math.floor(intervalMs / 10));
}

/**
 * The key of a listing: the URL, the credentials' material (hashed: it is never kept), and
 * what is listed. Sources with different credentials never see each other's answers.
 */
export function listingKey(url: string, secrets: (SecretObject | undefined)[], args: string[]): string {
  const hash = createHash('sha256').update(url);
  for (const secret of secrets) {
    hash.update('\0secret');
    if (!secret) continue;
    for (const name of Object.keys(secret.data).sort()) hash.update(`\0${name}\0`).update(secret.data[name]!);
  }
  for (const arg of args) hash.update(`\0arg\0${arg}`);
  return hash.digest('hex');
}

/** What resolveRevision passes down to resolveGitRef to share listings. */
export interface ListingShare {
  listings: SharedListings;
  /** The key without the listed arguments (listingKey adds them). */
  keyOf(args: string[]): string;
  /** A scheduled poll: how old an answer it takes. Absent: only a listing started after the call (fresh). */
  maxAgeMs?: number;
}

export class SharedListings {
  /** Oldest first: Map keeps insertion order, and a refreshed key is re-inserted. */
  private readonly entries = new Map<string, { at: number; answer: Promise<string> }>();
  /** Fresh listings per key: the one in flight, and the one waiting for it to settle. */
  private readonly flights = new Map<string, { inFlight?: Promise<string>; waiting?: Promise<string> }>();

  constructor(
    private readonly maxEntries = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * The answer for `key` if one younger than `maxAgeMs` exists (or is in flight), else `list()`'s.
   * A shared answer that fails (another source's activity cancelled, the host down) is not taken:
   * the caller asks for itself.
   */
  get(key: string, maxAgeMs: number, list: () => Promise<string>): Promise<string> {
    const at = this.now();
    const hit = this.entries.get(key);
    if (hit && at - hit.at < maxAgeMs) return hit.answer.catch(() => list());
    const answer = list();
    this.remember(key, at, answer);
    return answer;
  }

  /** An answer polls may take while it is young; a failed one is forgotten. */
  private remember(key: string, at: number, answer: Promise<string>): void {
    this.entries.delete(key);
    this.entries.set(key, { at, answer });
    answer.catch(() => {
      if (this.entries.get(key)?.answer === answer) this.entries.delete(key);
    });
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= this.maxEntries) break;
      this.entries.delete(oldest);
    }
  }

  /**
   * The answer of a listing that starts after this call: the one waiting to start if there is one,
   * else a new one — at once if none is in flight, else as soon as the one in flight (started before
   * this call, so possibly older than a push the caller knows of) settles. Its answer also serves polls.
   */
  fresh(key: string, list: () => Promise<string>): Promise<string> {
    const state = this.flights.get(key) ?? {};
    this.flights.set(key, state);
    if (state.waiting) return state.waiting.catch(() => list());
    const start = (): Promise<string> => {
      const answer = list();
      state.inFlight = answer;
      this.remember(key, this.now(), answer);
      const settled = () => {
        if (state.inFlight === answer) state.inFlight = undefined;
        if (!state.inFlight && !state.waiting && this.flights.get(key) === state) this.flights.delete(key);
      };
      answer.then(settled, settled);
      return answer;
    };
    if (!state.inFlight) return start();
    const next = () => {
      state.waiting = undefined;
      return start();
    };
    const waiting = state.inFlight.then(next, next);
    state.waiting = waiting;
    return waiting.catch(() => list());
  }

  get size(): number {
    return this.entries.size;
  }
}
