/**
 * Where packed artifacts live. The interface is small on purpose so an S3
 * (or any object store) backend can implement it; the filesystem store is
 * the first one. Keys are content-addressed: "<ns>/<name>/<hex>.tar.gz".
 */

import { InvalidSpecError } from '../errors.js';

export interface SourceKey {
  namespace: string;
  name: string;
}

export interface StoredArtifact {
  /** "<ns>/<name>/<hex>.tar.gz" */
  key: string;
  /** "sha256:<hex>" */
  checksum: string;
  size: number;
}

/** One stored artifact as a listing sees it. */
export interface ListedArtifact {
  /** "<ns>/<name>/<hex>.tar.gz" */
  key: string;
  size: number;
  /** When it was (last) published; "newest" in prune and retention. */
  mtime: Date;
}

export interface ArtifactStore {
  /** Moves/copies a packed file in under its content digest; idempotent; atomic (temp + rename). */
  put(source: SourceKey, file: string, checksum: string): Promise<StoredArtifact>;
  /** True when the stored object exists and its bytes still hash to checksum. */
  verify(source: SourceKey, checksum: string): Promise<boolean>;
  /**
   * Opens a stored object for reading, or null if absent (or the key is not
   * a valid artifact key). `range` is inclusive on both ends, like HTTP;
   * `size` is always the size of the whole object.
   */
  open(key: string, range?: { start: number; end: number }): Promise<{ stream: NodeJS.ReadableStream; size: number } | null>;
  /** Size and last-publish time of a stored object, or null if absent or invalid. */
  stat(key: string): Promise<{ size: number; mtime: Date } | null>;
  /** Deletes every artifact of a source. */
  removeSource(source: SourceKey): Promise<void>;
  /**
   * Keeps the newest `keep` artifacts of a source and always `current` (a key
   * or a checksum); returns deleted keys.
   */
  prune(source: SourceKey, keep: number, current: string): Promise<string[]>;
  /**
   * Every artifact of a source with its size and publish time, in no
   * particular order (retention uses it; see src/store/retention.ts).
   */
  list(source: SourceKey): Promise<ListedArtifact[]>;
  /**
   * Optional: a short-lived URL from which the object can be fetched directly
   * (an S3 presigned GET), or null for an invalid key. The artifact server
   * redirects to it when asked to.
   */
  presign?(key: string, expiresInSeconds: number): Promise<string | null>;
}

// Kubernetes names: a namespace is a DNS-1123 label, an object name a
// DNS-1123 subdomain. Neither admits "/", "..", "%" or a leading ".", which
// is what keeps keys from addressing anything outside a source's prefix.
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const SHA256_CHECKSUM = /^sha256:([0-9a-f]{64})$/;
const KEY = /^([^/]+)\/([^/]+)\/([0-9a-f]{64})\.tar\.gz$/;

export function isValidNamespace(ns: string): boolean {
  return DNS1123_LABEL.test(ns);
}

export function isValidName(name: string): boolean {
  return name.length <= 253 && DNS1123_SUBDOMAIN.test(name);
}

/** Throws InvalidSpecError unless namespace and name are valid Kubernetes names. */
export function assertSourceKey(source: SourceKey): void {
  const problems: string[] = [];
  if (!isValidNamespace(source.namespace)) {
    problems.push(`namespace: "${source.namespace}" is not a DNS-1123 label`);
  }
  if (!isValidName(source.name)) {
    problems.push(`name: "${source.name}" is not a DNS-1123 subdomain`);
  }
  if (problems.length > 0) throw new InvalidSpecError(problems.join('; '), problems);
}

/** The hex digest of a "sha256:<hex>" checksum; throws InvalidSpecError otherwise. */
export function checksumHex(checksum: string): string {
  const m = SHA256_CHECKSUM.exec(checksum);
  if (!m) throw new InvalidSpecError(`checksum: "${checksum}" is not "sha256:" followed by 64 lowercase hex digits`);
  return m[1] as string;
}

export function artifactKey(source: SourceKey, checksum: string): string {
  assertSourceKey(source);
  return `${source.namespace}/${source.name}/${checksumHex(checksum)}.tar.gz`;
}

/** Splits and validates a key; null when it is not exactly an artifact key. */
export function parseArtifactKey(key: string): { source: SourceKey; checksum: string; hex: string } | null {
  const m = KEY.exec(key);
  if (!m) return null;
  const [, namespace, name, hex] = m as unknown as [string, string, string, string];
  if (!isValidNamespace(namespace) || !isValidName(name)) return null;
  return { source: { namespace, name }, checksum: `sha256:${hex}`, hex };
}

/** `current` may be a checksum or an artifact key of this source; "" means none. */
export function currentHexOf(source: SourceKey, current: string): string | null {
  if (current === '') return null;
  if (current.startsWith('sha256:')) return checksumHex(current);
  const parsed = parseArtifactKey(current);
  if (parsed === null || parsed.source.namespace !== source.namespace || parsed.source.name !== source.name) {
    throw new InvalidSpecError(`current: "${current}" is not an artifact key or checksum of ${source.namespace}/${source.name}`);
  }
  return parsed.hex;
}

/** Newest first; the key breaks ties (S3 times have 1 s resolution), so every store orders alike. */
export function sortNewestFirst<T extends { key: string; mtime: Date }>(items: T[]): T[] {
  return [...items].sort((a, b) => b.mtime.getTime() - a.mtime.getTime() || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}
