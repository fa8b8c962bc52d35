/**
 * `ls-remote` answers shared between sources that poll the same repository with the same
 * credentials. A thousand ArenaSources on one monorepo (one per bundle folder) would otherwise
 * ask the git host a thousand times per interval; with this, a scheduled poll takes an answer
 * younger than a few seconds (or one still in flight). Only scheduled polls share: a reconcile, a
 * spec change, a push webhook and a source's first cycle always ask the host. Failures are never
 * shared. simple-git has no such cache, so this is a small map of promises.
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

/** What a poll passes down to resolveGitRef to share listings. */
export interface ListingShare {
  listings: SharedListings;
  /** The key without the listed arguments (listingKey adds them). */
  keyOf(args: string[]): string;
  maxAgeMs: number;
}

export class SharedListings {
  /** Oldest first: Map keeps insertion order, and a refreshed key is re-inserted. */
  private readonly entries = new Map<string, { at: number; answer: Promise<string> }>();

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
    this.entries.delete(key);
    this.entries.set(key, { at, answer });
    answer.catch(() => {
      if (this.entries.get(key)?.answer === answer) this.entries.delete(key);
    });
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= this.maxEntries) break;
      this.entries.delete(oldest);
    }
    return answer;
  }

  get size(): number {
    return this.entries.size;
  }
}
