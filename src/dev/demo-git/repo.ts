/**
 * Helpers that build real git repositories with the real git CLI: bare
 * repositories to serve (GitHttpServer), seeded with files, and new commits
 * pushed to them over any URL git understands (a bare path or http://…).
 *
 * They do not depend on the user's git configuration: identity, default
 * branch and signing are fixed here, and ~/.gitconfig and /etc/gitconfig are
 * ignored, so they work on a fresh machine.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

/** The identity every helper commit is made with. */
export const DEVGIT_IDENTITY = { name: 'Arena Source Dev', email: 'devgit@arena-source.invalid' } as const;

export type FileContents = Record<string, string | Uint8Array>;

export interface CommitOptions {
  /** Branch to commit on; created if missing (see `from`). */
  branch: string;
  message: string;
  /** Tag to point at the new commit; moved if it exists. */
  tag?: string;
  /** Make `tag` an annotated tag (default: lightweight). */
  annotatedTag?: boolean;
  /** Paths (files or directories) to delete in the same commit. */
  remove?: string[];
  /**
   * Where a branch that does not exist yet starts: a ref or sha on the remote.
   * Default: the remote's HEAD (default branch) if it has one, else an empty
   * history (orphan commit).
   */
  from?: string;
}

export interface SeedOptions {
  branch?: string;
  message?: string;
  tag?: string;
  annotatedTag?: boolean;
}

/** Environment for helper git calls: fixed identity, no user/system config, no prompts. */
export function gitEnv(extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ['GIT_DIR', 'GIT_WORK_TREE', 'GIT_INDEX_FILE', 'GIT_OBJECT_DIRECTORY', 'GIT_NAMESPACE', 'GIT_CONFIG_PARAMETERS', 'GIT_CONFIG_COUNT']) {
    delete env[k];
  }
  return {
    ...env,
    GIT_AUTHOR_NAME: DEVGIT_IDENTITY.name,
    GIT_AUTHOR_EMAIL: DEVGIT_IDENTITY.email,
    GIT_COMMITTER_NAME: DEVGIT_IDENTITY.name,
    GIT_COMMITTER_EMAIL: DEVGIT_IDENTITY.email,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_TERMINAL_PROMPT: '0',
    GIT_ASKPASS: '',
    SSH_ASKPASS: '',
    GCM_INTERACTIVE: 'never',
    LC_ALL: 'C',
    ...extra,
  };
}

/** Options every helper git call gets, whatever git version or config. */
const BASE_CONFIG = [
  '-c', 'init.defaultBranch=main',
  '-c', 'commit.gpgSign=false',
  '-c', 'tag.gpgSign=false',
  '-c', 'core.autocrlf=false',
  '-c', 'credential.helper=',
  '-c', 'advice.detachedHead=false',
];

export interface GitResult {
  stdout: string;
  stderr: string;
}

/** Runs `git args…` in `cwd`; rejects with git's stderr in the message. */
export function git(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<GitResult> {
  return new Promise((resolve, reject) => {
    execFile(
      'git',
      [...BASE_CONFIG, ...args],
      { cwd: opts.cwd, env: gitEnv(opts.env), maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err) {
          const e = new Error(
            `git ${args.join(' ')} failed${opts.cwd ? ` in ${opts.cwd}` : ''}: ${stderr.trim() || err.message}`,
            { cause: err },
          );
          reject(e);
          return;
        }
        resolve({ stdout, stderr });
      },
    );
  });
}

/** Path of the bare repository `name` under `root` (`name.git`). */
export function bareRepoPath(root: string, name: string): string {
  const n = name.replace(/^\/+|\/+$/g, '');
  return path.join(root, n.endsWith('.git') ? n : `${n}.git`);
}

/**
 * Creates (or re-configures) the bare repository `root/name.git` with default
 * branch main, allowing fetch by reachable sha, partial-clone filters and
 * pushes over HTTP. Returns its path.
 */
export async function createBareRepo(root: string, name: string): Promise<string> {
  const dir = bareRepoPath(root, name);
  const existed = existsSync(path.join(dir, 'HEAD'));
  await mkdir(dir, { recursive: true });
  await git(['init', '--quiet', '--bare', dir]);
  if (!existed) {
    // Pre-2.28 git ignores init.defaultBranch; set HEAD explicitly.
    await git(['symbolic-ref', 'HEAD', 'refs/heads/main'], { cwd: dir });
  }
  for (const [k, v] of [
    ['uploadpack.allowReachableSHA1InWant', 'true'],
    ['uploadpack.allowFilter', 'true'],
    ['http.receivepack', 'true'],
    ['receive.denyNonFastForwards', 'false'],
  ] as const) {
    await git(['config', k, v], { cwd: dir });
  }
  return dir;
}

