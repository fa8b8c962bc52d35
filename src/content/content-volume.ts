/**
 * The workspace content volume: versioned directories that Omnia's ArenaJobs
 * mount (layout.ts says where). The one writer of that layout.
 *
 * A reader never sees a partial version: a version is extracted into
 * `.arena/staging/`, fsynced, and renamed into `.arena/versions/` (same
 * filesystem, so the rename is atomic); then `.arena/HEAD` is replaced by
 * rename of a fsynced temp file. An existing version is reused (only HEAD
 * moves). A worker killed mid-write leaves only staging, which the next
 * publish of that source removes.
 *
 * Retention orders versions by when they last became HEAD (the version
 * directory's mtime, set on every publish; its contents never change). The
 * newest `keep` are kept, HEAD always, and an older one only goes once it has
 * been replaced for `ttlMs` — a job that read HEAD just before it moved may
 * still be reading that version.
 */
import { randomUUID } from 'node:crypto';
import { lstat, mkdir, open, readFile, readdir, rename, rm, rmdir, stat, utimes } from 'node:fs/promises';
import path from 'node:path';
import type { PackLimits } from '../bundle/pack.js';
import { InvalidTargetPathError, StorageFailedError } from '../errors.js';
import { extractTarGz, newBudget } from '../oci/extract.js';
import { fsyncPath } from '../store/fsync.js';
import { ARENA_DIR, contentPathOf, locationParts, versionOf, type ContentLocation } from './layout.js';

export interface ContentPolicy {
  /** Versions kept per source whatever their age (HEAD is kept in addition). Default 10, as Omnia. */
  keep: number;
  /** How long a replaced version stays readable. Default 1 h (the artifact retention TTL). */
  ttlMs: number;
}

export const DEFAULT_CONTENT_POLICY: ContentPolicy = { keep: 10, ttlMs: 60 * 60 * 1000 };

export interface PublishedContent {
  version: string;
  /** Relative to {root}/{workspace}/{namespace}. */
  contentPath: string;
  /** False when the version directory existed already (only HEAD moved). */
  created: boolean;
  versionCount: number;
  /** When a replaced version waiting out its TTL becomes deletable (ISO), if any. */
  nextDueAt?: string;
}

/** A version extracted into staging, not yet visible; commit() or discard() it. */
export interface StagedContent {
  loc: ContentLocation;
  version: string;
  /** null when the version exists already. */
  stagingDir: string | null;
  /** Every path the extraction wrote, and its kind: what the staged tree must hold when it is published. */
  expected: ReadonlyMap<string, 'file' | 'dir' | 'symlink'>;
  /** Keep history (createVersionOnSync) or only the current version. */
  history: boolean;
}

export interface ContentCheck {
  /** HEAD names `version` and its directory exists. */
  current: boolean;
  versionCount: number;
}

export class ContentVolume {
  readonly root: string;
  readonly policy: ContentPolicy;

  constructor(root: string, policy: Partial<ContentPolicy> = {}) {
    this.root = path.resolve(root);
    this.policy = { ...DEFAULT_CONTENT_POLICY, ...policy };
  }

  /** Extracts the artifact into staging (the slow part), so the commit is only renames. */
  async stage(loc: ContentLocation, archivePath: string, checksum: string, limits: PackLimits, history = true): Promise<StagedContent> {
    const version = versionOf(checksum);
    const arena = await this.prepare(loc);
    if (await isDirectory(path.join(arena, 'versions', version))) return { loc, version, stagingDir: null, history, expected: new Map() };
    await clearStaging(arena);
    const stagingDir = path.join(arena, 'staging', `${version}.${randomUUID()}`);
    await mkdir(stagingDir, { recursive: true });
    const budget = newBudget(limits);
    try {
      await extractTarGz(archivePath, stagingDir, budget, { what: `artifact ${checksum}` });
      await fsyncTree(stagingDir);
    } catch (err) {
      await rm(stagingDir, { recursive: true, force: true }).catch(() => undefined);
      throw err;
    }
    return { loc, version, stagingDir, history, expected: budget.kinds };
  }

