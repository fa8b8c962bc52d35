/**
 * Git through simple-git and the real `git`: a cheap `ls-remote` to learn the
 * current revision, and a shallow single-ref fetch of exactly that revision into
 * a work directory. With a bundle `path`, only that folder's files are
 * downloaded: a partial (`--filter=blob:none`) shallow fetch brings the commit and
 * its trees, then one request fetches the blobs under `path`, and a sparse
 * checkout writes only them (servers that refuse filters send everything; git
 * falls back by itself). Credentials arrive as environment prepared by the caller
 * (never in URLs or argv), so they cannot leak into process lists.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
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

/** The environment variables we set for git. */
const BASE_ENV: Record<string, string> = {
  GIT_TERMINAL_PROMPT: '0', // never wait for a password on a tty
  GIT_ASKPASS: 'true', // an empty answer fails fast instead of hanging
  GCM_INTERACTIVE: 'never',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_SSH_COMMAND: 'ssh -o BatchMode=yes',
};

/** The environment of every git process: ours, then the caller's (credentials), over the worker's. */
function gitEnv(opts: GitOptions): Record<string, string> {
  return { ...process.env, ...BASE_ENV, ...(opts.env ?? {}) } as Record<string, string>;
}

/** One network round trip: which commit does the configured ref point at now? */
export async function resolveGitRef(git: GitSource, opts: GitOptions): Promise<ResolvedRef> {
  const ref = git.ref ?? {};
  // Precedence commit > tag > branch; a pinned commit needs no network at all.
  if (ref.commit) return { refName: ref.tag ?? ref.branch, sha: ref.commit, fetchRef: ref.commit };
  const lsRemote = (args: string[]) => gitExec(undefined, ['ls-remote', ...args], opts, git.url);
  if (ref.tag) {
    const out = await lsRemote([git.url, `refs/tags/${ref.tag}`, `refs/tags/${ref.tag}^{}`]);
    const refs = parseLsRemote(out);
    // An annotated tag lists the tag object and, peeled (^{}), the commit: we want the commit.
    const sha = refs.get(`refs/tags/${ref.tag}^{}`) ?? refs.get(`refs/tags/${ref.tag}`);
    if (!sha) throw new FetchFailedError(`tag '${ref.tag}' not found in ${redactUrl(git.url)}`, { retryable: false });
    return { refName: ref.tag, sha, fetchRef: `refs/tags/${ref.tag}` };
  }
  if (ref.branch) {
    const out = await lsRemote([git.url, `refs/heads/${ref.branch}`]);
    const sha = parseLsRemote(out).get(`refs/heads/${ref.branch}`);
    if (!sha) {
      throw new FetchFailedError(`branch '${ref.branch}' not found in ${redactUrl(git.url)}`, { retryable: false });
    }
    return { refName: ref.branch, sha, fetchRef: `refs/heads/${ref.branch}` };
  }
  // No ref: the remote's default branch, as HEAD's symbolic target says.
  const out = await lsRemote(['--symref', git.url, 'HEAD']);
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

/**
 * What a fetch asks for. A ResolvedRef is one; a branch or a tag needs no
 * ls-remote first: the fetch resolves the name itself, and the checkout says
 * which commit it got.
 */
export interface FetchTarget {
  refName?: string;
  /** A full ref name, or the commit itself. */
  fetchRef: string;
  /** The commit, when known (a pinned commit, or what ls-remote said). */
  sha?: string;
}

/**
 * The fetch target of a spec without asking the remote; undefined when the spec
 * names no ref (the default branch's name takes an ls-remote: resolveGitRef).
 */
export function fetchTargetOf(git: GitSource): FetchTarget | undefined {
  const ref = git.ref ?? {};
  // Precedence commit > tag > branch, as in resolveGitRef.
  if (ref.commit) return { refName: ref.tag ?? ref.branch, sha: ref.commit, fetchRef: ref.commit };
  if (ref.tag) return { refName: ref.tag, fetchRef: `refs/tags/${ref.tag}` };
  if (ref.branch) return { refName: ref.branch, fetchRef: `refs/heads/${ref.branch}` };
  return undefined;
}

/**
 * The commit named by `revision` (as resolveRevision formats it) when it is a
 * revision of `target`'s ref; undefined otherwise (e.g. the spec changed since).
 */
export function commitOfRevision(target: FetchTarget, revision: string | undefined): string | undefined {
  const m = revision ? /^(?:(.+)@)?sha(?:1|256):([0-9a-f]{40}|[0-9a-f]{64})$/.exec(revision) : null;
  if (!m?.[2] || m[1] !== target.refName) return undefined;
  if (target.sha !== undefined && target.sha !== m[2]) return undefined;
  return m[2];
}

export interface FetchStrategy {
  /** The normalized bundle path ('' or unset: the whole tree). */
  path?: string;
  /**
   * With a path, download only the files under it (partial fetch + sparse
   * checkout); default true. False fetches and checks out the whole tree.
   */
  partial?: boolean;
  /** The commit resolveRevision saw for the target's ref in this cycle (commitOfRevision). */
  commit?: string;
}

/**
 * Shallow fetch of exactly one ref into `dir` (created), checked out detached.
 * With a bundle path, a partial fetch (commit and trees, no blobs) is followed by
 * one fetch of the blobs under the path and a sparse checkout of it, so a small
 * folder of a large repository costs about its own size.
 */
export async function fetchGitRef(
  git: GitSource,
  target: FetchTarget,
  dir: string,
  opts: GitOptions,
  strategy: FetchStrategy = {},
): Promise<Checkout> {
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

/**
 * Fetches, in one request, the blobs under `path` at `rev` that the (partial)
 * repository at `dir` lacks, plus the .gitattributes of the folders above `path`
 * (a checkout reads them). Returns how many blobs were missing. A `path` that is
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

/** `.gitattributes` of every folder above `path` (not its own: that one is inside it). */
function ancestorAttributeFiles(path: string): string[] {
  const parts = path ? path.split('/') : [];
  const out: string[] = [];
  for (let i = 0; i < parts.length; i++) out.push([...parts.slice(0, i), '.gitattributes'].join('/'));
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
    if (!/reference is not a tree|unable to read tree|did not match any|bad object|unknown revision|invalid reference/i.test(String(err))) throw err;
    throw new FetchFailedError(`commit ${target.sha ?? target.fetchRef} not found in ${redactUrl(git.url)}`, {
      cause: err,
      retryable: false,
    });
  }
  // A detached HEAD holds the commit itself: no rev-parse process needed.
  const head = (await readFile(join(dir, '.git', 'HEAD'), 'utf8')).trim();
  if (!/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(head)) throw new FetchFailedError(`git: unexpected HEAD after checkout: ${head.slice(0, 80)}`);
  return head;
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
 * one) — protocol v2 then lists no refs, and the cycle gets the very commit it
 * announced even if the branch moved since — else by name. A server that refuses
 * commits by id gets the ref by name; a pinned commit it refuses takes a full
 * fetch of every branch. `into` is the local ref to write.
 */
export async function fetchTargetRef(
  fetch: (args: string[]) => Promise<unknown>,
  git: GitSource,
  target: FetchTarget,
  opts: { commit?: string | undefined; byId?: boolean; into?: string },
): Promise<FetchedRef> {
  const pinned = target.fetchRef === target.sha ? target.sha : undefined;
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
    if (pinned === undefined || err instanceof AuthenticationFailedError) throw refNotFound(err, git, target);
    return allBranches(err);
  }
  return { rev: opts.into ?? 'FETCH_HEAD', how: 'name', refusedById };
}

