/**
 * One git process through simple-git: its environment, `-c` settings, stdin,
 * timeout and error text. Pure data in, data out (GitRequest → GitReply), so
 * it runs the same in the worker or in the git host process (host.ts).
 */
import { GitError, GitPluginError, simpleGit, type SimpleGitOptions } from 'simple-git';

export interface GitRequest {
  /** The git binary (simple-git accepts only plain paths). */
  binary: string;
  /** Working directory (default: this process's). */
  cwd?: string;
  args: string[];
  /** `-c key=value` settings. */
  config: string[];
  /** The whole environment of the process (credentials included: never logged). */
  env: Record<string, string>;
  /** Written to stdin. */
  input?: string;
  timeoutMs: number;
  /** `git init --template=` (no template) trips simple-git's template-dir guard; only initRepo sets this. */
  emptyTemplate?: boolean;
}

export type GitReply = { ok: true; stdout: string } | { ok: false; message: string; timedOut: boolean };

/**
 * simple-git's guards refuse variables and config entries that make git run
 * another program. Ours are needed and come from this code, never from a spec:
 *   GIT_ASKPASS=true (an empty answer instead of a prompt), GIT_SSH_COMMAND (ssh
 *   in batch mode, or with the Secret's key: auth.ts), GIT_CONFIG_COUNT entries
 *   (auth.ts: the auth header and `credential.helper=` to switch helpers off).
 * Everything else stays guarded, argv included.
 */
const UNSAFE: SimpleGitOptions['unsafe'] = {
  allowUnsafeAskPass: true,
  allowUnsafeSshCommand: true,
  allowUnsafeConfigEnvCount: true,
  allowUnsafeCredentialHelper: true,
};

/**
 * Variables simple-git refuses that git needs for nothing here (an editor, a
 * pager, an askpass program for a prompt that never happens). npm sets EDITOR,
 * so they are dropped rather than refused.
 */
const INTERACTIVE_ONLY = /^(EDITOR|VISUAL|PAGER|SSH_ASKPASS|PREFIX)$/i;

/** Runs one git process; a failure is a reply with git's stderr, never a throw. */
export async function runGit(req: GitRequest): Promise<GitReply> {
  const env = Object.fromEntries(Object.entries(req.env).filter(([k]) => !INTERACTIVE_ONLY.test(k)));
  const input = req.input;
  const options: Partial<SimpleGitOptions> = {
    binary: req.binary,
    config: req.config,
    // Killed after timeoutMs without output: with --quiet, that is timeoutMs in all (the workflow bounds the activity too).
    timeout: { block: req.timeoutMs },
    // The environment is ours (the worker's, then our settings and credentials): every GIT_* of it is meant.
    allowEnvironment: Object.keys(env).filter((k) => /^git_/i.test(k)),
    unsafe: { ...UNSAFE, ...(req.emptyTemplate ? { allowUnsafeTemplateDir: true } : {}) },
    ...(input !== undefined ? { input: () => input } : {}),
    errors: gitError,
    ...(req.cwd !== undefined ? { baseDir: req.cwd } : {}),
  };
  try {
    const git = simpleGit(options).env(env).outputHandler(noSilentWait);
    return { ok: true, stdout: await git.raw(req.args) };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return { ok: false, message: message.slice(0, 64 * 1024), timedOut: err instanceof GitPluginError && err.plugin === 'timeout' };
  }
}

/**
 * The error of a finished process: simple-git's own (the timeout), or
 * git's stderr alone for any non-zero exit (simple-git's default rejects only when
 * stderr is not empty, and mixes stdout in).
 */
function gitError(error: Buffer | Error | undefined, result: { exitCode: number; stdErr: Buffer[] }): Error | undefined {
  if (error instanceof GitPluginError) return error;
  if (result.exitCode === 0) return undefined;
  const stderr = Buffer.concat(result.stdErr).toString('utf8').trim();
  // A binary that could not be started: simple-git puts the whole stack there.
  // A GitError: anything else simple-git wraps again, as "Error: <message>".
  if (stderr.startsWith('Error: spawn ')) return new GitError(undefined, stderr.split('\n')[0]);
  return new GitError(undefined, stderr || `git exited with ${result.exitCode}`);
}

/**
 * simple-git waits 50 ms more after a process that wrote nothing (its completion
 * plugin, for output arriving after exit); `--quiet` fetches and checkouts write
 * nothing. An empty chunk, sent once its listeners are attached, marks output as
 * seen; it adds no bytes.
 */
function noSilentWait(_command: string, stdout: NodeJS.ReadableStream): void {
  queueMicrotask(() => stdout.emit('data', Buffer.alloc(0)));
}
