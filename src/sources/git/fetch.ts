/**
 * The fetch strategy. One shallow fetch of exactly one commit: by id when
 * resolveRevision saw it (protocol v2 then lists no refs, and the cycle gets the
 * very commit it announced even if the branch moved since); a v0 server that
 * refuses ids gets the ref by name. With a bundle `path`, only that folder's
 * files are downloaded: a partial (`--filter=blob:none`) fetch brings the commit
 * and its trees, one more request the blobs under `path`, and a sparse checkout
 * writes only them (a server that refuses filters sends everything; git copes).
 * Without a path, the whole tree. The repository cache (cache.ts) uses the same
 * steps on its mirrors.
 */
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { gitRevision } from '../../api/revision.js';
import type { GitSource } from '../../api/schema.js';
import { SOURCE_IGNORE_FILE } from '../../bundle/ignore.js';
import { AuthenticationFailedError, FetchFailedError } from '../../errors.js';
import { isMissingCommit, isMissingRef, notFound, refusedCommitWant } from './errors.js';
import { gitExec, type GitOptions } from './exec.js';
import { pinnedCommit, refKind, type FetchTarget } from './refs.js';
import { initRepo } from './repo.js';

export interface Checkout {
  dir: string;
  sha: string;
  revision: string;
}

export interface FetchStrategy {
  /** The normalized bundle path ('' or unset: the whole tree). */
  path?: string;
  /**
   * With a path, download only the files under it (partial fetch + sparse
   * checkout); default true. False fetches and checks out the whole tree.
   */
  partial?: boolean;
  /** The commit resolveRevision saw for the target's ref in this cycle (refs.ts seenCommit). */
  commit?: string | undefined;
}

/** Shallow fetch of `target` into a new repository at `dir`, checked out detached (only `path` of it, when partial). */
export async function fetchGitRef(git: GitSource, target: FetchTarget, dir: string, opts: GitOptions, strategy: FetchStrategy = {}): Promise<Checkout> {
  const path = strategy.path ?? '';
  const partial = path !== '' && strategy.partial !== false;
  await initRepo(dir, { url: git.url, ...(partial ? { sparsePath: path } : {}) }, opts);
  const fetch = (args: string[]) =>
    gitExec(dir, ['fetch', '--quiet', '--no-tags', ...(partial ? ['--filter=blob:none'] : []), 'origin', ...args], opts, git.url);
  const { rev } = await fetchTargetRef(fetch, git, target, { commit: strategy.commit });
  if (partial) {
    try {
      await fetchMissingBlobs(dir, rev, path, opts, git.url);
    } catch (err) {
      if (!refusedCommitWant(err)) throw err;
      // The server will not send blobs by id (protocol v0 without uploadpack.allowAnySHA1InWant): the whole tree.
      await rm(dir, { recursive: true, force: true });
      return fetchGitRef(git, target, dir, opts, { ...strategy, partial: false });
    }
  }
  const sha = await checkoutDetached(dir, rev, partial ? path : undefined, opts, git, target);
  return { dir, sha, revision: gitRevision(target.refName, sha) };
}

export interface FetchedRef {
  /** What to check out: the commit id, or the local ref the fetch wrote (FETCH_HEAD without `into`). */
  rev: string;
  how: 'commit' | 'name' | 'all-branches';
  /** The server refused the commit by id (the fetch then went by name). */
  refusedById: boolean;
}

/**
 * One shallow fetch of `target` through `fetch` (`git fetch … origin <args>`): by
 * commit id when one is known (`commit`, the one resolveRevision saw, or a pinned
 * one), else by name. A server that refuses commits by id gets the ref by name;
 * a pinned commit it refuses takes a full fetch of every branch. `into` is the
 * local ref to write; `byId: false` skips asking by id (a server known to refuse).
 */