/**
 * Creates the bare repository `root/name.git` (if needed) and commits `files`
 * to it (branch default main, tag optional). Returns the commit sha.
 */
export async function seedRepo(root: string, name: string, files: FileContents, opts: SeedOptions = {}): Promise<string> {
  const dir = await createBareRepo(root, name);
  return commitFiles(dir, files, {
    branch: opts.branch ?? 'main',
    message: opts.message ?? 'Seed repository',
    ...(opts.tag !== undefined ? { tag: opts.tag } : {}),
    ...(opts.annotatedTag !== undefined ? { annotatedTag: opts.annotatedTag } : {}),
  });
}

function safeRelative(p: string): string {
  const norm = path.posix.normalize(p.replace(/\\/g, '/')).replace(/^\/+/, '');
  if (norm === '' || norm === '.' || norm.startsWith('../') || norm === '..') {
    throw new Error(`path escapes the repository: ${JSON.stringify(p)}`);
  }
  return norm;
}

/**
 * Clones `repo` (a bare path or a URL, credentials may be in it) into a temp
 * work tree, writes `files` (paths relative to the repo root, parents
 * created), removes `remove`, commits on `branch` with the fixed identity,
 * pushes the branch (and the tag, forced) and returns the new commit's sha.
 */
export async function commitFiles(repo: string, files: FileContents, opts: CommitOptions): Promise<string> {
  const work = await mkdtemp(path.join(tmpdir(), 'devgit-work-'));
  try {
    await git(['init', '--quiet', work]);
    const run = (args: string[]): Promise<GitResult> => git(args, { cwd: work });
    await run(['remote', 'add', 'origin', repo]);

    const branchRef = `refs/heads/${opts.branch}`;
    const remoteRefs = await run(['ls-remote', '--symref', 'origin', 'HEAD', branchRef]);
    const hasBranch = remoteRefs.stdout.split('\n').some((l) => l.split('\t')[1] === branchRef);
    let base: string | undefined;
    if (hasBranch) base = branchRef;
    else if (opts.from !== undefined) base = opts.from;
    else if (remoteRefs.stdout.split('\n').some((l) => /^[0-9a-f]{40,64}\tHEAD$/.test(l))) base = 'HEAD';

    if (base !== undefined) {
      await run(['fetch', '--quiet', '--no-tags', 'origin', base]);
      await run(['checkout', '--quiet', '-B', opts.branch, 'FETCH_HEAD']);
    } else {
      await run(['checkout', '--quiet', '--orphan', opts.branch]);
    }

    for (const p of opts.remove ?? []) {
      await run(['rm', '-r', '-q', '--ignore-unmatch', '--', safeRelative(p)]);
      await rm(path.join(work, safeRelative(p)), { recursive: true, force: true });
    }
    for (const [p, content] of Object.entries(files)) {
      const target = path.join(work, safeRelative(p));
      await mkdir(path.dirname(target), { recursive: true });
      await writeFile(target, content);
    }
    await run(['add', '-A']);
    await run(['commit', '--quiet', '--allow-empty', '--no-verify', '-m', opts.message]);
    const sha = (await run(['rev-parse', 'HEAD'])).stdout.trim();

    const refspecs = [`HEAD:${branchRef}`];
    if (opts.tag !== undefined) {
      if (opts.annotatedTag) await run(['tag', '-f', '-a', '-m', opts.message, opts.tag, sha]);
      else await run(['tag', '-f', opts.tag, sha]);
      refspecs.push(`+refs/tags/${opts.tag}:refs/tags/${opts.tag}`);
    }
    await run(['push', '--quiet', 'origin', ...refspecs]);
    return sha;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Full sha a ref resolves to in `repo` (bare path or URL), or undefined. */
export async function resolveRemoteRef(repo: string, ref: string): Promise<string | undefined> {
  const { stdout } = await git(['ls-remote', repo, ref]);
  const line = stdout.split('\n').find((l) => l.trim() !== '');
  return line?.split('\t')[0];
}
