/**
 * Safe extraction of tar+gzip layers into a fresh directory.
 *
 * A layer is untrusted input. Rejected (UnsafeContentError): absolute paths,
 * `..`, NUL or backslashes in names, devices, FIFOs and unknown entry types,
 * symlinks that resolve outside the directory (also through other links), hard
 * links to anything but a regular file extracted before, writing through a
 * symlink, and a path that appears twice. Limits (ArtifactTooLargeError, the
 * same PackLimits the packer enforces): entries, regular-file bytes — checked
 * against the header *and* counted as bytes are actually written — and the
 * total decompressed stream (gzip bombs, e.g. gigabytes of zeros after the
 * tar's end). Only content and the executable bit are kept: owners, times and
 * other mode bits are not applied.
 */
import { constants as fsConstants, createReadStream } from 'node:fs';
import { assertLinkInside } from '../bundle/links.js';
import { copyFile, mkdir, open, readlink, stat, symlink } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar, { type Header } from 'tar-stream';
import { LIMITS_HINT, type PackLimits } from '../bundle/pack.js';
import { ArenaSourceError, ArtifactTooLargeError, FetchFailedError, UnsafeContentError } from '../errors.js';

/** Shared by every layer of one artifact, so limits hold for the artifact as a whole. */
export interface ExtractBudget {
  limits: PackLimits;
  /** Entries written so far (files, directories, symlinks, hard links). */
  entries: number;
  /** Regular-file bytes written so far. */
  bytes: number;
  /** What exists below the root, by relative path; also detects duplicates across layers. */
  kinds: Map<string, 'file' | 'dir' | 'symlink'>;
}

export function newBudget(limits: PackLimits): ExtractBudget {
  return { limits, entries: 0, bytes: 0, kinds: new Map() };
}

export interface ExtractOptions {
  /** For messages, e.g. "layer sha256:… of host/repo". */
  what: string;
  /** Every entry must be this path or below it (ORAS directory layers). */
  requirePrefix?: string;
}

/** Tar framing around the content: a header and padding per entry, plus PAX/long-name records. */
const FRAMING_PER_ENTRY = 4096;
const FRAMING_SLACK = 1024 * 1024;

/** Most decompressed bytes a tar stream within the limits can have. */
export function maxTarBytes(limits: PackLimits): number {
  return limits.maxBytes + (limits.maxFiles + 16) * FRAMING_PER_ENTRY + FRAMING_SLACK;
}

export function tooManyEntries(limits: PackLimits, what: string): ArtifactTooLargeError {
  return new ArtifactTooLargeError(`${what}: artifact has more than ${limits.maxFiles} entries (files, directories and symlinks); ${LIMITS_HINT}`);
}

export function tooManyBytes(limits: PackLimits, bytes: number, what: string): ArtifactTooLargeError {
  return new ArtifactTooLargeError(`${what}: artifact content exceeds ${limits.maxBytes} bytes unpacked (at least ${bytes}); ${LIMITS_HINT}`);
}

/**
 * A relative POSIX path with no `.`/empty components, or an UnsafeContentError.
 * '' means the root itself (e.g. a "./" entry).
 */
export function safeRelativePath(name: string, what: string): string {
  const unsafe = (why: string) => new UnsafeContentError(`${what}: entry ${JSON.stringify(name)} ${why}`);
  if (name.includes('\0')) throw unsafe('contains a NUL byte');
  if (name.includes('\\')) throw unsafe('contains a backslash; only POSIX paths are allowed');
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) throw unsafe('is an absolute path');
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw unsafe('contains ".."');
  return parts.join('/');
}

/** Extracts one tar+gzip file into `root` (which must exist), within `budget`. */
export async function extractTarGz(file: string, root: string, budget: ExtractBudget, opts: ExtractOptions): Promise<void> {
  const absRoot = path.resolve(root);
  const lim = budget.limits;
  const cap = maxTarBytes(lim);
  let streamed = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      streamed += chunk.length;
      if (streamed > cap) {
        cb(new ArtifactTooLargeError(`${opts.what}: decompresses to more than ${cap} bytes (a tar within the limits cannot); ${LIMITS_HINT}`));
        return;
      }
      cb(null, chunk);
    },
  });
  const extract = tar.extract();
  const feeding = pipeline(createReadStream(file), createGunzip(), counter, extract);
  feeding.catch(() => undefined); // observed below
  const links: string[] = [];

  try {
    for await (const entry of extract) {
      await writeEntry(entry, absRoot, budget, opts, links);
    }
    await feeding;
  } catch (err) {
    // The feeding error (too large, bad gzip) is the cause when the tar side only saw a premature close.
    const fed = await feeding.then(
      () => undefined,
      (e: unknown) => e,
    );
    const first = err instanceof ArenaSourceError ? err : fed instanceof ArenaSourceError ? fed : err;
    if (first instanceof ArenaSourceError) throw first;
    const message = first instanceof Error ? first.message : String(first);
    throw new FetchFailedError(`${opts.what} is not a valid tar+gzip archive: ${message}`, { retryable: false, cause: first });
  }
  // Every link is checked again on disk, through the links the tree now holds.
  for (const rel of links) await assertLinkInside(absRoot, rel, await readlink(path.join(absRoot, rel)), { what: opts.what, scope: 'artifact' });
}

type TarEntry = AsyncIterable<unknown> & { header: Header };

