/**
 * A worker's cache of git repositories, so that sources sharing a repository
 * share its fetches.
 *
 * One bare mirror per (URL, credentials) under the worker's work root: shallow
 * (`--depth 1`) and partial (`--filter=blob:none`), so it holds the commits a
 * cycle asked for, their trees, and only the blobs some source's `path` needed.
 * A checkout is then:
 *
 *   1. under the mirror's lock: if the commit resolveRevision saw in this cycle is
 *      already in the mirror (another source, or an earlier cycle, fetched it),
 *      no network at all; otherwise one shallow fetch of the one ref into it (an
 *      incremental one: the server sends only what changed since the last fetch);
 *      then one request for the blobs under `path` the mirror still lacks;
 *   2. outside the lock: the commit's `path` checked out once per (commit, path)
 *      into a shared export beside the mirror (a work tree that borrows the
 *      mirror's objects through objects/info/alternates, sparse to `path`), and
 *      hard-linked into the activity's directory: the sources of one repository
 *      that want the same folder at the same commit cost one `git checkout`
 *      between them, not two git processes each. A source whose checkout must be
 *      a repository of its own (spec.git.verify runs git in it) gets its own
 *      work tree the same way, without the links.
 *
 * Credentials: a mirror is keyed by URL and by the Secret that authenticates
 * (namespace/name), so sources with different Secrets, or none, never share one;
 * every fetch runs with the requesting source's own environment (auth.ts),
 * and the mirror's config holds only the URL. A source only ever reuses a commit
 * its own resolveRevision just saw on the remote with the same Secret.
 *
 * Bounded: a mirror is rebuilt from scratch after `maxFetchesPerMirror` fetches
 * (its packs do not pile up), and least recently used mirrors are removed when
 * all of them take more than `maxBytes`. Safe under concurrent activities of one
 * worker (one process): a per-mirror async lock serializes fetches, and a mirror
 * is only removed when no export is reading from it.
 *
 * `ARENA_SOURCE_GIT_CACHE=off` disables it (each fetch gets its own repository,
 * still partial and sparse with a path); `ARENA_SOURCE_GIT_CACHE_MAX_BYTES` sets
 * the size bound (default 2 GiB).
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, readlink, rm, stat, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { gitRevision } from '../../api/revision.js';
import type { GitSource } from '../../api/schema.js';
import { AuthenticationFailedError, FetchFailedError } from '../../errors.js';
import { linkOrCopy } from '../../store/hard-link.js';
import { notFound } from './errors.js';
import { gitExec, type GitOptions } from './exec.js';
import { checkoutDetached, fetchGitRef, fetchMissingBlobs, fetchTargetRef, type Checkout } from './fetch.js';
import { pinnedCommit, type FetchTarget } from './refs.js';
import { initRepo } from './repo.js';

export interface GitCacheOptions {
  /** Directory of the mirrors (created). */
  root: string;
  /** Soft bound on the bytes of all mirrors; least recently used ones are removed beyond it. */
  maxBytes?: number;
  /** A mirror is rebuilt from scratch after this many fetches. */
  maxFetchesPerMirror?: number;
  /** Shared exports kept per mirror (default MAX_EXPORTS_PER_MIRROR). */
  maxExportsPerMirror?: number;
}

export interface CacheCheckoutInput {
  git: GitSource;
  target: FetchTarget;
  /** The commit resolveRevision saw in this cycle (refs.ts seenCommit): if the mirror holds it, nothing is fetched. */
  commit?: string | undefined;
  /** Whose credentials the fetch uses ('' for none), e.g. `namespace/secret-name`: part of the mirror's key. */
  credentials: string;
  /** Work tree to create. */
  dir: string;
  /** Normalized bundle path ('' = the whole tree). */
  path: string;
  options: GitOptions;
  /** `dir` must be a git repository of its own (spec.git.verify runs git there), not links to a shared export. */
  ownRepository?: boolean;
}