  /** Makes a staged version visible, points HEAD at it, and applies retention. */
  async commit(staged: StagedContent, now = new Date()): Promise<PublishedContent> {
    const arena = await this.prepare(staged.loc);
    const versionDir = path.join(arena, 'versions', staged.version);
    let created = false;
    if (staged.stagingDir) {
      // Only a whole tree goes into view (an attempt whose staging another attempt cleared must not).
      await assertStagedIntact(staged.stagingDir, staged.expected);
      try {
        await rename(staged.stagingDir, versionDir);
        created = true;
        await fsyncDir(path.join(arena, 'versions'));
      } catch (err) {
        // Another attempt got there first with the same content: use that one.
        if (!['EEXIST', 'ENOTEMPTY'].includes((err as NodeJS.ErrnoException).code ?? '')) throw storageError('publishing a version', err);
        await rm(staged.stagingDir, { recursive: true, force: true });
      }
    }
    // "Became HEAD at": retention's order (the directory's contents never change after the rename).
    await utimes(versionDir, now, now);
    await writeHead(arena, staged.version);
    const pruned = await this.pruneArena(arena, staged.version, staged.history, now);
    return {
      version: staged.version,
      contentPath: contentPathOf(staged.loc.targetPath, staged.version),
      created,
      ...pruned,
    };
  }

  async discard(staged: StagedContent): Promise<void> {
    if (staged.stagingDir) await rm(staged.stagingDir, { recursive: true, force: true }).catch(() => undefined);
  }

  /** Whether `version` is what HEAD names and is on disk; used by the no-op check. */
  async check(loc: ContentLocation, version: string): Promise<ContentCheck> {
    const arena = await this.prepare(loc, false);
    const head = await readHead(arena);
    const versions = await this.versionNames(arena);
    return { current: head === version && versions.includes(version), versionCount: versions.length };
  }

  /** Retention on its own (when a replaced version's TTL has run out). */
  async prune(loc: ContentLocation, history = true, now = new Date()): Promise<{ versionCount: number; nextDueAt?: string }> {
    const arena = await this.prepare(loc, false);
    const head = await readHead(arena);
    if (head === undefined) return { versionCount: (await this.versionNames(arena)).length };
    return this.pruneArena(arena, head, history, now);
  }

  /** Removes every version and HEAD of a source (the source was deleted). */
  async remove(loc: ContentLocation): Promise<void> {
    const arena = await this.prepare(loc, false);
    // Out of sight first, in one rename, then deleted: no reader finds a half-deleted tree.
    const doomed = `${arena}.deleting.${randomUUID()}`;
    try {
      await rename(arena, doomed);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw storageError('removing content', err);
    }
    await rm(doomed, { recursive: true, force: true });
    // The target directory too, and its parents, while they are empty (never the namespace's own).
    const parts = locationParts(loc);
    for (let n = parts.length; n > 2; n--) {
      if (!(await rmdir(path.join(this.root, ...parts.slice(0, n))).then(() => true, () => false))) break;
    }
  }

  private async pruneArena(arena: string, head: string, history: boolean, now: Date): Promise<{ versionCount: number; nextDueAt?: string }> {
    const keep = history ? Math.max(1, this.policy.keep) : 1;
    const entries: Array<{ name: string; mtimeMs: number }> = [];
    for (const name of await this.versionNames(arena)) {
      const st = await stat(path.join(arena, 'versions', name)).catch(() => null);
      if (st) entries.push({ name, mtimeMs: st.mtimeMs });
    }
    entries.sort((a, b) => b.mtimeMs - a.mtimeMs || a.name.localeCompare(b.name));
    let nextDue: number | undefined;
    let remaining = entries.length;
    for (let i = keep; i < entries.length; i++) {
      const entry = entries[i]!;
      if (entry.name === head) continue;
      // Replaced when the next newer version became HEAD.
      const due = entries[i - 1]!.mtimeMs + this.policy.ttlMs;
      if (due > now.getTime()) {
        nextDue = nextDue === undefined ? due : Math.min(nextDue, due);
        continue;
      }
      const doomed = path.join(arena, 'staging', `deleting.${entry.name}.${randomUUID()}`);
      await mkdir(path.join(arena, 'staging'), { recursive: true });
      await rename(path.join(arena, 'versions', entry.name), doomed).catch(() => undefined);
      await rm(doomed, { recursive: true, force: true });
      remaining--;
    }
    return { versionCount: remaining, ...(nextDue !== undefined ? { nextDueAt: new Date(nextDue).toISOString() } : {}) };
  }

