/**
 * Safe extraction of tar+gzip layers (src/oci/extract.ts) against hand-made
 * hostile archives; and the round trip pack → extract → pack being exact.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { packDirectory, type PackLimits } from '../../src/bundle/pack.js';
import { ArtifactTooLargeError, FetchFailedError, UnsafeContentError } from '../../src/errors.js';
import { extractTarGz, newBudget, safeRelativePath } from '../../src/oci/extract.js';
import { makeTarGz, type TarSpec } from '../helpers/registry.js';

describe('oci layer extraction', () => {
  let root: string;
  let n = 0;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'arena-oci-extract-'));
  });
  after(async () => rm(root, { recursive: true, force: true }));

  const limits: PackLimits = { maxFiles: 50, maxBytes: 64 * 1024 };

  async function extract(entries: TarSpec[], opts: { limits?: PackLimits; trailingZeros?: number; requirePrefix?: string } = {}) {
    const base = join(root, `case-${++n}`);
    const dir = join(base, 'content');
    await mkdir(dir, { recursive: true });
    const file = join(base, 'layer.tar.gz');
    await writeFile(file, await makeTarGz(entries, opts.trailingZeros ? { trailingZeros: opts.trailingZeros } : {}));
    const budget = newBudget(opts.limits ?? limits);
    await extractTarGz(file, dir, budget, { what: 'test layer', ...(opts.requirePrefix ? { requirePrefix: opts.requirePrefix } : {}) });
    return { dir, base, budget };
  }

  async function rejects(entries: TarSpec[], type: new (...a: never[]) => Error, message: RegExp, opts: Parameters<typeof extract>[1] = {}) {
    await assert.rejects(extract(entries, opts), (err: unknown) => {
      assert.ok(err instanceof type, `expected ${type.name}, got ${String(err)}`);
      assert.match((err as Error).message, message);
      return true;
    });
  }

  it('round trip: pack → extract → pack gives the same bytes (files, dirs, exec bit, inner symlinks)', async () => {
    const src = join(root, 'src');
    await mkdir(join(src, 'prompts', 'deep'), { recursive: true });
    await mkdir(join(src, 'empty'));
    await writeFile(join(src, 'pack.json'), '{"id":"p"}');
    await writeFile(join(src, 'prompts', 'deep', 'a.md'), 'hello');
    await writeFile(join(src, 'run.sh'), '#!/bin/sh\n');
    await chmod(join(src, 'run.sh'), 0o755);
    await symlink('prompts/deep/a.md', join(src, 'alias.md'));
    await symlink('../pack.json', join(src, 'prompts', 'up.json'));
    const first = await packDirectory(src, join(root, 'first.tar.gz'));

    const dir = join(root, 'roundtrip');
    await mkdir(dir);
    const budget = newBudget(limits);
    await extractTarGz(join(root, 'first.tar.gz'), dir, budget, { what: 'round trip' });
    assert.equal(await readFile(join(dir, 'prompts', 'deep', 'a.md'), 'utf8'), 'hello');
    assert.equal(await readlink(join(dir, 'alias.md')), 'prompts/deep/a.md');
    assert.ok(((await lstat(join(dir, 'run.sh'))).mode & 0o100) !== 0, 'exec bit kept');
    assert.equal(budget.entries, first.files);
    assert.equal(budget.bytes, first.unpackedBytes);
    const second = await packDirectory(dir, join(root, 'second.tar.gz'));
    assert.equal(second.checksum, first.checksum);
  });

  it('rejects absolute paths', async () => {
    await rejects([{ name: '/etc/evil', body: 'x' }], UnsafeContentError, /absolute path/);
    await rejects([{ name: 'C:/evil', body: 'x' }], UnsafeContentError, /absolute path/);
  });

  it('rejects ".." anywhere in a path, and backslashes', async () => {
    await rejects([{ name: '../evil', body: 'x' }], UnsafeContentError, /"\.\."/);
    await rejects([{ name: 'a/../../evil', body: 'x' }], UnsafeContentError, /"\.\."/);
    await rejects([{ name: 'a\\..\\evil', body: 'x' }], UnsafeContentError, /backslash/);
    assert.ok(!existsSync(join(root, 'evil')));
  });

  it('rejects symlinks that point outside, directly or through other links', async () => {
    await rejects([{ name: 'link', type: 'symlink', linkname: '/etc/passwd' }], UnsafeContentError, /outside the artifact/);
    await rejects([{ name: 'a/link', type: 'symlink', linkname: '../../x' }], UnsafeContentError, /outside the artifact/);
    // Each link is fine lexically; together they escape: x/y/b -> ../.. is the root, a -> b/.. leaves it.
    await rejects(
      [
        { name: 'x/y/b', type: 'symlink', linkname: '../..' },
        { name: 'x/y/a', type: 'symlink', linkname: 'b/../..' },
      ],
      UnsafeContentError,
      /resolves outside the artifact/,
    );
  });

  it('never writes through a symlink, even one pointing inside', async () => {
    await rejects(
      [
        { name: 'd', type: 'directory' },
        { name: 'l', type: 'symlink', linkname: 'd' },
        { name: 'l/file', body: 'x' },
      ],
      UnsafeContentError,
      /written through the symlink "l"/,
    );
  });

  it('allows hard links only to files extracted before (and copies them)', async () => {
    const { dir } = await extract([
      { name: 'a.txt', body: 'abc' },
      { name: 'b.txt', type: 'link', linkname: 'a.txt' },
    ]);
    assert.equal(await readFile(join(dir, 'b.txt'), 'utf8'), 'abc');
    assert.equal((await lstat(join(dir, 'b.txt'))).nlink, 1, 'a copy, not a second name for the same inode');
    await rejects([{ name: 'h', type: 'link', linkname: '/etc/passwd' }], UnsafeContentError, /absolute path/);
    await rejects([{ name: 'h', type: 'link', linkname: '../x' }], UnsafeContentError, /"\.\."/);
    await rejects([{ name: 'h', type: 'link', linkname: 'later.txt' }, { name: 'later.txt', body: 'x' }], UnsafeContentError, /not a regular file extracted before/);
  });

  it('rejects devices and FIFOs', async () => {
    await rejects([{ name: 'null', type: 'character-device', devmajor: 1, devminor: 3 }], UnsafeContentError, /character device/);
    await rejects([{ name: 'sda', type: 'block-device', devmajor: 8, devminor: 0 }], UnsafeContentError, /block device/);
    await rejects([{ name: 'pipe', type: 'fifo' }], UnsafeContentError, /FIFO/);
  });

  it('rejects a path that appears twice (a file replacing a symlink, say)', async () => {
    await rejects(
      [
        { name: 'x', type: 'symlink', linkname: 'y' },
        { name: 'x', body: 'overwrite' },
      ],
      UnsafeContentError,
      /more than once/,
    );
  });

  it('enforces the entry limit', async () => {
    const many = Array.from({ length: 51 }, (_, i) => ({ name: `f${i}`, body: '' }));
    await rejects(many, ArtifactTooLargeError, /more than 50 entries/);
    // implicit parent directories count too
    const nested = Array.from({ length: 30 }, (_, i) => ({ name: `d${i}/f`, body: '' }));
    await rejects(nested, ArtifactTooLargeError, /more than 50 entries/);
  });

  it('enforces the byte limit from the header, before reading', async () => {
    await rejects([{ name: 'big', zeros: 64 * 1024 + 1 }], ArtifactTooLargeError, /exceeds 65536 bytes/);
    await rejects(
      [
        { name: 'a', zeros: 40 * 1024 },
        { name: 'b', zeros: 40 * 1024 },
      ],
      ArtifactTooLargeError,
      /exceeds 65536 bytes/,
    );
  });

  it('stops a gzip bomb: junk after the tar end is counted as it decompresses', async () => {
    const small: PackLimits = { maxFiles: 10, maxBytes: 1024 };
    await rejects([{ name: 'pack.json', body: '{}' }], ArtifactTooLargeError, /decompresses to more than/, {
      limits: small,
      trailingZeros: 64 * 1024 * 1024,
    });
  });

  it('reports a layer that is not tar+gzip as a non-retryable FetchFailed', async () => {
    const dir = join(root, 'notgz');
    await mkdir(dir);
    await writeFile(join(root, 'notgz.bin'), 'this is not gzip');
    await assert.rejects(extractTarGz(join(root, 'notgz.bin'), dir, newBudget(limits), { what: 'junk layer' }), (err: unknown) => {
      assert.ok(err instanceof FetchFailedError, String(err));
      assert.equal(err.retryable, false);
      assert.match(err.message, /junk layer is not a valid tar\+gzip archive/);
      return true;
    });
  });

  it('keeps entries of a titled directory layer below its title', async () => {
    const { dir } = await extract([{ name: 'prompts/a.md', body: 'a' }], { requirePrefix: 'prompts' });
    assert.equal(await readFile(join(dir, 'prompts', 'a.md'), 'utf8'), 'a');
    await rejects([{ name: 'other/a.md', body: 'a' }], UnsafeContentError, /outside "prompts\/"/, { requirePrefix: 'prompts' });
  });

  it('drops owners, times and setuid bits', async () => {
    const { dir } = await extract([{ name: 'suid', body: 'x', mode: 0o4755, uid: 1234, gid: 1234 }]);
    const st = await lstat(join(dir, 'suid'));
    assert.equal(st.mode & 0o7000, 0);
    assert.equal(st.uid, process.getuid?.() ?? st.uid);
  });

  it('safeRelativePath normalises "./" and empty components', () => {
    assert.equal(safeRelativePath('./a//b/', 'x'), 'a/b');
    assert.equal(safeRelativePath('./', 'x'), '');
    assert.throws(() => safeRelativePath('a/\0b', 'x'), UnsafeContentError);
  });
});