export interface CacheCheckout extends Checkout {
  /** A fetch of the ref went to the remote (false: the commit was in the mirror already). */
  fetched: boolean;
  /** Blobs fetched for `path` (0: all there already). */
  blobsFetched: number;
}

export const DEFAULT_GIT_CACHE_MAX_BYTES = 2 * 1024 ** 3;
export const DEFAULT_MAX_FETCHES_PER_MIRROR = 50;
/** Shared exports kept per mirror (least recently used ones beyond it are removed once nobody links from them). */
export const MAX_EXPORTS_PER_MIRROR = 64;
/** Incremental fetches take changed blobs up to this size along; bigger ones come only if `path` needs them. */
const INCREMENTAL_BLOB_LIMIT = '1m';

interface Mirror {
  dir: string;
  lock: AsyncLock;
  /** Exports reading its objects right now. */
  readers: number;
  /** Commits fetched into it by this process (only these are trusted without a fetch). */
  commits: Set<string>;
  /** `<commit>\0<path>` whose blobs are all present. */
  complete: Set<string>;
  /** The commit each ref was last fetched at. */
  tips: Map<string, string>;
  fetches: number;
  bytes: number;
  lastUsed: number;
  /** Created in this process (a directory left from before is not trusted). */
  ready: boolean;
  /** The remote refused a fetch by commit id (a protocol v0 server, say): fetch refs by name until rebuilt. */
  byNameOnly: boolean;
  /** `<commit>\0<path>` → its shared export (a checkout inside the mirror's directory). */
  exports: Map<string, SharedExport>;
  /** Names export directories uniquely, so a new export never meets the removal of an old one. */
  exportSerial: number;
}

interface SharedExport {
  dir: string;
  /** The commit checked out, once the export is written. */
  ready: Promise<string>;
  /** Checkouts linking from it right now. */
  users: number;
  lastUsed: number;
}

/** A FIFO async mutex. */
class AsyncLock {
  private tail: Promise<void> = Promise.resolve();
  private queued = 0;

  get idle(): boolean {
    return this.queued === 0;
  }

  async acquire(): Promise<() => void> {
    this.queued++;
    let release!: () => void;
    const next = new Promise<void>((resolve) => (release = resolve));
    const previous = this.tail;
    this.tail = previous.then(() => next);
    await previous;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.queued--;
      release();
    };
  }
}

const caches = new Map<string, GitCache>();

/**
 * The cache of the worker whose mirrors live in `root` (one instance per root in
 * this process, so every activity of a worker shares its locks), or undefined
 * when ARENA_SOURCE_GIT_CACHE=off.
 */
export function gitCacheFor(root: string): GitCache | undefined {
  if (/^(off|false|0|no)$/i.test(process.env.ARENA_SOURCE_GIT_CACHE ?? '')) return undefined;
  let cache = caches.get(root);
  if (!cache) {
    const maxBytes = Number(process.env.ARENA_SOURCE_GIT_CACHE_MAX_BYTES);
    cache = new GitCache({ root, ...(Number.isFinite(maxBytes) && maxBytes > 0 ? { maxBytes } : {}) });
    caches.set(root, cache);
  }
  return cache;
}

export class GitCache {
  readonly root: string;
  private readonly maxBytes: number;
  private readonly maxFetches: number;
  private readonly maxExports: number;
  private readonly mirrors = new Map<string, Mirror>();

  constructor(opts: GitCacheOptions) {
    this.root = opts.root;
    this.maxBytes = opts.maxBytes ?? DEFAULT_GIT_CACHE_MAX_BYTES;
    this.maxFetches = opts.maxFetchesPerMirror ?? DEFAULT_MAX_FETCHES_PER_MIRROR;
    this.maxExports = opts.maxExportsPerMirror ?? MAX_EXPORTS_PER_MIRROR;
  }

