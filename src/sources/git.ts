/**
 * Git through simple-git (which drives the real `git`): a cheap `ls-remote` to
 * learn the current revision, and a shallow single-ref fetch of exactly that
 * revision into a work directory. Credentials arrive as environment prepared by
 * the caller (never in URLs or argv), so they cannot leak into process lists.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { simpleGit, type SimpleGit } from 'simple-git';
import { gitRevision } from '../api/revision.js';
import { redactUrl } from '../api/spec-rules.js';
import type { GitSource } from '../api/schema.js';
import { AuthenticationFailedError, FetchFailedError, InvalidSpecError } from '../errors.js';

export interface GitOptions {
  /** The git binary (default: `git` on PATH). */
  binary?: string;
  /** Extra environment for git (credential helpers, ssh command); values are never logged. */
  env?: Record<string, string>;
  timeoutMs: number;
}

/** Names the ref a cycle works on; `refName` is what the revision string shows. */
export interface ResolvedRef {
  refName?: string;
  sha: string;
  /** What to fetch: a full ref name, or the commit itself. */
  fetchRef: string;
}

/** The environment variables we set for git; simple-git refuses unlisted GIT_* variables. */
const BASE_ENV: Record<string, string> = {
  GIT_TERMINAL_PROMPT: '0', // never wait for a password on a tty
  GIT_ASKPASS: 'true', // an empty answer fails fast instead of hanging
  GCM_INTERACTIVE: 'never',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_SSH_COMMAND: 'ssh -o BatchMode=yes',
};

function client(opts: GitOptions, baseDir?: string): SimpleGit {
  const env = { ...process.env, ...BASE_ENV, ...(opts.env ?? {}) } as Record<string, string>;
  const allowEnvironment = Object.keys(env).filter((k) => k.toUpperCase().startsWith('GIT_'));
  return simpleGit({
    baseDir,
    binary: opts.binary ?? 'git',
    maxConcurrentProcesses: 1,
    timeout: { block: opts.timeoutMs },
    allowEnvironment,
    // Credentials arrive as GIT_CONFIG_COUNT config (src/sources/git-auth.ts), which also resets
    // credential.helper; the environment is built here and in git-auth.ts, never from user input.
    unsafe: {
      allowUnsafeSshCommand: true,
      allowUnsafeAskPass: true,
      allowUnsafeConfigEnvCount: true,
      allowUnsafeCredentialHelper: true,
    },
  } as Parameters<typeof simpleGit>[0]).env(env);
}

/** One network round trip: which commit does the configured ref point at now? */
export async function resolveGitRef(git: GitSource, opts: GitOptions): Promise<ResolvedRef> {
  const ref = git.ref ?? {};
  // Precedence commit > tag > branch; a pinned commit needs no network at all.
  if (ref.commit) return { refName: ref.tag ?? ref.branch, sha: ref.commit, fetchRef: ref.commit };
  const g = client(opts);
  if (ref.tag) {
    const out = await run(() => g.listRemote([git.url, `refs/tags/${ref.tag}`, `refs/tags/${ref.tag}^{}`]), git.url);
    const refs = parseLsRemote(out);
    // An annotated tag lists the tag object and, peeled (^{}), the commit: we want the commit.
    const sha = refs.get(`refs/tags/${ref.tag}^{}`) ?? refs.get(`refs/tags/${ref.tag}`);
    if (!sha) throw new FetchFailedError(`tag '${ref.tag}' not found in ${redactUrl(git.url)}`, { retryable: false });
    return { refName: ref.tag, sha, fetchRef: `refs/tags/${ref.tag}` };
  }
  if (ref.branch) {
    const out = await run(() => g.listRemote([git.url, `refs/heads/${ref.branch}`]), git.url);
    const sha = parseLsRemote(out).get(`refs/heads/${ref.branch}`);
    if (!sha) {
      throw new FetchFailedError(`branch '${ref.branch}' not found in ${redactUrl(git.url)}`, { retryable: false });
    }
    return { refName: ref.branch, sha, fetchRef: `refs/heads/${ref.branch}` };
  }
  // No ref: the remote's default branch, as HEAD's symbolic target says.
  const out = await run(() => g.listRemote(['--symref', git.url, 'HEAD']), git.url);
  const symref = /^ref: refs\/heads\/(\S+)\tHEAD$/m.exec(out);
  const sha = parseLsRemote(out).get('HEAD');
  if (!symref?.[1] || !sha) {
    throw new FetchFailedError(`${redactUrl(git.url)} has no default branch (empty repository?)`, { retryable: false });
  }
  return { refName: symref[1], sha, fetchRef: `refs/heads/${symref[1]}` };
}

export interface Checkout {
  dir: string;
  sha: string;
  revision: string;
}