async function writeEntry(entry: TarEntry, absRoot: string, budget: ExtractBudget, opts: ExtractOptions, links: string[]): Promise<void> {
  const h = entry.header;
  const lim = budget.limits;
  const type: string | null = (h.type as string | null | undefined) ?? 'file';
  const rel = safeRelativePath(h.name, opts.what);
  const unsafe = (why: string) => new UnsafeContentError(`${opts.what}: entry "${rel || h.name}" ${why}`);

  if (rel === '') {
    if (type !== 'directory') throw unsafe('names the root but is not a directory');
    await drain(entry);
    return;
  }
  if (opts.requirePrefix !== undefined && rel !== opts.requirePrefix && !rel.startsWith(`${opts.requirePrefix}/`)) {
    throw unsafe(`is outside "${opts.requirePrefix}/", the directory this layer is titled with`);
  }
  if (budget.kinds.get(rel) !== 'dir') {
    budget.entries += 1;
    if (budget.entries > lim.maxFiles) throw tooManyEntries(lim, opts.what);
  }

  // Parents must be directories (or not exist yet): never write through a link or into a file.
  const parts = rel.split('/');
  for (let i = 1; i < parts.length; i++) {
    const parent = parts.slice(0, i).join('/');
    const kind = budget.kinds.get(parent);
    if (kind === 'symlink') throw unsafe(`would be written through the symlink "${parent}"`);
    if (kind === 'file') throw unsafe(`would be written below the file "${parent}"`);
  }
  const existing = budget.kinds.get(rel);
  if (existing !== undefined && !(existing === 'dir' && type === 'directory')) throw unsafe('appears more than once');
  const abs = path.join(absRoot, rel);

  switch (type) {
    case 'directory':
      await ensureDirs(absRoot, parts, budget, opts.what, true);
      await drain(entry);
      return;
    case 'file':
    case 'contiguous-file': {
      const declared = h.size ?? 0;
      if (budget.bytes + declared > lim.maxBytes) throw tooManyBytes(lim, budget.bytes + declared, opts.what);
      await ensureDirs(absRoot, parts.slice(0, -1), budget, opts.what);
      const mode = ((h.mode ?? 0o644) & 0o111) !== 0 ? 0o755 : 0o644;
      budget.kinds.set(rel, 'file');
      const handle = await open(abs, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, mode);
      try {
        for await (const raw of entry) {
          const chunk = raw as Buffer;
          budget.bytes += chunk.length; // what is actually read, whatever the header said
          if (budget.bytes > lim.maxBytes) throw tooManyBytes(lim, budget.bytes, opts.what);
          await handle.write(chunk);
        }
      } finally {
        await handle.close();
      }
      return;
    }
    case 'symlink': {
      const target = h.linkname ?? '';
      if (target === '') throw unsafe('is a symlink without a target');
      lexicallyInside(parts.slice(0, -1), target, () => unsafe(`is a symlink to "${target}", outside the artifact`));
      await ensureDirs(absRoot, parts.slice(0, -1), budget, opts.what);
      await symlink(target, abs);
      budget.kinds.set(rel, 'symlink');
      links.push(rel);
      await drain(entry);
      return;
    }
    case 'link': {
      const targetRel = safeRelativePath(h.linkname ?? '', `${opts.what}: hard link "${rel}"`);
      if (budget.kinds.get(targetRel) !== 'file') {
        throw unsafe(`is a hard link to "${h.linkname}", which is not a regular file extracted before it`);
      }
      const size = (await stat(path.join(absRoot, targetRel))).size;
      if (budget.bytes + size > lim.maxBytes) throw tooManyBytes(lim, budget.bytes + size, opts.what);
      await ensureDirs(absRoot, parts.slice(0, -1), budget, opts.what);
      // A copy, not a link: the tree holds only independent regular files.
      await copyFile(path.join(absRoot, targetRel), abs, fsConstants.COPYFILE_EXCL);
      budget.bytes += size;
      budget.kinds.set(rel, 'file');
      await drain(entry);
      return;
    }
    default:
      throw unsafe(`is ${describeType(type)}; only files, directories and symlinks can be bundled`);
  }
}

function describeType(type: string | null): string {
  switch (type) {
    case 'character-device':
      return 'a character device';
    case 'block-device':
      return 'a block device';
    case 'fifo':
      return 'a FIFO (named pipe)';
    default:
      return `an unsupported entry (type ${JSON.stringify(type)})`;
  }
}

async function drain(entry: TarEntry): Promise<void> {
  for await (const _chunk of entry) {
    // directories, links: no content expected; tar-stream needs the stream consumed
  }
}

/**
 * mkdir -p for the given components, recording the directories it creates.
 * Implicit parents count as entries here; an explicit directory entry (the
 * last component when `explicitLast`) was counted by the caller.
 */
export async function ensureDirs(absRoot: string, parts: string[], budget: ExtractBudget, what: string, explicitLast = false): Promise<void> {
  for (let i = 1; i <= parts.length; i++) {
    const rel = parts.slice(0, i).join('/');
    const kind = budget.kinds.get(rel);
    if (kind === 'dir') continue;
    if (kind !== undefined) throw new UnsafeContentError(`${what}: "${rel}" is used both as a directory and as a ${kind}`);
    await mkdir(path.join(absRoot, rel));
    budget.kinds.set(rel, 'dir');
    if (!(explicitLast && i === parts.length)) {
      budget.entries += 1;
      if (budget.entries > budget.limits.maxFiles) throw tooManyEntries(budget.limits, what);
    }
  }
}

/** The cheap first check: the target, taken lexically from the link's directory, stays inside. */
function lexicallyInside(linkDir: string[], target: string, fail: () => Error): void {
  if (target.includes('\0') || path.isAbsolute(target) || path.win32.isAbsolute(target)) throw fail();
  const cur = [...linkDir];
  for (const part of target.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (cur.length === 0) throw fail();
      cur.pop();
    } else cur.push(part);
  }
}

