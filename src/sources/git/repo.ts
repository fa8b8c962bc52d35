/**
 * Creating the local repositories a fetch writes into: a work tree (optionally
 * sparse, borrowing a mirror's objects) or a bare mirror, with remote `origin`
 * written to the config file directly (one process, no URL in argv).
 */
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SOURCE_IGNORE_FILE } from '../../bundle/ignore.js';
import { InvalidSpecError } from '../../errors.js';
import { gitExec, type GitOptions } from './exec.js';

export interface InitRepoOptions {
  url: string;
  /** A bare repository (a mirror): no work tree. */
  bare?: boolean;
  /** Only this folder is checked out (a sparse-checkout pattern). */
  sparsePath?: string;
  /** Object directory to borrow objects from (objects/info/alternates). */
  alternates?: string;
  /** Mark `origin` as the partial-clone promisor: absent objects are fetched from it on demand. */
  promisor?: boolean;
}

/**
 * `git init` at `dir` (created) with remote `origin`, and optionally alternates,
 * a promisor remote and a sparse-checkout pattern.
 */
export async function initRepo(dir: string, init: InitRepoOptions, opts: GitOptions): Promise<void> {
  const remote = remoteConfig(init.url, init.promisor);
  await mkdir(dir, { recursive: true });
  // No template: no sample hooks and descriptions to copy for a throwaway repository.
  await gitExec(dir, ['init', '--quiet', ...(init.bare ? ['--bare'] : []), '--template='], opts, init.url, { emptyTemplate: true });
  const gitDir = init.bare ? dir : join(dir, '.git');
  const config = init.promisor
    ? `[core]\n\trepositoryformatversion = 1\n\tlogAllRefUpdates = false\n[extensions]\n\tpartialClone = origin\n${remote}`
    : `[core]\n\tlogAllRefUpdates = false\n${remote}`;
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

/** The `[remote "origin"]` section of a git config file. */
export function remoteConfig(url: string, promisor = false): string {
  if (/[\0\n\r]/.test(url)) throw new InvalidSpecError(`spec.git.url: must be a single line`);
  const quoted = `"${url.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  return `[remote "origin"]\n\turl = ${quoted}\n${promisor ? '\tpromisor = true\n' : ''}`;
}

/**
 * Non-cone sparse-checkout patterns selecting exactly the folder `path` ('' = everything),
 * plus the .sourceignore files of the folders above it (their rules apply to it: src/bundle/ignore.ts).
 */
export function sparsePattern(path: string): string {
  if (path === '') return '/*';
  // Every wildcard or special character is escaped, so the folder name is matched literally.
  const escape = (p: string) => p.replace(/[\\*?[\]!# ]/g, (c) => `\\${c}`);
  const parts = path.split('/');
  const above = parts.map((_, i) => `/${[...parts.slice(0, i), SOURCE_IGNORE_FILE].map(escape).join('/')}`);
  return [...above, `/${escape(path)}/`].join('\n');
}
