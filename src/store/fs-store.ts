/**
 * ArtifactStore on a local (or mounted) filesystem:
 * <root>/<namespace>/<name>/<hex>.tar.gz
 *
 * Objects appear only via rename of a fully written, fsynced temp file in
 * the same directory, so a reader (or a crash) never sees a partial artifact
 * under its final name, and a failed put leaves earlier artifacts untouched.
 */

import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, mkdir, open, readdir, rename, rm, rmdir, stat, utimes } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { ArenaSourceError, StorageFailedError } from '../errors.js';
import { fsyncPath } from './fsync.js';
import {
  type ArtifactStore,
  type ListedArtifact,
  type SourceKey,
  type StoredArtifact,
  artifactKey,
  assertSourceKey,
  checksumHex,
  currentHexOf,
  parseArtifactKey,
} from './artifact-store.js';

const ARTIFACT_FILE = /^([0-9a-f]{64})\.tar\.gz$/;
const TEMP_FILE = /^\.[0-9a-f]{64}\.[0-9a-f-]+\.tmp$/;
// Temp files older than this belong to a put that crashed; prune removes them.
const STALE_TEMP_MS = 60 * 60 * 1000;

export class FilesystemArtifactStore implements ArtifactStore {
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  async put(source: SourceKey, file: string, checksum: string): Promise<StoredArtifact> {
    const key = artifactKey(source, checksum); // validates names and digest
    const hex = checksumHex(checksum);
    const dir = this.sourceDir(source);
    const dest = path.join(dir, `${hex}.tar.gz`);

    try {
      await mkdir(dir, { recursive: true });

      // Idempotent: a valid copy is already there. Touch it so "newest" in
      // prune means "most recently published", then drop the caller's file.
      if ((await hashIfExists(dest)) === hex) {
        const now = new Date();
        await utimes(dest, now, now);
        await rm(file, { force: true });
        return { key, checksum, size: (await stat(dest)).size };
      }

      const tmp = path.join(dir, `.${hex}.${randomUUID()}.tmp`);
      let moved = false;
      try {
        let actual: string;
        try {
          // Same filesystem: a rename moves the bytes for free.
          await rename(file, tmp);
          moved = true;
          actual = await hashFile(tmp);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
          actual = await copyWithHash(file, tmp);
        }
        if (actual !== hex) {
          if (moved) await rename(tmp, file).catch(() => undefined); // hand the caller's file back
          throw new StorageFailedError(
            `refusing to store "${file}" as ${key}: its content hashes to sha256:${actual}, not ${checksum}`,
          );
        }
        await chmod(tmp, 0o644);
        await fsyncPath(tmp);
        await rename(tmp, dest);
        await fsyncPath(dir).catch(() => undefined); // directory fsync is best effort (not supported everywhere)
      } finally {
        await rm(tmp, { force: true }).catch(() => undefined);
      }
      if (!moved) await rm(file, { force: true });
      return { key, checksum, size: (await stat(dest)).size };
    } catch (err) {
      throw this.storageError(err, `storing artifact ${key}`);
    }
  }

  async verify(source: SourceKey, checksum: string): Promise<boolean> {
    const key = artifactKey(source, checksum);
    try {
      return (await hashIfExists(path.join(this.root, key))) === checksumHex(checksum);
    } catch (err) {
      throw this.storageError(err, `verifying artifact ${key}`);
    }
  }

