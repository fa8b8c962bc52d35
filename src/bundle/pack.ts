/**
 * Packs a directory into a reproducible .tar.gz.
 *
 * Reproducible means: the same file names, contents, symlink targets and
 * "executable or not" produce the same bytes, and so the same sha256,
 * whatever the mtimes, owners, umask or readdir order of the checkout. The
 * checksum is what makes artifacts content-addressed, so every piece of
 * metadata that the filesystem varies is normalised here.
 */

import { createHash } from 'node:crypto';
import { constants as fsConstants, createReadStream, createWriteStream } from 'node:fs';
import { lstat, open, readdir, readlink, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import tar, { type Header, type Pack as TarPack } from 'tar-stream';

type TarHeaders = Partial<Header> & Pick<Header, 'name'>;

import { assertLinkInside } from './links.js';
import { ArtifactTooLargeError, InvalidSpecError, StorageFailedError, UnsafeContentError } from '../errors.js';

export interface PackLimits {
  /** Most entries (files, directories and symlinks) the archive may hold. */
  maxFiles: number;
  /** Most bytes of regular-file content (unpacked) the archive may hold. */
  maxBytes: number;
}

export const DEFAULT_PACK_LIMITS: Readonly<PackLimits> = Object.freeze({
  maxFiles: 10_000,
  maxBytes: 100 * 1024 * 1024,
});

export interface PackResult {
  /** "sha256:<hex>" of the .tar.gz bytes. */
  checksum: string;
  /** Bytes of the .tar.gz. */
  size: number;
  /** Entries in the archive: regular files, directories and symlinks. */
  files: number;
  /** Sum of regular-file sizes. */
  unpackedBytes: number;
}

export interface ArchiveEntry {
  /** Path inside the archive, without a trailing "/" for directories. */
  path: string;
  type: string;
  mode: number;
  size: number;
  /** Target of a symlink (or hard link) entry. */
  linkname?: string;
}

/** One entry of the tree being packed, as an observer sees it. */
export interface TreeEntry {
  /** Relative to the bundle root, '/'-separated. */
  path: string;
  kind: 'directory' | 'file' | 'symlink';
  /** A symlink's target, as written. */
  target?: string;
}

/**
 * Sees the bundle while it is packed (e.g. to validate it): the whole tree first, then
 * the bytes of each regular file it wants, as they are read for the archive (no second read).
 */
export interface PackObserver {
  setTree(entries: readonly TreeEntry[]): void;
  wants(path: string, size: number): boolean;
  file(path: string, content: Buffer): void;
}

type Entry =
  | { kind: 'directory'; rel: string }
  | { kind: 'file'; rel: string; size: number; executable: boolean }
  | { kind: 'symlink'; rel: string; target: string };

// Fixed metadata: epoch mtime, root owner, no names, so nothing from the host leaks in.
const EPOCH = new Date(0);
const BASE_HEADER = { uid: 0, gid: 0, uname: '', gname: '', mtime: EPOCH } as const;
// Resolving a chain of links deeper than this is treated as a loop (Linux uses 40 too).
export const LIMITS_HINT = 'limits are configurable with --max-bundle-bytes / --max-bundle-files';

/**
 * Packs `root` into `outFile` (created or truncated). Nothing is written when
 * the tree is rejected; a partly written `outFile` is removed on any error.
 */
export async function packDirectory(
  root: string,
  outFile: string,
  limits?: Partial<PackLimits>,
  observer?: PackObserver,
): Promise<PackResult> {
  const lim: PackLimits = { ...DEFAULT_PACK_LIMITS, ...definedOnly(limits) };
  const absRoot = path.resolve(root);
  await assertDirectory(root, absRoot);

  // Walk and check everything first, so unsafe or oversized trees fail
  // before a byte is written.
  const entries = await collectEntries(absRoot, lim);
  entries.sort((a, b) => Buffer.compare(Buffer.from(a.rel, 'utf8'), Buffer.from(b.rel, 'utf8')));
  observer?.setTree(entries.map((e) => ({ path: e.rel, kind: e.kind, ...(e.kind === 'symlink' ? { target: e.target } : {}) })));

  try {
    return await writeArchive(absRoot, entries, outFile, lim, observer);
  } catch (err) {
    await rm(outFile, { force: true }).catch(() => undefined);
    throw err;
  }
}

/** Lists the entries of a .tar.gz, streaming (contents are read and discarded). */
export async function listArchive(file: string): Promise<ArchiveEntry[]> {
  const extract = tar.extract();
  const feeding = pipeline(createReadStream(file), createGunzip(), extract);
  // Observed below; this keeps an early failure from counting as unhandled.
  feeding.catch(() => undefined);

  const out: ArchiveEntry[] = [];
  for await (const entry of extract) {
    let size = 0;
    for await (const chunk of entry) size += (chunk as Buffer).length;
    const h = entry.header;
    const item: ArchiveEntry = {
      path: h.type === 'directory' ? h.name.replace(/\/+$/, '') : h.name,
      type: h.type ?? 'file',
      mode: h.mode ?? 0,
      size,
    };
    if (h.linkname) item.linkname = h.linkname;
    out.push(item);
  }
  await feeding;
  return out;
}

function definedOnly(limits: Partial<PackLimits> | undefined): Partial<PackLimits> {
  const out: Partial<PackLimits> = {};
  if (limits?.maxFiles !== undefined) out.maxFiles = limits.maxFiles;
  if (limits?.maxBytes !== undefined) out.maxBytes = limits.maxBytes;
  return out;
}

async function assertDirectory(root: string, absRoot: string): Promise<void> {
  // stat, not lstat: a root that is itself a symlink to a directory is the
  // caller's choice (e.g. /tmp on macOS) and is fine.
  const st = await stat(absRoot).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return null;
    throw err;
  });
  if (!st || !st.isDirectory()) {
    throw new InvalidSpecError(`path "${root}": no such directory in the source`);
  }
}

