/**
 * The git fetch as it was before the efficiency work (kept here only to measure
 * against): ls-remote, then init + remote add + a shallow fetch of the whole tree
 * + checkout + rev-parse, each through simple-git.
 */
import { mkdir } from 'node:fs/promises';
import { simpleGit } from 'simple-git';
import type { GitSource } from '../../src/api/schema.js';
import { resolveGitRef } from '../../src/sources/git.js';

export async function legacyFetch(git: GitSource, dir: string, timeoutMs: number): Promise<string> {
  const ref = await resolveGitRef(git, { timeoutMs });
  await mkdir(dir, { recursive: true });
  const env = { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_ASKPASS: 'true', GIT_CONFIG_NOSYSTEM: '1' } as Record<string, string>;
  const g = simpleGit({
    baseDir: dir,
    maxConcurrentProcesses: 1,
    timeout: { block: timeoutMs },
    allowEnvironment: Object.keys(env).filter((k) => k.startsWith('GIT_')),
    unsafe: { allowUnsafeAskPass: true },
  } as Parameters<typeof simpleGit>[0]).env(env);
  await g.init();
  await g.addRemote('origin', git.url);
  await g.fetch(['--depth', '1', '--no-tags', 'origin', ref.fetchRef]);
  await g.raw(['checkout', '--quiet', '--detach', 'FETCH_HEAD']);
  return (await g.revparse(['HEAD'])).trim();
}
