/**
 * A worker's memo of the archives it packed, so that sources whose bundles are the
 * same tree share one pack.
 *
 * Packing is reproducible (entries sorted, metadata fixed: src/bundle/pack.ts), so two
 * packs of one tree are the same bytes. A git tree is named by what its bytes depend on:
 * the repository as the git cache keys it (URL and the credentials that read it), the
 * commit, the bundle path, the spec's ignore rules (the tree's own `.sourceignore` files
 * come with the commit) and this worker's pack limits; the archive's validation report
 * depends on the validation asked for too, so that is part of an entry's key. A source
 * whose tree is memoized skips the checkout's links, the ignore pruning, the walk, the
 * gzip and the removal of its tree: its fetch links the archive into its work directory.
 *
 * Entries are files under `<workRoot>/archive-memo`, hard-linked into a work
 * directory (copied where a link is refused), so removing an entry never touches a file
 * a source took; least recently used entries beyond `maxEntries` or `maxBytes` go. Only
 * this process writes there (the directory is emptied when its first memo is made).
 */
import { createHash } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { linkOrCopy } from '../store/hard-link.js';
import type { BundleValidationRequest } from '../api/spec-rules.js';
import type { BundleReport } from '../api/status.js';
import type { IgnoreRules } from './ignore.js';
import type { PackLimits } from './pack.js';

/** What a pack of the tree produced (PackBundleResult without the file's place). */
export interface PackedFacts {
  checksum: string;
  size: number;
  files: number;
  bundle?: BundleReport;
}

/** A git bundle's tree, by what its packed bytes depend on. */
export interface GitTreeName {
  url: string;
  /** Whose credentials read it ('' for none), as the git cache keys its mirrors. */
  credentials: string;
  commit: string;
  /** Normalized bundle path ('' = the whole tree). */
  path: string;
  ignore: IgnoreRules;
  limits: PackLimits;
}

export function gitTreeKey(tree: GitTreeName): string {
  const { url, credentials, commit, path, ignore, limits } = tree;
  return digest(['git', url, credentials, commit, path, ignore.patterns ?? null, ignore.sourceIgnore, ignore.vcsDefaults, limits.maxFiles, limits.maxBytes]);
}

/** An entry's key: the tree and the validation its report answers (none: not validated). */
export function archiveKey(treeKey: string, validation: BundleValidationRequest | undefined): string {
  return digest([treeKey, validation ? validation.mode : null, validation ? [...validation.packFiles].sort() : null]);
}

function digest(parts: unknown[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

export interface ArchiveMemoOptions {
  /** Directory of the memoized archives (emptied, then created, on first use). */
  dir: string;
  maxEntries?: number;
  /** Bound on the bytes of all entries; an archive bigger than an eighth of it is not memoized. */
  maxBytes?: number;
}

export const DEFAULT_MEMO_ENTRIES = 256;
export const DEFAULT_MEMO_BYTES = 256 * 1024 ** 2;

interface Entry {
  file: string;
  facts: PackedFacts;
  lastUsed: number;
}

export class ArchiveMemo {
  private readonly dir: string;
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private readonly entries = new Map<string, Entry>();
  private readonly adding = new Set<string>();
  private bytes = 0;
  private serial = 0;
  private hits = 0;
  private ready: Promise<void> | undefined;

  constructor(opts: ArchiveMemoOptions) {
    this.dir = opts.dir;
    this.maxEntries = opts.maxEntries ?? DEFAULT_MEMO_ENTRIES;
    this.maxBytes = opts.maxBytes ?? DEFAULT_MEMO_BYTES;
  }

  /** Entries, their bytes and the archives taken from them, for tests and benchmarks. */
  stats(): { entries: number; bytes: number; hits: number } {
    return { entries: this.entries.size, bytes: this.bytes, hits: this.hits };
  }

  /**
   * Puts the archive memoized under `key` at `dest` (a new file); its facts, or undefined when
   * there is none (or it went meanwhile: the caller packs as if it had never been there).
   */
  async take(key: string, dest: string): Promise<PackedFacts | undefined> {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    entry.lastUsed = Date.now();
    try {
      await linkOrCopy(entry.file, dest);
    } catch {
      return undefined;
    }
    this.hits++;
    return entry.facts;
  }

  /** Memoizes `archive` (linked, the caller keeps its file) under `key`, unless there is an entry already. */
  async remember(key: string, archive: string, facts: PackedFacts): Promise<void> {
    if (this.entries.has(key) || this.adding.has(key) || facts.size > this.maxBytes / 8) return;
    this.adding.add(key);
    try {
      await (this.ready ??= rm(this.dir, { recursive: true, force: true }).then(async () => void (await mkdir(this.dir, { recursive: true }))));
      const file = join(this.dir, `${this.serial++}.tar.gz`);
      // The same file as the caller's: safe, since nothing writes into an archive once packed (the
      // store renames, hashes and reads it; the content volume reads it).
      await linkOrCopy(archive, file);
      this.entries.set(key, { file, facts, lastUsed: Date.now() });
      this.bytes += facts.size;
      await this.trim();
    } catch {
      // A memo that cannot be written is only a missed saving.
    } finally {
      this.adding.delete(key);
    }
  }

  private async trim(): Promise<void> {
    if (this.entries.size <= this.maxEntries && this.bytes <= this.maxBytes) return;
    const oldest = [...this.entries].sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    for (const [key, entry] of oldest) {
      if (this.entries.size <= this.maxEntries && this.bytes <= this.maxBytes) break;
      if (!this.entries.delete(key)) continue; // a concurrent trim took it
      this.bytes -= entry.facts.size;
      await rm(entry.file, { force: true }).catch(() => undefined);
    }
  }
}

const memos = new Map<string, ArchiveMemo>();

/**
 * The memo of the worker whose scratch space is `workRoot` (one per root in this process), or
 * undefined when ARENA_SOURCE_GIT_CACHE=off (the memo stands on the cache's keys).
 */
export function archiveMemoFor(workRoot: string): ArchiveMemo | undefined {
  if (/^(off|false|0|no)$/i.test(process.env.ARENA_SOURCE_GIT_CACHE ?? '')) return undefined;
  let memo = memos.get(workRoot);
  if (!memo) {
    memo = new ArchiveMemo({ dir: join(workRoot, 'archive-memo') });
    memos.set(workRoot, memo);
  }
  return memo;
}
