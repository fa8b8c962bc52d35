/**
 * Artifact retention, the same for every store: per source, keep the newest
 * `keep` artifacts and the current one, and delete an older one only once it
 * has been superseded for `ttlMs`, so an Arena worker that read the previous
 * status.artifact.url just before it changed can still finish its download.
 *
 * "Superseded at" is the publish time of the next newer artifact — the moment
 * the older one stopped being the newest — not its own age: an artifact that
 * was current for a week and replaced a minute ago is a minute into its TTL.
 * Sorted newest first, those times only go down, so the artifacts whose TTL
 * has run out are a tail of the list: retention is then exactly
 * `store.prune(source, max(keep, index of that tail), current)`, and each store
 * keeps a single deletion path (prune), which also cleans up its crashed puts.
 */
import { durationToMillis, parseGoDuration } from '../api/duration.js';
import { type ArtifactStore, type ListedArtifact, type SourceKey, assertSourceKey, currentHexOf, sortNewestFirst } from './artifact-store.js';

export interface RetentionPolicy {
  /** Newest artifacts kept per source whatever their age (the current one is kept in addition). Default 2. */
  keep: number;
  /** How long an artifact beyond `keep` survives after a newer one was published. Default 1 h. */
  ttlMs: number;
}

export const DEFAULT_RETENTION: RetentionPolicy = { keep: 2, ttlMs: 60 * 60 * 1000 };

export interface RetentionResult {
  /** Artifact keys deleted. */
  deleted: string[];
  /** Artifact keys beyond `keep` that wait for their TTL. */
  deferred: string[];
  /** When the first deferred artifact becomes deletable (ISO time), if any. */
  nextDueAt?: string;
}

/**
 * Applies the policy to one source. `current` is the checksum ("sha256:…") or
 * key of the artifact in status, or "" for none; it is never deleted.
 */
export async function applyRetention(
  store: ArtifactStore,
  source: SourceKey,
  current: string,
  policy: Partial<RetentionPolicy> = {},
  now: Date = new Date(),
): Promise<RetentionResult> {
  assertSourceKey(source);
  const keep = sanitiseCount(policy.keep ?? DEFAULT_RETENTION.keep);
  const ttlMs = Math.max(0, policy.ttlMs ?? DEFAULT_RETENTION.ttlMs);
  const currentHex = currentHexOf(source, current);

  const artifacts = sortNewestFirst(await store.list(source));
  // The first index whose predecessor (its successor in time) was published ≥ ttl ago.
  let expiredFrom = artifacts.length;
  for (let i = 1; i < artifacts.length; i++) {
    if (now.getTime() - (artifacts[i - 1] as ListedArtifact).mtime.getTime() >= ttlMs) {
      expiredFrom = i;
      break;
    }
  }
  const keepCount = Math.max(keep, expiredFrom);
  const deferred: string[] = [];
  let nextDue: number | undefined;
  // The newest one (index 0) is superseded by nothing: kept, but not waiting for a TTL.
  for (let i = Math.max(keep, 1); i < keepCount && i < artifacts.length; i++) {
    const a = artifacts[i] as ListedArtifact;
    if (hexOfKey(a.key) === currentHex) continue;
    deferred.push(a.key);
    const due = (artifacts[i - 1] as ListedArtifact).mtime.getTime() + ttlMs;
    nextDue = nextDue === undefined ? due : Math.min(nextDue, due);
  }

  const deleted = keepCount >= artifacts.length ? [] : await store.prune(source, keepCount, current);
  return { deleted, deferred, ...(nextDue !== undefined ? { nextDueAt: new Date(nextDue).toISOString() } : {}) };
}

function hexOfKey(key: string): string | undefined {
  return /([0-9a-f]{64})\.tar\.gz$/.exec(key)?.[1];
}

function sanitiseCount(n: number): number {
  return Number.isFinite(n) ? Math.max(0, Math.floor(n)) : 0;
}

/** Parses a TTL flag or env value as a Go duration ("1h", "30m", "90s"). */
export function parseTtl(value: string): number {
  return durationToMillis(parseGoDuration(value.trim()));
}