  private async versionNames(arena: string): Promise<string[]> {
    const names = await readdir(path.join(arena, 'versions')).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [] as string[];
      throw storageError('listing versions', err);
    });
    return names.filter((n) => /^[0-9a-f]{12}$/.test(n));
  }

  /**
   * The source's `.arena` directory, created when `create`. Every existing
   * component below the root must be a real directory: a symlink planted on a
   * shared volume must not turn our writes (or deletes) elsewhere.
   */
  private async prepare(loc: ContentLocation, create = true): Promise<string> {
    const parts = [...locationParts(loc), ARENA_DIR];
    if (create) await mkdir(this.root, { recursive: true }).catch((err: unknown) => Promise.reject(storageError('creating the content root', err)));
    let dir = this.root;
    for (const part of parts) {
      dir = path.join(dir, part);
      const st = await lstat(dir).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return null;
        throw storageError('reading the content volume', err);
      });
      if (st === null) {
        if (!create) return path.join(this.root, ...parts);
        await mkdir(dir).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'EEXIST') throw storageError('creating content directories', err);
        });
      } else if (st.isSymbolicLink() || !st.isDirectory()) {
        const shown = path.relative(this.root, dir);
        throw new InvalidTargetPathError(
          `"${shown}" on the content volume is ${st.isSymbolicLink() ? 'a symlink' : 'not a directory'}; a source's content path must be made of plain directories`,
        );
      }
    }
    if (create) await mkdir(path.join(dir, 'versions'), { recursive: true });
    return dir;
  }
}

/**
 * Leftovers of earlier attempts for this source (a killed worker, or one whose heartbeat timed out
 * and that may still be running). Each is renamed out of staging before it is deleted: a rename is
 * atomic, so a slow attempt either published its whole tree first or finds it gone, and a delete
 * never races with its publish.
 */
async function clearStaging(arena: string): Promise<void> {
  const staging = path.join(arena, 'staging');
  for (const name of await readdir(staging).catch(() => [] as string[])) {
    const trash = path.join(arena, `.trash-${randomUUID()}`);
    if (await rename(path.join(staging, name), trash).then(() => true, () => false)) await rm(trash, { recursive: true, force: true });
  }
  // Trash a killed cleanup left behind.
  for (const name of (await readdir(arena)).filter((n) => n.startsWith('.trash-'))) await rm(path.join(arena, name), { recursive: true, force: true });
}

/** The staged tree holds exactly what the extraction wrote (nothing removed or added meanwhile). */
async function assertStagedIntact(dir: string, expected: ReadonlyMap<string, 'file' | 'dir' | 'symlink'>): Promise<void> {
  const found = new Map<string, 'file' | 'dir' | 'symlink' | 'other'>();
  async function walk(rel: string): Promise<void> {
    for (const entry of await readdir(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      found.set(child, entry.isDirectory() ? 'dir' : entry.isFile() ? 'file' : entry.isSymbolicLink() ? 'symlink' : 'other');
      if (entry.isDirectory()) await walk(child);
    }
  }
  const disturbed = () =>
    new StorageFailedError('content volume: a staged version changed while it was written (a concurrent attempt for this source cleared it); retrying');
  await walk('').catch(() => Promise.reject(disturbed()));
  if (found.size !== expected.size) throw disturbed();
  for (const [rel, kind] of expected) if (found.get(rel) !== kind) throw disturbed();
}

async function readHead(arena: string): Promise<string | undefined> {
  const text = await readFile(path.join(arena, 'HEAD'), 'utf8').catch(() => undefined);
  return text?.trim() || undefined;
}

/** HEAD as Omnia writes it: the version, no newline, replaced by rename. */
async function writeHead(arena: string, version: string): Promise<void> {
  const tmp = path.join(arena, `.HEAD.${randomUUID()}.tmp`);
  const handle = await open(tmp, 'w', 0o644);
  try {
    await handle.writeFile(version);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(tmp, path.join(arena, 'HEAD'));
  } catch (err) {
    await rm(tmp, { force: true });
    throw storageError('moving HEAD', err);
  }
  await fsyncDir(arena);
}

/** Files and directories of a freshly extracted tree reach the disk before it is renamed into view. */
async function fsyncTree(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) await fsyncTree(full);
    else if (entry.isFile()) await fsyncPath(full);
  }
  await fsyncDir(dir);
}

/** Directory fsync is best effort: some filesystems (and NFS clients) refuse it. */
async function fsyncDir(dir: string): Promise<void> {
  await fsyncPath(dir).catch(() => undefined);
}

async function isDirectory(p: string): Promise<boolean> {
  return (await lstat(p).catch(() => null))?.isDirectory() ?? false;
}

function storageError(what: string, err: unknown): StorageFailedError {
  const e = err as NodeJS.ErrnoException;
  return new StorageFailedError(`content volume: ${what}: ${e?.message ?? String(err)}`, { cause: err });
}