async function collectEntries(absRoot: string, lim: PackLimits): Promise<Entry[]> {
  const entries: Entry[] = [];
  let bytes = 0;
  const pending: string[] = ['']; // directories to list, relative to root

  while (pending.length > 0) {
    const dirRel = pending.pop() as string;
    const names = await readdir(path.join(absRoot, dirRel), { encoding: 'buffer' });
    for (const raw of names) {
      const name = raw.toString('utf8');
      const rel = dirRel === '' ? name : `${dirRel}/${name}`;
      // Names that are not UTF-8 cannot be written faithfully into the
      // archive (and would not round-trip through a string path).
      if (!Buffer.from(name, 'utf8').equals(raw)) {
        throw new UnsafeContentError(`"${rel}": file name is not valid UTF-8`);
      }
      // Git metadata is not bundle content and differs between clones; a
      // ".git" file (submodule/worktree pointer) is dropped for the same reason.
      if (name === '.git') continue;

      const abs = path.join(absRoot, rel);
      const st = await lstat(abs);
      let entry: Entry;
      if (st.isDirectory()) {
        entry = { kind: 'directory', rel };
        pending.push(rel);
      } else if (st.isFile()) {
        entry = { kind: 'file', rel, size: st.size, executable: (st.mode & 0o111) !== 0 };
        bytes += st.size;
      } else if (st.isSymbolicLink()) {
        const target = await readlink(abs);
        await assertLinkInside(absRoot, rel, target, { scope: 'bundle' });
        entry = { kind: 'symlink', rel, target };
      } else {
        throw new UnsafeContentError(`"${rel}": ${describeSpecial(st)} cannot be bundled; only files, directories and symlinks can`);
      }

      entries.push(entry);
      // Fail as soon as a limit is crossed, so a huge tree is not walked in full.
      if (entries.length > lim.maxFiles) throw tooManyFiles(lim);
      if (bytes > lim.maxBytes) throw tooManyBytes(lim, bytes);
    }
  }
  return entries;
}

