/**
 * The git fetch as it was before the efficiency work (kept here only to measure
 * against): ls-remote, then init + remote add + a shallow fetch of the whole tree
 * + checkout + rev-parse, each through simple-git, started from this process.
 */
import { mkdir } from 'node:fs/promises';
import { simpleGit } from 'simple-git';
import type { GitSource } from '../../src/api/schema.js';

export async function legacyFetch(git: GitSource, dir: string, timeoutMs: number): Promise<string> {
  await mkdir(dir, { recursive: true });
  // simple-git refuses some variables (EDITOR, set by npm): PATH, HOME and git's own are all git needs here.
  const kept = Object.entries(process.env).filter(([k, v]) => v !== undefined && (k === 'PATH' || k === 'HOME' || k.startsWith('GIT_')));
  const env = { ...Object.fromEntries(kept), GIT_TERMINAL_PROMPT: '0', GIT_ASKPASS: 'true', GIT_CONFIG_NOSYSTEM: '1' } as Record<string, string>;
  const g = simpleGit({
    baseDir: dir,
    maxConcurrentProcesses: 1,
    timeout: { block: timeoutMs },
    allowEnvironment: Object.keys(env).filter((k) => k.startsWith('GIT_')),
    unsafe: { allowUnsafeAskPass: true },
  } as Parameters<typeof simpleGit>[0]).env(env);
  // resolveGitRef as it was: ls-remote through simple-git, from this process.
  const branch = git.ref?.branch ?? 'main';
  const listed = await g.listRemote([git.url, `refs/heads/${branch}`]);
  if (!/^[0-9a-f]{40}\trefs\/heads\//m.test(listed)) throw new Error(`branch ${branch} not found`);
  const ref = { fetchRef: `refs/heads/${branch}` };
  await g.init();
  await g.addRemote('origin', git.url);
  await g.fetch(['--depth', '1', '--no-tags', 'origin', ref.fetchRef]);
  await g.raw(['checkout', '--quiet', '--detach', 'FETCH_HEAD']);
  return (await g.revparse(['HEAD'])).trim();
}