  /** Mirrors and their sizes, for tests and benchmarks. */
  stats(): { mirrors: number; bytes: number; fetches: number; exports: number } {
    let bytes = 0;
    let fetches = 0;
    let exports = 0;
    for (const m of this.mirrors.values()) {
      bytes += m.bytes;
      fetches += m.fetches;
      exports += m.exports.size;
    }
    return { mirrors: this.mirrors.size, bytes, fetches, exports };
  }

  /** Checks `target` out into `input.dir` (only `input.path` of it), fetching only what the mirror lacks. */
  async checkout(input: CacheCheckoutInput): Promise<CacheCheckout> {
    const { git, target, options } = input;
    const mirror = this.mirrorOf(git.url, input.credentials);
    let sha: string;
    let fetched = false;
    let blobsFetched = 0;
    let stage: 'fetch' | 'export' = 'fetch';
    const release = await mirror.lock.acquire();
    try {
      mirror.lastUsed = Date.now();
      // Not made by this process, grown too much, or removed behind our back: start again.
      const stale = !mirror.ready || mirror.fetches >= this.maxFetches || !(await exists(join(mirror.dir, 'HEAD')));
      if (stale && mirror.readers === 0) await this.create(mirror, git.url, options);
      const known = input.commit;
      if (known !== undefined && mirror.commits.has(known)) {
        sha = known;
      } else {
        sha = await this.fetch(mirror, git, target, known, input.path, options);
        fetched = true;
      }
      stage = 'export';
      const key = `${sha}\0${input.path}`;
      if (!mirror.complete.has(key)) {
        blobsFetched = await fetchMissingBlobs(mirror.dir, sha, input.path, options, git.url);
        mirror.complete.add(key);
      }
      mirror.readers++;
    } catch (err) {
      // A fetch that failed half-way (killed at its timeout, say) may leave lock files behind: start
      // again next time, unless the remote merely refused (credentials, no such ref).
      if (stage === 'fetch' && !(err instanceof AuthenticationFailedError) && !(err instanceof FetchFailedError && !err.retryable)) {
        mirror.ready = false;
      }
      release();
      if (stage === 'fetch' || err instanceof AuthenticationFailedError) throw err;
      // The mirror fetched, but its blobs could not be had (a server that refuses
      // blobs by id?): fetch this one the plain way, the cache is no use here.
      return { ...(await this.uncached(input)), fetched: true, blobsFetched: 0 };
    }
    release();
    try {
      let checkedOut: string;
      if (input.ownRepository) {
        checkedOut = await worktree(mirror, input.dir, sha, input.path, git, target, options);
      } else {
        const shared = this.exportOf(mirror, sha, input.path, git, target, options);
        try {
          checkedOut = await shared.ready;
          await linkTree(shared.dir, input.dir);
        } finally {
          shared.users--;
        }
      }
      if (fetched) await this.bound(mirror);
      return { dir: input.dir, sha: checkedOut, revision: gitRevision(target.refName, checkedOut), fetched, blobsFetched };
    } finally {
      mirror.readers--;
    }
  }

  /**
   * The shared export of `sha` (only `path` of it) in `mirror`, started if there is none, counted as used
   * (the caller decrements `users` when done); the least recently used ones beyond the limit that nobody
   * links from are removed. The caller counts as a reader of the mirror (so its directory stays).
   */
  private exportOf(mirror: Mirror, sha: string, path: string, git: GitSource, target: FetchTarget, options: GitOptions): SharedExport {
    const key = `${sha}\0${path}`;
    let shared = mirror.exports.get(key);
    if (!shared) {
      const dir = join(mirror.dir, EXPORTS_DIR, String(mirror.exportSerial++));
      const created: SharedExport = { dir, ready: worktree(mirror, dir, sha, path, git, target, options), users: 0, lastUsed: 0 };
      // A failed export is forgotten (the next checkout tries again); its caller gets the error.
      created.ready.catch(() => {
        if (mirror.exports.get(key) === created) mirror.exports.delete(key);
        void rm(dir, { recursive: true, force: true }).catch(() => undefined);
      });
      mirror.exports.set(key, created);
      shared = created;
    }
    shared.users++;
    shared.lastUsed = Date.now();
    this.trimExports(mirror);
    return shared;
  }