function describeSpecial(st: { isFIFO(): boolean; isSocket(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean }): string {
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  return 'a special file';
}


function tooManyFiles(lim: PackLimits): ArtifactTooLargeError {
  return new ArtifactTooLargeError(
    `bundle has more than ${lim.maxFiles} entries (files, directories and symlinks); ${LIMITS_HINT}`,
  );
}

function tooManyBytes(lim: PackLimits, bytes: number): ArtifactTooLargeError {
  return new ArtifactTooLargeError(
    `bundle content exceeds ${lim.maxBytes} bytes unpacked (at least ${bytes}); ${LIMITS_HINT}`,
  );
}

async function writeArchive(
  absRoot: string,
  entries: Entry[],
  outFile: string,
  lim: PackLimits,
  observer: PackObserver | undefined,
): Promise<PackResult> {
  const hash = createHash('sha256');
  let size = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      // Byte 9 of the gzip header is the OS zlib was built for; pin it to
      // Unix (3) so a Windows build would produce the same bytes.
      if (size <= 9 && size + chunk.length > 9) {
        chunk = Buffer.from(chunk);
        chunk[9 - size] = 3;
      }
      hash.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
  });

  let writeError: unknown;
  const out = createWriteStream(outFile, { mode: 0o644 });
  out.on('error', (err) => {
    writeError ??= err;
  });

  const pack = tar.pack();
  // zlib leaves the gzip header mtime at 0 and sets no file name, so the
  // output depends only on the input bytes (and the zlib build).
  const written = pipeline(pack, createGzip(), tap, out);
  written.catch(() => undefined); // observed below

  let feedError: unknown;
  let unpackedBytes = 0;
  try {
    for (const entry of entries) unpackedBytes += await addEntry(pack, absRoot, entry, lim, unpackedBytes, observer);
    pack.finalize();
  } catch (err) {
    feedError = err;
    pack.destroy(err as Error);
  }

  let pipeError: unknown;
  await written.catch((err: unknown) => {
    pipeError = err;
  });
  // A failed write (ENOSPC, EIO...) tears down the tar stream too, so report
  // it first: the feed error is then only a consequence.
  if (writeError !== undefined) {
    const e = writeError as NodeJS.ErrnoException;
    throw new StorageFailedError(`writing bundle archive "${outFile}": ${e.message}`, { cause: e });
  }
  if (feedError !== undefined) throw feedError;
  if (pipeError !== undefined) throw pipeError;

  return { checksum: `sha256:${hash.digest('hex')}`, size, files: entries.length, unpackedBytes };
}

/** Writes one entry; returns the content bytes it added. */
async function addEntry(
  pack: TarPack,
  absRoot: string,
  entry: Entry,
  lim: PackLimits,
  soFar: number,
  observer: PackObserver | undefined,
): Promise<number> {
  switch (entry.kind) {
    case 'directory':
      await writeEntry(pack, { ...BASE_HEADER, name: `${entry.rel}/`, type: 'directory', mode: 0o755 });
      return 0;
    case 'symlink':
      await writeEntry(pack, { ...BASE_HEADER, name: entry.rel, type: 'symlink', mode: 0o777, linkname: entry.target });
      return 0;
    case 'file':
      return addFile(pack, absRoot, entry, lim, soFar, observer);
  }
}

async function addFile(
  pack: TarPack,
  absRoot: string,
  entry: Extract<Entry, { kind: 'file' }>,
  lim: PackLimits,
  soFar: number,
  observer: PackObserver | undefined,
): Promise<number> {
  // O_NOFOLLOW: if the file was swapped for a symlink since the walk, fail
  // instead of archiving whatever the link points at.
  const handle = await open(path.join(absRoot, entry.rel), fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW).catch(
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ELOOP') throw new UnsafeContentError(`"${entry.rel}" changed into a symlink while packing`);
      throw err;
    },
  );
  try {
    // The header carries the size, so take it from the open file, not the walk.
    const st = await handle.stat();
    if (!st.isFile()) throw new UnsafeContentError(`"${entry.rel}" is no longer a regular file`);
    if (soFar + st.size > lim.maxBytes) throw tooManyBytes(lim, soFar + st.size);
    const mode = (st.mode & 0o111) !== 0 ? 0o755 : 0o644;
    const header = { ...BASE_HEADER, name: entry.rel, type: 'file' as const, mode, size: st.size };
    // The observer gets the same bytes the archive does, collected from this one read.
    const seen: Buffer[] | undefined = observer?.wants(entry.rel, st.size) ? [] : undefined;
    if (st.size === 0) {
      await writeEntry(pack, header);
    } else {
      await new Promise<void>((resolve, reject) => {
        // `end` bounds the read so a file that grows mid-pack cannot overrun its header.
        const src = handle.createReadStream({ start: 0, end: st.size - 1, autoClose: false });
        const sink = pack.entry(header, (err) => {
          if (!err) return resolve();
          src.destroy();
          reject(err);
        });
        // The entry callback above reports sink failures; without a listener,
        // pipe() would rethrow a sink error as an uncaught exception.
        sink.on('error', () => undefined);
        src.on('error', (err) => {
          sink.destroy(err);
          reject(err);
        });
        if (seen) src.on('data', (chunk) => seen.push(chunk as Buffer));
        src.pipe(sink);
      });
    }
    if (seen) observer!.file(entry.rel, Buffer.concat(seen));
    return st.size;
  } finally {
    await handle.close();
  }
}

function writeEntry(pack: TarPack, header: TarHeaders): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry(header, (err) => (err ? reject(err) : resolve())).end(undefined);
  });
}