export async function fetchTargetRef(
  fetch: (args: string[]) => Promise<unknown>,
  git: GitSource,
  target: FetchTarget,
  opts: { commit?: string | undefined; byId?: boolean; into?: string },
): Promise<FetchedRef> {
  const pinned = pinnedCommit(target);
  const refspec = (src: string) => (opts.into ? `+${src}:${opts.into}` : src);
  const allBranches = async (err: unknown): Promise<FetchedRef> => {
    await fetch(['+refs/heads/*:refs/arena/all/*']);
    return { rev: pinned!, how: 'all-branches', refusedById: refusedCommitWant(err) };
  };
  const id = opts.commit ?? target.sha;
  let refusedById = false;
  if (id !== undefined && (opts.byId !== false || pinned !== undefined)) {
    try {
      await fetch(['--depth', '1', refspec(id)]);
      return { rev: id, how: 'commit', refusedById };
    } catch (err) {
      if (err instanceof AuthenticationFailedError) throw err;
      if (pinned !== undefined) return allBranches(err);
      if (!refusedCommitWant(err)) throw err;
      refusedById = true;
    }
  }
  try {
    await fetch(['--depth', '1', refspec(target.fetchRef)]);
  } catch (err) {
    if (pinned === undefined || err instanceof AuthenticationFailedError) {
      // A named ref that is not there says so as resolveGitRef would, not as a network failure.
      throw isMissingRef(err) ? notFound(git, `${refKind(target)} '${target.refName ?? target.fetchRef}'`, err) : err;
    }
    return allBranches(err);
  }
  return { rev: opts.into ?? 'FETCH_HEAD', how: 'name', refusedById };
}

/**
 * Fetches, in one request, the blobs under `path` at `rev` that the (partial)
 * repository at `dir` lacks, plus the .gitattributes (a checkout reads them) and
 * .sourceignore files of the folders above `path`. Returns how many blobs were missing. A `path` that is
 * not a folder at `rev` fetches nothing: packing then reports it.
 */
export async function fetchMissingBlobs(dir: string, rev: string, path: string, opts: GitOptions, url: string): Promise<number> {
  let listed: string;
  try {
    // --missing=print lists what is absent instead of fetching it object by object.
    listed = await gitExec(dir, ['rev-list', '--objects', '--missing=print', path ? `${rev}:${path}` : `${rev}^{tree}`], opts, url);
  } catch {
    return 0;
  }
  const missing = listed
    .split('\n')
    .filter((line) => line.startsWith('?'))
    .map((line) => line.slice(1).trim());
  if (missing.length === 0) return 0;
  const attributes = ancestorAttributeFiles(path);
  if (attributes.length > 0) {
    const entries = await gitExec(dir, ['ls-tree', '-z', rev, '--', ...attributes], opts, url);
    for (const entry of entries.split('\0')) {
      const m = /^\d+ blob ([0-9a-f]+)\t/.exec(entry);
      if (m?.[1]) missing.push(m[1]);
    }
  }
  // What git's own lazy fetch runs, for all of them at once.
  await gitExec(
    dir,
    ['fetch', '--quiet', '--no-tags', '--no-write-fetch-head', '--recurse-submodules=no', '--filter=blob:none', '--stdin', 'origin'],
    opts,
    url,
    { config: ['fetch.negotiationAlgorithm=noop'], input: `${missing.join('\n')}\n` },
  );
  return missing.length;
}

/** `.gitattributes` (read by checkout) and `.sourceignore` (src/bundle/ignore.ts) of every folder above `path` (not its own: that one is inside it). */
function ancestorAttributeFiles(path: string): string[] {
  const parts = path ? path.split('/') : [];
  const out: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    for (const name of ['.gitattributes', SOURCE_IGNORE_FILE]) out.push([...parts.slice(0, i), name].join('/'));
  }
  return out;
}

/** Checks `rev` out detached (only `sparsePath` when given) and returns the commit checked out. */
export async function checkoutDetached(
  dir: string,
  rev: string,
  sparsePath: string | undefined,
  opts: GitOptions,
  git: GitSource,
  target: FetchTarget,
): Promise<string> {
  const sparse = sparsePath !== undefined ? ['core.sparseCheckout=true', 'core.sparseCheckoutCone=false'] : [];
  try {
    await gitExec(dir, ['checkout', '--quiet', '--detach', rev], opts, git.url, { config: sparse });
  } catch (err) {
    // Anything but "no such commit" (a lazy fetch that failed, a full disk) keeps its own message.
    if (!isMissingCommit(err)) throw err;
    throw notFound(git, `commit ${target.sha ?? target.fetchRef}`, err);
  }
  // A detached HEAD holds the commit itself: no rev-parse process needed.
  const head = (await readFile(join(dir, '.git', 'HEAD'), 'utf8')).trim();
  if (!/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(head)) throw new FetchFailedError(`git: unexpected HEAD after checkout: ${head.slice(0, 80)}`);
  return head;
}
