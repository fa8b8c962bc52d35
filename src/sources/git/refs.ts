/**
 * Which commit a git source means. The spec's ref by precedence commit > name >
 * semver > tag > branch (a commit may carry a name, tag or branch for its
 * revision string), else the remote's default branch; and `ls-remote`, one
 * round trip, to learn where a ref points now (for semver: every tag, one listing).
 */
import { highestTag, rangeProblem, tagInRange } from '../../api/semver-range.js';
import type { GitSource } from '../../api/schema.js';
import { redactUrl } from '../../api/spec-rules.js';
import { FetchFailedError, InvalidSpecError } from '../../errors.js';
import { notFound } from './errors.js';
import { gitExec, type GitOptions } from './exec.js';
import type { ListingShare } from './shared-listings.js';

/** What a fetch asks for; `refName` is what the revision string shows. */
export interface FetchTarget {
  refName?: string;
  /** A full ref name (refs/heads/…, refs/tags/…, any refs/… for ref.name), or the commit itself. */
  fetchRef: string;
  /** The commit, when known (a pinned commit, or what ls-remote said). */
  sha?: string;
}

/** A target whose commit is known. */
export interface ResolvedRef extends FetchTarget {
  sha: string;
}

const COMMIT_ID = /^([0-9a-f]{40}|[0-9a-f]{64})$/;

/**
 * The spec's target without asking the remote, by precedence commit > name >
 * tag > branch; undefined when the spec names no ref (the default branch's name
 * takes an ls-remote: resolveGitRef) or a semver range (which tag takes a listing;
 * semverTargetOf reads it back from the revision resolveRevision reported).
 */
export function fetchTargetOf(git: GitSource): FetchTarget | undefined {
  const ref = git.ref ?? {};
  if (ref.commit) return { refName: ref.name ?? ref.tag ?? ref.branch, sha: ref.commit, fetchRef: ref.commit };
  if (ref.name) return { refName: ref.name, fetchRef: ref.name };
  if (ref.semver) return undefined;
  if (ref.tag) return { refName: ref.tag, fetchRef: `refs/tags/${ref.tag}` };
  if (ref.branch) return { refName: ref.branch, fetchRef: `refs/heads/${ref.branch}` };
  return undefined;
}

/**
 * For a semver ref: the tag of a revision resolveRevision reported (`<tag>@sha1:<commit>`),
 * when that tag is inside the range; undefined otherwise (resolve again: the spec changed).
 */
export function semverTargetOf(git: GitSource, revision: string | undefined): FetchTarget | undefined {
  const range = git.ref?.semver;
  const m = revision ? /^(.+)@sha(?:1|256):[0-9a-f]+$/.exec(revision) : null;
  if (!range || !m?.[1] || !tagInRange(m[1], range)) return undefined;
  return { refName: m[1], fetchRef: `refs/tags/${m[1]}` };
}

/** The commit the spec pins (fetched by id, never by name), if any. */
export function pinnedCommit(target: FetchTarget): string | undefined {
  return target.fetchRef === target.sha ? target.sha : undefined;
}

export function refKind(target: FetchTarget): 'commit' | 'tag' | 'branch' | 'ref' {
  if (pinnedCommit(target) !== undefined) return 'commit';
  if (target.fetchRef.startsWith('refs/tags/')) return 'tag';
  return target.fetchRef.startsWith('refs/heads/') ? 'branch' : 'ref';
}

/**
 * One network round trip (none for a pinned commit): which commit does the spec's ref point at now?
 * With `share`, the listing is shared with other sources of the same repository and credentials
 * (shared-listings.ts): a scheduled poll takes one made moments ago, anything else one that started
 * after it asked.
 */