/** Shallow fetch of exactly one ref into `dir` (created), checked out detached. */
export async function fetchGitRef(git: GitSource, resolved: ResolvedRef, dir: string, opts: GitOptions): Promise<Checkout> {
  await mkdir(dir, { recursive: true });
  const g = client(opts, dir);
  await run(() => g.init(), git.url);
  await run(() => g.addRemote('origin', git.url), git.url);
  try {
    await run(() => g.fetch(['--depth', '1', '--no-tags', 'origin', resolved.fetchRef]), git.url);
  } catch (err) {
    // Servers that refuse unadvertised commits in want lines need a full fetch for a pinned commit.
    if (resolved.fetchRef !== resolved.sha || err instanceof AuthenticationFailedError) throw err;
    await run(() => g.fetch(['--no-tags', 'origin', '+refs/heads/*:refs/remotes/origin/*']), git.url);
  }
  const target = resolved.fetchRef === resolved.sha ? resolved.sha : 'FETCH_HEAD';
  try {
    await g.raw(['checkout', '--quiet', '--detach', target]);
  } catch (err) {
    throw new FetchFailedError(`commit ${resolved.sha} not found in ${redactUrl(git.url)}`, {
      cause: err,
      retryable: false,
    });
  }
  const sha = (await g.revparse(['HEAD'])).trim();
  return { dir, sha, revision: gitRevision(resolved.refName, sha) };
}

/** The directory inside a checkout that holds the bundle. */
export function bundleDirOf(checkoutDir: string, normalizedPath: string): string {
  if (normalizedPath.split('/').includes('..')) throw new InvalidSpecError(`spec.git.path: must not contain ".."`);
  return normalizedPath ? join(checkoutDir, normalizedPath) : checkoutDir;
}

export function parseLsRemote(out: string): Map<string, string> {
  const refs = new Map<string, string>();
  for (const line of out.split('\n')) {
    const m = /^([0-9a-f]{40}|[0-9a-f]{64})\t(.+)$/.exec(line.trim());
    if (m?.[1] && m[2]) refs.set(m[2], m[1]);
  }
  return refs;
}

/** Runs a git call and turns its failure into a typed error with a message a person can act on. */
async function run<T>(call: () => Promise<T>, url: string): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw classifyGitError(err, url);
  }
}

export function classifyGitError(err: unknown, url: string): Error {
  const raw = err instanceof Error ? err.message : String(err);
  const detail = redactUrl(
    raw
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('hint:'))
      .join('; '),
  );
  const where = redactUrl(url);
  if (/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|host key is known for/i.test(raw)) {
    return new AuthenticationFailedError(
      `git: the SSH host key of ${sshHostOf(url)} did not match known_hosts (host key verification failed; ` +
        `host keys are never trusted on first use)${knownHostsHint(raw, url)}: ${sshHostKeyDetail(raw)}`,
    );
  }
  if (/Load key .*: (invalid format|incorrect passphrase|error in libcrypto)/i.test(raw)) {
    return new AuthenticationFailedError(
      `git: authentication to ${where} failed: ssh could not load the private key from the Secret's 'identity' ` +
        `(not a valid key, or protected by a passphrase): ${detail.replace(/Load key "[^"]*"/g, 'Load key "identity"')}`,
    );
  }
  if (/Authentication failed|could not read (Username|Password)|terminal prompts disabled|403|401|Permission denied \(publickey|Host key verification failed/i.test(raw)) {
    return new AuthenticationFailedError(`git: authentication to ${where} failed: ${detail}`);
  }
  if (/block timeout reached|timed out/i.test(raw)) {
    return new FetchFailedError(`git: ${where} did not answer in time: ${detail}`);
  }
  if (/repository .* not found|not found|does not appear to be a git repository/i.test(raw)) {
    return new FetchFailedError(`git: repository ${where} not found: ${detail}`);
  }
  return new FetchFailedError(`git: ${where}: ${detail}`);
}

/** `host` or `[host]:port`, as known_hosts writes it. */
function sshHostOf(url: string): string {
  try {
    const u = new URL(url);
    return u.port && u.port !== '22' ? `[${u.hostname}]:${u.port}` : u.hostname;
  } catch {
    return redactUrl(url);
  }
}

/** For an unknown host on a non-22 port: how its known_hosts entry must be written. */
function knownHostsHint(raw: string, url: string): string {
  const host = sshHostOf(url);
  return /host key is known for/i.test(raw) && host.startsWith('[')
    ? ` (no entry for ${host}; for a port other than 22 write it as "${host} <keytype> <key>")`
    : '';
}

/** ssh's own lines that say what happened, without its banner or local file paths. */
function sshHostKeyDetail(raw: string): string {
  const keep = raw
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /host key is known for|Host key for .* has changed|fingerprint for|^SHA256:|Host key verification failed/i.test(l));
  return keep.join(' ') || 'Host key verification failed.';
}