  private trimExports(mirror: Mirror): void {
    if (mirror.exports.size <= this.maxExports) return;
    const idle = [...mirror.exports].filter(([, e]) => e.users === 0).sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    for (const [key, e] of idle) {
      if (mirror.exports.size <= this.maxExports) break;
      mirror.exports.delete(key);
      // After it is written (or failed): nobody new can reach it, and nobody links from it now.
      void e.ready.then(
        () => rm(e.dir, { recursive: true, force: true }),
        () => undefined,
      ).catch(() => undefined);
    }
  }

  private mirrorOf(url: string, credentials: string): Mirror {
    const key = createHash('sha256').update(`${url}\n${credentials}`).digest('hex').slice(0, 32);
    let mirror = this.mirrors.get(key);
    if (!mirror) {
      mirror = {
        dir: join(this.root, `${key}.git`),
        lock: new AsyncLock(),
        readers: 0,
        commits: new Set(),
        complete: new Set(),
        tips: new Map(),
        fetches: 0,
        bytes: 0,
        lastUsed: Date.now(),
        ready: false,
        byNameOnly: false,
        exports: new Map(),
        exportSerial: 0,
      };
      this.mirrors.set(key, mirror);
    }
    return mirror;
  }

  /** (Re)creates an empty bare mirror. Caller holds its lock and no export reads it. */
  private async create(mirror: Mirror, url: string, options: GitOptions): Promise<void> {
    await rm(mirror.dir, { recursive: true, force: true });
    await initRepo(mirror.dir, { url, bare: true }, options);
    mirror.commits.clear();
    mirror.complete.clear();
    mirror.tips.clear();
    mirror.fetches = 0;
    mirror.bytes = 0;
    mirror.byNameOnly = false;
    mirror.exports.clear();
    mirror.ready = true;
  }

  /**
   * One shallow fetch of the target into the mirror; returns the commit. Caller holds the lock.
   * `known` is the commit resolveRevision saw, asked for by id (fetchTargetRef).
   */
  private async fetch(mirror: Mirror, git: GitSource, target: FetchTarget, known: string | undefined, path: string, options: GitOptions): Promise<string> {
    const pinned = pinnedCommit(target);
    const local = pinned !== undefined ? `refs/arena/commits/${pinned}` : `refs/arena/${target.fetchRef.replace(/^refs\//, '')}`;
    // The first fetch of a ref brings no blobs at all (the path's follow in one more request), unless the
    // source wants the whole tree: then all of them at once. Later fetches are incremental (the server sends
    // only what changed since the commit we have) and take the changed blobs along, except big ones, so
    // the common case is a single request.
    const filter = mirror.tips.has(target.fetchRef)
      ? [`--filter=blob:limit=${INCREMENTAL_BLOB_LIMIT}`]
      : path === ''
        ? []
        : ['--filter=blob:none'];
    const fetch = (args: string[]) => gitExec(mirror.dir, ['fetch', '--quiet', '--no-tags', '--no-write-fetch-head', ...filter, 'origin', ...args], options, git.url);
    mirror.fetches++;
    const got = await fetchTargetRef(fetch, git, target, { commit: known, byId: !mirror.byNameOnly, into: local });
    if (got.refusedById) mirror.byNameOnly = true;
    if (got.how === 'commit') return this.fetched(mirror, target, got.rev);
    // A branch's ref file holds its commit (nothing packs refs here); a tag may need peeling.
    const loose = got.how === 'name' && local.startsWith('refs/arena/heads/') ? (await readFile(join(mirror.dir, local), 'utf8').catch(() => '')).trim() : '';
    const sha = /^[0-9a-f]{40}([0-9a-f]{24})?$/.test(loose) ? loose : await this.commitOf(mirror, git, target, got.rev, options);
    return this.fetched(mirror, target, sha);
  }