  async open(
    key: string,
    range?: { start: number; end: number },
  ): Promise<{ stream: NodeJS.ReadableStream; size: number } | null> {
    const file = this.keyPath(key);
    if (file === null) return null;
    const handle = await open(file, 'r').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw this.storageError(err, `opening artifact ${key}`);
    });
    if (handle === null) return null;
    try {
      const st = await handle.stat();
      if (!st.isFile()) {
        await handle.close();
        return null;
      }
      let bounds: { start: number; end: number } | undefined;
      if (range) {
        const { start } = range;
        const end = Math.min(range.end, st.size - 1);
        if (!Number.isSafeInteger(start) || !Number.isSafeInteger(range.end) || start < 0 || start > end) {
          throw new RangeError(`range ${range.start}-${range.end} is not satisfiable for ${key} (${st.size} bytes)`);
        }
        bounds = { start, end };
      }
      // The stream owns the handle from here (autoClose), so a reader that
      // finishes or is destroyed releases the file.
      return { stream: handle.createReadStream(bounds ?? {}), size: st.size };
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw err;
    }
  }

  async stat(key: string): Promise<{ size: number; mtime: Date } | null> {
    const file = this.keyPath(key);
    if (file === null) return null;
    try {
      const st = await stat(file);
      return st.isFile() ? { size: st.size, mtime: st.mtime } : null;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw this.storageError(err, `reading artifact ${key}`);
    }
  }

  /** Every artifact file of a source with its size and mtime (which put refreshes on a re-publish, and prune sorts by). */
  async list(source: SourceKey): Promise<ListedArtifact[]> {
    assertSourceKey(source);
    const dir = this.sourceDir(source);
    try {
      const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return [] as string[];
        throw err;
      });
      const out: ListedArtifact[] = [];
      for (const name of names) {
        if (!ARTIFACT_FILE.test(name)) continue;
        const st = await stat(path.join(dir, name)).catch(() => null); // removed concurrently
        if (st === null || !st.isFile()) continue;
        out.push({ key: `${source.namespace}/${source.name}/${name}`, size: st.size, mtime: st.mtime });
      }
      return out;
    } catch (err) {
      throw this.storageError(err, `listing artifacts of ${source.namespace}/${source.name}`);
    }
  }

  async removeSource(source: SourceKey): Promise<void> {
    assertSourceKey(source);
    try {
      await rm(this.sourceDir(source), { recursive: true, force: true });
      // Drop the namespace directory once its last source is gone.
      await rmdir(path.join(this.root, source.namespace)).catch(() => undefined);
    } catch (err) {
      throw this.storageError(err, `removing artifacts of ${source.namespace}/${source.name}`);
    }
  }

  async prune(source: SourceKey, keep: number, current: string): Promise<string[]> {
    assertSourceKey(source);
    const currentHex = currentHexOf(source, current);
    const dir = this.sourceDir(source);
    try {
      const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return [] as string[];
        throw err;
      });

      const artifacts: Array<{ name: string; hex: string; mtimeMs: number }> = [];
      for (const name of names) {
        const st = await stat(path.join(dir, name)).catch(() => null);
        if (st === null) continue; // removed concurrently
        const m = ARTIFACT_FILE.exec(name);
        if (m) {
          artifacts.push({ name, hex: m[1] as string, mtimeMs: st.mtimeMs });
        } else if (TEMP_FILE.test(name) && Date.now() - st.mtimeMs > STALE_TEMP_MS) {
          await rm(path.join(dir, name), { force: true });
        }
      }

      // Newest first; the name breaks ties so the result is deterministic.
      artifacts.sort((a, b) => b.mtimeMs - a.mtimeMs || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      const keepCount = Number.isFinite(keep) ? Math.max(0, Math.floor(keep)) : 0;
      const deleted: string[] = [];
      for (const [i, a] of artifacts.entries()) {
        if (i < keepCount || a.hex === currentHex) continue;
        await rm(path.join(dir, a.name), { force: true });
        deleted.push(`${source.namespace}/${source.name}/${a.name}`);
      }
      return deleted;
    } catch (err) {
      throw this.storageError(err, `pruning artifacts of ${source.namespace}/${source.name}`);
    }
  }

  private sourceDir(source: SourceKey): string {
    return path.join(this.root, source.namespace, source.name);
  }

  /** The file of a key, or null if the key is not exactly "<ns>/<name>/<hex>.tar.gz". */
  private keyPath(key: string): string | null {
    const parsed = parseArtifactKey(key);
    if (parsed === null) return null;
    return path.join(this.sourceDir(parsed.source), `${parsed.hex}.tar.gz`);
  }

  private storageError(err: unknown, context: string): Error {
    if (err instanceof ArenaSourceError || err instanceof RangeError) return err;
    const e = err as NodeJS.ErrnoException;
    const hint =
      e.code === 'ENOSPC' || e.code === 'EDQUOT'
        ? ` (the artifact store at ${this.root} is out of space; earlier artifacts are intact)`
        : e.code === 'EROFS'
          ? ` (the artifact store at ${this.root} is read-only)`
          : e.code === 'EACCES' || e.code === 'EPERM'
            ? ` (no permission to write under ${this.root})`
            : '';
    return new StorageFailedError(`${context}: ${e.message ?? String(err)}${hint}`, { cause: err });
  }
}

/** Hex sha256 of a file, or null if it does not exist. */
async function hashIfExists(file: string): Promise<string | null> {
  try {
    return await hashFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

async function hashFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Copies src to a new file dest (must not exist), returning the hex sha256 of what was written. */
async function copyWithHash(src: string, dest: string): Promise<string> {
  const hash = createHash('sha256');
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
  });
  await pipeline(createReadStream(src), tap, createWriteStream(dest, { flags: 'wx', mode: 0o644 }));
  return hash.digest('hex');
}