/**
 * The remote would not send a commit asked for by id: a protocol v0 server
 * without uploadpack.allowReachableSHA1InWant, or a commit force-pushed away.
 * Fetching the ref by name still works then.
 */
export function refusedCommitWant(err: unknown): boolean {
  return err instanceof FetchFailedError && /not our ref|unadvertised object|couldn't find remote ref/i.test(err.message);
}

/** A fetch of a named ref that is not there says so as resolveGitRef would, instead of as a network failure. */
export function refNotFound(err: unknown, git: GitSource, target: FetchTarget): unknown {
  if (!(err instanceof FetchFailedError) || !/couldn't find remote ref/i.test(err.message)) return err;
  const kind = target.fetchRef.startsWith('refs/tags/') ? 'tag' : 'branch';
  return new FetchFailedError(`${kind} '${target.refName ?? target.fetchRef}' not found in ${redactUrl(git.url)}`, {
    cause: err,
    retryable: false,
  });
}

export interface InitRepoOptions {
  url: string;
  /** Only this folder is checked out (a sparse-checkout pattern). */
  sparsePath?: string;
  /** Object directory to borrow objects from (objects/info/alternates). */
  alternates?: string;
  /** Mark `origin` as the partial-clone promisor: absent objects are fetched from it on demand. */
  promisor?: boolean;
}

/**
 * `git init` of a work tree at `dir` with remote `origin` (written to the config
 * file directly: one process, no URL in argv), and optionally alternates, a
 * promisor remote and a sparse-checkout pattern.
 */
export async function initRepo(dir: string, init: InitRepoOptions, opts: GitOptions): Promise<void> {
  if (/[\0\n\r]/.test(init.url)) throw new InvalidSpecError(`spec.git.url: must be a single line`);
  await mkdir(dir, { recursive: true });
  // No template: no sample hooks and descriptions to copy for a throwaway repository.
  await gitExec(dir, ['init', '--quiet', '--template='], opts, init.url);
  const gitDir = join(dir, '.git');
  const config = init.promisor
    ? `[core]\n\trepositoryformatversion = 1\n\tlogAllRefUpdates = false\n[extensions]\n\tpartialClone = origin\n${remoteConfig(init.url, true)}`
    : `[core]\n\tlogAllRefUpdates = false\n${remoteConfig(init.url)}`;
  await appendFile(join(gitDir, 'config'), config);
  if (init.alternates !== undefined) {
    await mkdir(join(gitDir, 'objects', 'info'), { recursive: true });
    await writeFile(join(gitDir, 'objects', 'info', 'alternates'), `${init.alternates}\n`);
  }
  if (init.sparsePath !== undefined) {
    await mkdir(join(gitDir, 'info'), { recursive: true });
    await writeFile(join(gitDir, 'info', 'sparse-checkout'), `${sparsePattern(init.sparsePath)}\n`);
  }
}

/**
 * The `[remote "origin"]` section of a git config file, written directly rather
 * than by `git config` (one process less, and the URL stays out of argv).
 */
export function remoteConfig(url: string, promisor = false): string {
  if (/[\0\n\r]/.test(url)) throw new InvalidSpecError(`spec.git.url: must be a single line`);
  const quoted = `"${url.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  return `[remote "origin"]\n\turl = ${quoted}\n${promisor ? '\tpromisor = true\n' : ''}`;
}

/** A non-cone sparse-checkout pattern selecting exactly the folder `path` ('' = everything). */
export function sparsePattern(path: string): string {
  if (path === '') return '/*';
  // Every wildcard or special character is escaped, so the folder name is matched literally.
  return `/${path.replace(/[\\*?[\]!# ]/g, (c) => `\\${c}`)}/`;
}

/** Config for every git process started here: no background maintenance, no fsync of throwaway data, packs kept as packs. */
const FAST_CONFIG = ['gc.auto=0', 'maintenance.auto=false', 'core.fsync=none', 'fetch.unpackLimit=1', 'fetch.showForcedUpdates=false', 'advice.detachedHead=false'];

export interface ExecOptions {
  /** Extra `-c key=value` settings. */
  config?: string[];
  /** Written to git's stdin. */
  input?: string;
}

/**
 * Runs one git process in `cwd` with our environment (credentials included) and
 * returns its stdout; failures become the typed errors of classifyGitError, with
 * git's own message.
 */
export async function gitExec(cwd: string | undefined, args: string[], opts: GitOptions, url: string, exec: ExecOptions = {}): Promise<string> {
  const request: SpawnRequest = {
    file: opts.binary ?? 'git',
    args: [...[...FAST_CONFIG, ...(exec.config ?? [])].flatMap((c) => ['-c', c]), ...args],
    ...(cwd !== undefined ? { cwd } : {}),
    env: gitEnv(opts),
    input: exec.input ?? '',
    timeoutMs: opts.timeoutMs,
  };
  let result: SpawnResult;
  try {
    result = await spawner.run(request);
  } catch (err) {
    throw classifyGitError(err, url);
  }
  if (result.timedOut) throw classifyGitError(new Error(`git ${args[0] ?? ''} timed out after ${opts.timeoutMs} ms`), url);
  if (result.code !== 0) throw classifyGitError(new Error(result.stderr.trim() || `git ${args[0] ?? ''} exited with ${result.code ?? result.signal}`), url);
  return Buffer.from(result.stdout).toString('utf8');
}

interface SpawnRequest {
  file: string;
  args: string[];
  cwd?: string;
  env: Record<string, string>;
  input: string;
  timeoutMs: number;
}

interface SpawnResult {
  code: number | null;
  signal: string | null;
  timedOut: boolean;
  stdout: Uint8Array;
  stderr: string;
}

/** Starts one process and collects its output; the same code runs in the helper below. */
function spawnCollect(req: SpawnRequest, done: (err: Error | null, result?: SpawnResult) => void): void {
  const child = spawn(req.file, req.args, { cwd: req.cwd, env: req.env, stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  let err = '';
  let timedOut = false;
  let finished = false;
  const finish = (e: Error | null, r?: SpawnResult) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    done(e, r);
  };
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, req.timeoutMs);
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    if (err.length < 64 * 1024) err += d;
  });
  child.stdin.on('error', () => undefined); // git may exit before reading its input
  child.once('error', (e) => finish(e));
  child.once('close', (code, signal) => finish(null, { code, signal, timedOut, stdout: Buffer.concat(out), stderr: err }));
  child.stdin.end(req.input);
}

/**
 * The helper process git is started from. Starting a process from a big one
 * copies its page tables while its event loop waits: a worker holding a thousand
 * cached workflows (~1 GiB) spends 15-60 ms of blocked time per git process on a
 * VM, the ~40 MiB helper ~4 ms. It starts only what it is sent over its private
 * IPC channel (the binary, arguments and environment built here), and exits with
 * the worker. ARENA_SOURCE_GIT_SPAWNER=off starts git from the worker itself.
 */
const HELPER_SOURCE = `
const { spawn } = require('node:child_process');
${spawnCollect.toString()}
process.on('disconnect', () => process.exit(0));
process.on('message', (m) => {
  spawnCollect(m.req, (err, result) => {
    if (process.connected) process.send(err ? { id: m.id, error: String(err && err.message) } : { id: m.id, result });
  });
});
`;

class Spawner {
  private helper: ChildProcess | undefined;
  private readonly pending = new Map<number, { resolve: (r: SpawnResult) => void; reject: (e: Error) => void }>();
  private seq = 0;

  run(req: SpawnRequest): Promise<SpawnResult> {
    const helper = /^(off|false|0|no)$/i.test(process.env.ARENA_SOURCE_GIT_SPAWNER ?? '') ? undefined : this.ensure();
    if (!helper) {
      return new Promise((resolve, reject) => spawnCollect(req, (err, result) => (err ? reject(err) : resolve(result!))));
    }
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      helper.channel?.ref();
      helper.send({ id, req }, (err) => {
        if (err) this.settle(id, err);
      });
    });
  }

  private settle(id: number, err: Error | null, result?: SpawnResult): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (this.pending.size === 0) this.helper?.channel?.unref();
    if (err) p.reject(err);
    else p.resolve(result!);
  }

  private ensure(): ChildProcess | undefined {
    if (this.helper?.connected) return this.helper;
    try {
      const helper = spawn(process.execPath, ['-e', HELPER_SOURCE], {
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
        serialization: 'advanced',
        env: { PATH: process.env.PATH ?? '' },
      });
      helper.on('message', (m: { id: number; error?: string; result?: SpawnResult }) =>
        this.settle(m.id, m.error !== undefined ? new Error(m.error) : null, m.result),
      );
      const gone = () => {
        if (this.helper === helper) this.helper = undefined;
        for (const id of [...this.pending.keys()]) this.settle(id, new Error('the git helper process exited'));
      };
      helper.once('exit', gone);
      helper.once('error', gone);
      helper.unref();
      helper.channel?.unref();
      this.helper = helper;
      return helper;
    } catch {
      return undefined;
    }
  }
}

const spawner = new Spawner();

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
