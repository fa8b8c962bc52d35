/**
 * `gitExec`: one git command with our environment and settings, run through
 * simple-git in the git host process; its stdout, or the typed error of
 * classifyGitError with git's own message. Credentials arrive in `env` from the
 * caller (auth.ts), never in URLs or argv, so they cannot leak into process lists.
 */
import { classifyGitError } from './errors.js';
import { runGitInHost } from './host.js';

export interface GitOptions {
  /** The git binary (default: `git` on PATH). */
  binary?: string;
  /** Extra environment for git (credential helpers, ssh command); values are never logged. */
  env?: Record<string, string>;
  timeoutMs: number;
}

/** The environment variables we set for git. */
const BASE_ENV: Record<string, string> = {
  GIT_TERMINAL_PROMPT: '0', // never wait for a password on a tty
  GIT_ASKPASS: 'true', // an empty answer fails fast instead of hanging
  GCM_INTERACTIVE: 'never',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_SSH_COMMAND: 'ssh -o BatchMode=yes',
};

/** Config for every git process started here: no background maintenance, no fsync of throwaway data, packs kept as packs. */
const FAST_CONFIG = ['gc.auto=0', 'maintenance.auto=false', 'core.fsync=none', 'fetch.unpackLimit=1', 'fetch.showForcedUpdates=false', 'advice.detachedHead=false'];

export interface ExecOptions {
  /** Extra `-c key=value` settings. */
  config?: string[];
  /** Written to git's stdin. */
  input?: string;
  /** `init --template=`: a repository without sample hooks (simple-git guards the option). */
  emptyTemplate?: boolean;
}

/** Runs `git <args>` in `cwd` and returns its stdout; `url` names the remote in error messages. */
export async function gitExec(cwd: string | undefined, args: string[], opts: GitOptions, url: string, exec: ExecOptions = {}): Promise<string> {
  const reply = await runGitInHost({
    binary: opts.binary ?? 'git',
    ...(cwd !== undefined ? { cwd } : {}),
    args,
    config: [...FAST_CONFIG, ...(exec.config ?? [])],
    // Ours, then the caller's (credentials), over the worker's.
    env: { ...process.env, ...BASE_ENV, ...(opts.env ?? {}) } as Record<string, string>,
    ...(exec.input !== undefined ? { input: exec.input } : {}),
    timeoutMs: opts.timeoutMs,
    ...(exec.emptyTemplate ? { emptyTemplate: true } : {}),
  });
  if (reply.ok) return reply.stdout;
  throw classifyGitError(new Error(reply.timedOut ? `git ${args[0] ?? ''} timed out after ${opts.timeoutMs} ms` : reply.message), url);
}
