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
 *   2. outside the lock: a work tree in the activity's directory that borrows the
 *      mirror's objects (objects/info/alternates) and checks out only `path`
 *      (sparse), so many sources export at the same time.
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
import { readFile, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { gitRevision } from '../../api/revision.js';
import type { GitSource } from '../../api/schema.js';
import { AuthenticationFailedError, FetchFailedError } from '../../errors.js';
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
}

export interface CacheCheckout extends Checkout {
  /** A fetch of the ref went to the remote (false: the commit was in the mirror already). */
  fetched: boolean;
  /** Blobs fetched for `path` (0: all there already). */
  blobsFetched: number;
}

export const DEFAULT_GIT_CACHE_MAX_BYTES = 2 * 1024 ** 3;
export const DEFAULT_MAX_FETCHES_PER_MIRROR = 50;
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
  private readonly mirrors = new Map<string, Mirror>();

  constructor(opts: GitCacheOptions) {
    this.root = opts.root;
    this.maxBytes = opts.maxBytes ?? DEFAULT_GIT_CACHE_MAX_BYTES;
    this.maxFetches = opts.maxFetchesPerMirror ?? DEFAULT_MAX_FETCHES_PER_MIRROR;
  }

  /** Mirrors and their sizes, for tests and benchmarks. */
  stats(): { mirrors: number; bytes: number; fetches: number } {
    let bytes = 0;
    let fetches = 0;
    for (const m of this.mirrors.values()) {
      bytes += m.bytes;
      fetches += m.fetches;
    }
    return { mirrors: this.mirrors.size, bytes, fetches };
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
      await initRepo(input.dir, { url: git.url, alternates: join(mirror.dir, 'objects'), promisor: true, sparsePath: input.path }, options);
      const checkedOut = await checkoutDetached(input.dir, sha, input.path, options, git, target);
      if (fetched) await this.bound(mirror);
      return { dir: input.dir, sha: checkedOut, revision: gitRevision(target.refName, checkedOut), fetched, blobsFetched };
    } finally {
      mirror.readers--;
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
        m.ready = false;
      } finally {
        release();
      }
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