  private async commitOf(mirror: Mirror, git: GitSource, target: FetchTarget, rev: string, options: GitOptions): Promise<string> {
    try {
      return (await gitExec(mirror.dir, ['rev-parse', '--verify', '--quiet', `${rev}^{commit}`], options, git.url)).trim();
    } catch (err) {
      throw notFound(git, `commit ${target.sha ?? target.fetchRef}`, err);
    }
  }

  private fetched(mirror: Mirror, target: FetchTarget, sha: string): string {
    mirror.commits.add(sha);
    mirror.tips.set(target.fetchRef, sha);
    return sha;
  }

  private async uncached(input: CacheCheckoutInput): Promise<Checkout> {
    await rm(input.dir, { recursive: true, force: true });
    return fetchGitRef(input.git, input.target, input.dir, input.options, { path: input.path, partial: false });
  }

  /** After a fetch: marks an overgrown mirror for rebuilding and removes least recently used ones beyond maxBytes. */
  private async bound(current: Mirror): Promise<void> {
    current.bytes = await dirBytes(current.dir);
    let total = 0;
    for (const m of this.mirrors.values()) total += m.bytes;
    if (total <= this.maxBytes) return;
    const victims = [...this.mirrors.values()].filter((m) => m !== current && m.ready).sort((a, b) => a.lastUsed - b.lastUsed);
    for (const m of victims) {
      if (total <= this.maxBytes) break;
      if (!m.lock.idle || m.readers > 0) continue;
      const release = await m.lock.acquire();
      try {
        if (m.readers > 0) continue;
        // The entry stays (with its lock), so a later checkout of this key recreates the same directory.
        await rm(m.dir, { recursive: true, force: true });
        total -= m.bytes;
        m.bytes = 0;
        m.exports.clear();
        m.ready = false;
      } finally {
        release();
      }
    }
  }
}

/** Shared exports live in the mirror's directory, so they go with it and count in its bytes. */
const EXPORTS_DIR = 'arena-exports';

/** A work tree at `dir` borrowing `mirror`'s objects, with `sha` checked out (only `path` of it); returns the commit. */
async function worktree(mirror: Mirror, dir: string, sha: string, path: string, git: GitSource, target: FetchTarget, options: GitOptions): Promise<string> {
  await initRepo(dir, { url: git.url, alternates: join(mirror.dir, 'objects'), promisor: true, sparsePath: path }, options);
  return checkoutDetached(dir, sha, path, options, git, target);
}

/**
 * Recreates the checkout at `src` (without its `.git`) at `dest`: directories made, files
 * hard-linked (copied where links are refused: another filesystem, a link limit), symlinks
 * written as they are. By hand because fs.cp copies bytes and cannot link; the links are safe
 * because nothing writes into a checkout's files (pruning ignored files unlinks them from the
 * source's own tree, and packing reads them).
 */
async function linkTree(src: string, dest: string, top = true): Promise<void> {
  await mkdir(dest, { recursive: top });
  for (const entry of await readdir(src, { withFileTypes: true })) {
    if (top && entry.name === '.git') continue;
    const from = join(src, entry.name);
    const to = join(dest, entry.name);
    if (entry.isDirectory()) {
      await linkTree(from, to, false);
    } else if (entry.isSymbolicLink()) {
      await symlink(await readlink(from), to);
    } else if (entry.isFile()) {
      await linkOrCopy(from, to);
    } else {
      throw new FetchFailedError(`git: unexpected file type in a checkout: ${entry.name}`);
    }
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += await dirBytes(p);
    else total += (await stat(p).catch(() => ({ size: 0 }))).size;
  }
  return total;
}
