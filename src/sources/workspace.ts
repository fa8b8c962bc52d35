/**
 * Workspace sources: a directory of the workspace content volume (Omnia's
 * dashboard writes projects there) snapshotted into a version. The directory
 * is only read. Its revision is a hash of its content (names, file bytes,
 * executable bits, symlink targets), so an unchanged directory is a no-op.
 * `.git` and `.arena` are not content (the packer drops `.git` too), nor is
 * what the ignore rules (spec.ignore, .sourceignore: src/bundle/ignore.ts) drop:
 * the revision hashes only what is packed, so editing an excluded file is a no-op.
 *
 * Hand-written walk rather than fs.cp: cp would read a device or FIFO it meets
 * (and hang on one); here anything but a file, directory or symlink is refused
 * before a byte is read, and the walk enforces the bundle limits as it goes.
 */
import { createHash } from 'node:crypto';
import { constants as fsConstants, createReadStream } from 'node:fs';
import { copyFile, lstat, mkdir, readdir, readlink, symlink } from 'node:fs/promises';
import path from 'node:path';
import { ignoredEntries, type IgnoreRules } from '../bundle/ignore.js';
import { LIMITS_HINT, type PackLimits } from '../bundle/pack.js';
import { ArtifactTooLargeError, FetchFailedError, InvalidTargetPathError, UnsafeContentError } from '../errors.js';
import { namespaceParts, relativeParts } from '../content/layout.js';

const SKIPPED = new Set(['.git', '.arena']);

/** {root}/{workspace}/{namespace}/{path}, every component a real directory (no symlink detours). */
export async function workspaceSourceDir(root: string, loc: { workspace: string; namespace: string }, rel: string): Promise<string> {
  const parts = [...namespaceParts(loc), ...relativeParts(rel, 'spec.workspace.path')];
  let dir = path.resolve(root);
  for (const part of parts) {
    dir = path.join(dir, part);
    const st = await lstat(dir).catch(() => null);
    const shown = `${loc.workspace}/${loc.namespace}/${rel}`;
    if (st === null) {
      // Not stalled: the dashboard may create it later; the next interval looks again.
      throw new FetchFailedError(`workspace directory "${shown}" does not exist on the content volume`, { retryable: false });
    }
    if (st.isSymbolicLink()) throw new InvalidTargetPathError(`"${path.relative(root, dir)}" is a symlink; spec.workspace.path must be made of plain directories (in "${shown}")`);
    if (!st.isDirectory()) throw new FetchFailedError(`"${path.relative(root, dir)}" is not a directory (in "${shown}")`, { retryable: false });
  }
  return dir;
}

/** The revision of a workspace directory: `sha256:<hex>` of its content. */
export async function workspaceRevision(dir: string, limits: PackLimits, rules?: IgnoreRules): Promise<string> {
  const hash = createHash('sha256');
  await walk(dir, limits, await skipped(dir, rules), async (entry) => {
    hash.update(`${entry.kind}\0${entry.rel}\0`);
    if (entry.kind === 'symlink') hash.update(`${await readlink(entry.abs)}\0`);
    if (entry.kind === 'file') {
      hash.update(entry.executable ? 'x\0' : '-\0');
      for await (const chunk of createReadStream(entry.abs)) hash.update(chunk as Buffer);
      hash.update('\0');
    }
  });
  return `sha256:${hash.digest('hex')}`;
}

/** Copies the directory into `dest` (created), so packing reads a stable snapshot; returns its revision. */
export async function snapshotWorkspace(dir: string, dest: string, limits: PackLimits, rules?: IgnoreRules): Promise<string> {
  await mkdir(dest, { recursive: true });
  await walk(dir, limits, await skipped(dir, rules), async (entry) => {
    const target = path.join(dest, entry.rel);
    if (entry.kind === 'directory') await mkdir(target);
    else if (entry.kind === 'symlink') await symlink(await readlink(entry.abs), target);
    else await copyFile(entry.abs, target, fsConstants.COPYFILE_EXCL);
  });
  // Hash the copy, not the original: the revision is then exactly what gets packed (the copy holds no excluded file).
  return workspaceRevision(dest, limits);
}

/** What the ignore rules leave out of `dir` (top-most paths), or nothing without rules. */
async function skipped(dir: string, rules: IgnoreRules | undefined): Promise<ReadonlySet<string>> {
  return new Set(rules ? await ignoredEntries(dir, '', rules) : []);
}

interface WalkEntry {
  kind: 'directory' | 'file' | 'symlink';
  rel: string;
  abs: string;
  executable: boolean;
}

/** Depth-first in byte order of names (so the hash does not depend on readdir order). */
async function walk(root: string, limits: PackLimits, skip: ReadonlySet<string>, visit: (entry: WalkEntry) => Promise<void>): Promise<void> {
  let count = 0;
  let bytes = 0;
  async function visitDir(relDir: string): Promise<void> {
    const names = (await readdir(path.join(root, relDir))).filter((n) => !SKIPPED.has(n));
    names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const name of names) {
      const rel = relDir === '' ? name : `${relDir}/${name}`;
      if (skip.has(rel)) continue;
      const abs = path.join(root, rel);
      const st = await lstat(abs);
      if (++count > limits.maxFiles) throw new ArtifactTooLargeError(`workspace directory has more than ${limits.maxFiles} entries; ${LIMITS_HINT}`);
      if (st.isDirectory()) {
        await visit({ kind: 'directory', rel, abs, executable: false });
        await visitDir(rel);
      } else if (st.isSymbolicLink()) {
        await visit({ kind: 'symlink', rel, abs, executable: false });
      } else if (st.isFile()) {
        bytes += st.size;
        if (bytes > limits.maxBytes) throw new ArtifactTooLargeError(`workspace directory exceeds ${limits.maxBytes} bytes; ${LIMITS_HINT}`);
        await visit({ kind: 'file', rel, abs, executable: (st.mode & 0o111) !== 0 });
      } else {
        throw new UnsafeContentError(`"${rel}" in the workspace directory is not a file, directory or symlink`);
      }
    }
  }
  await visitDir('');
}