export async function resolveGitRef(git: GitSource, opts: GitOptions, share?: ListingShare): Promise<ResolvedRef> {
  const target = fetchTargetOf(git);
  if (target?.sha !== undefined) return { ...target, sha: target.sha };
  const list = (args: string[]) => {
    const ask = () => gitExec(undefined, ['ls-remote', ...args], opts, git.url);
    if (!share) return ask();
    const key = share.keyOf(args);
    return share.maxAgeMs !== undefined ? share.listings.get(key, share.maxAgeMs, ask) : share.listings.fresh(key, ask);
  };
  const lsRemote = async (args: string[]) => parseLsRemote(await list(args));
  if (target) {
    // An annotated tag lists the tag object and, peeled (^{}), the commit: we want the commit.
    const peeled = `${target.fetchRef}^{}`;
    const refs = await lsRemote([git.url, target.fetchRef, ...(refKind(target) === 'tag' ? [peeled] : [])]);
    const sha = refs.get(peeled) ?? refs.get(target.fetchRef);
    if (!sha) throw notFound(git, `${refKind(target)} '${target.refName}'`);
    return { ...target, sha };
  }
  if (git.ref?.semver) return resolveSemver(git, git.ref.semver, await lsRemote(['--tags', git.url]));
  // No ref: the remote's default branch, as HEAD's symbolic target says.
  const out = await list(['--symref', git.url, 'HEAD']);
  const symref = /^ref: refs\/heads\/(\S+)\tHEAD$/m.exec(out);
  const sha = parseLsRemote(out).get('HEAD');
  if (!symref?.[1] || !sha) {
    throw new FetchFailedError(`${redactUrl(git.url)} has no default branch (empty repository?)`, { retryable: false });
  }
  return { refName: symref[1], sha, fetchRef: `refs/heads/${symref[1]}` };
}

/** The highest tag inside `range` among the listed tags (`ls-remote --tags`), with its commit. */
export function resolveSemver(git: GitSource, range: string, refs: Map<string, string>): ResolvedRef {
  const tags = new Map<string, string>();
  for (const [name, sha] of refs) {
    if (!name.startsWith('refs/tags/')) continue;
    const tag = name.slice('refs/tags/'.length).replace(/\^\{\}$/, '');
    // The peeled entry (the commit of an annotated tag) wins over the tag object.
    if (name.endsWith('^{}') || !tags.has(tag)) tags.set(tag, sha);
  }
  const problem = rangeProblem('spec.git.ref.semver', range);
  if (problem) throw new InvalidSpecError(problem);
  const best = highestTag(tags.keys(), range);
  if (!best) {
    throw new FetchFailedError(`no tag matching semver range '${range}' in ${redactUrl(git.url)} (${tags.size} tags listed)`, { retryable: false });
  }
  return { refName: best, fetchRef: `refs/tags/${best}`, sha: tags.get(best)! };
}

export function parseLsRemote(out: string): Map<string, string> {
  const refs = new Map<string, string>();
  for (const line of out.split('\n')) {
    const m = /^([0-9a-f]{40}|[0-9a-f]{64})\t(.+)$/.exec(line.trim());
    if (m?.[1] && m[2]) refs.set(m[2], m[1]);
  }
  return refs;
}

/** What resolveRevision saw in this cycle: the commit id, and the revision string it reported. */
export interface SeenRevision {
  id?: string | undefined;
  revision?: string | undefined;
}

/**
 * The commit resolveRevision saw for `target`, to fetch by id: `seen.id` when
 * given; without it (a caller that passes only the revision string) the commit
 * parsed from a revision of `target`'s ref. Undefined when it cannot be this
 * target's (the spec pins another commit, or the revision names another ref).
 */
export function seenCommit(target: FetchTarget, seen: SeenRevision): string | undefined {
  let id = seen.id;
  if (id === undefined) {
    const m = seen.revision ? /^(?:(.+)@)?sha(?:1|256):([0-9a-f]{40}|[0-9a-f]{64})$/.exec(seen.revision) : null;
    if (!m?.[2] || m[1] !== target.refName) return undefined;
    id = m[2];
  }
  if (!COMMIT_ID.test(id)) return undefined;
  if (target.sha !== undefined && target.sha !== id) return undefined;
  return id;
}
