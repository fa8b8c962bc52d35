import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, readlink, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { DEFAULT_PACK_LIMITS, listArchive, packDirectory } from '../../src/bundle/pack.js';
import { ArtifactTooLargeError, InvalidSpecError, StorageFailedError, UnsafeContentError } from '../../src/errors.js';

const require = createRequire(import.meta.url);

let tmp: string;
before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'arena-pack-test-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

let counter = 0;
async function freshDir(label: string): Promise<string> {
  const dir = path.join(tmp, `${label}-${++counter}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

// A long path exercises the ustar prefix/pax encoding; a non-ASCII one the pax path record.
const LONG_DIR = `${'long-directory-name-'.repeat(4)}x/${'nested-'.repeat(10)}y`;
const FILES: Array<{ rel: string; content: string; exec?: boolean }> = [
  { rel: 'arena.yaml', content: 'kind: Arena\nname: demo\n' },
  { rel: 'prompts/system.md', content: '# System\nYou are helpful.\n' },
  { rel: 'prompts/user.md', content: 'Hello {{name}}\n' },
  { rel: 'scripts/run.sh', content: '#!/bin/sh\necho run\n', exec: true },
  { rel: 'ünïcödé/名前.txt', content: 'utf-8 names\n' },
  { rel: `${LONG_DIR}/file-with-a-rather-long-name-too.txt`, content: 'deep\n' },
  { rel: 'empty.txt', content: '' },
];

/** Writes the standard tree; `variant` changes everything that must NOT matter. */
async function writeTree(root: string, variant: 'a' | 'b'): Promise<void> {
  const files = variant === 'a' ? FILES : [...FILES].reverse();
  const oldUmask = process.umask(variant === 'a' ? 0o022 : 0o077);
  try {
    if (variant === 'b') await mkdir(path.join(root, 'zz-empty-dir'));
    for (const f of files) {
      const abs = path.join(root, f.rel);
      await mkdir(path.dirname(abs), { recursive: true });
      await writeFile(abs, f.content);
      if (f.exec) await chmod(abs, variant === 'a' ? 0o755 : 0o700);
    }
    if (variant === 'a') await mkdir(path.join(root, 'zz-empty-dir'));
    await symlink('../arena.yaml', path.join(root, 'prompts', 'arena-link.yaml'));
    await symlink('prompts', path.join(root, 'prompts-link'));
    if (variant === 'b') {
      // Git metadata, other owners and random mtimes must not change the digest.
      await mkdir(path.join(root, '.git', 'objects'), { recursive: true });
      await writeFile(path.join(root, '.git', 'HEAD'), 'ref: refs/heads/main\n');
      await mkdir(path.join(root, 'prompts', '.git'), { recursive: true });
      await writeFile(path.join(root, 'prompts', '.git', 'config'), '[core]\n');
      for (const f of files) {
        const abs = path.join(root, f.rel);
        const when = new Date(Date.UTC(2001, 2, 3) + Math.floor(Math.random() * 1e11));
        await utimes(abs, when, when);
        if (process.getuid?.() === 0) await chown(abs, 1234, 5678);
      }
      await utimes(path.join(root, 'prompts'), new Date(2010, 1, 1), new Date(2010, 1, 1));
    }
  } finally {
    process.umask(oldUmask);
  }
}

async function packFresh(root: string, limits?: Parameters<typeof packDirectory>[2]) {
  const out = path.join(await freshDir('out'), 'bundle.tar.gz');
  const result = await packDirectory(root, out, limits);
  return { out, result };
}

describe('packDirectory', () => {
  it('gives the same checksum for the same content, whatever mtimes, umask, owners and creation order', async () => {
    const a = await freshDir('tree-a');
    const b = await freshDir('tree-b');
    await writeTree(a, 'a');
    await writeTree(b, 'b');

    const pa = await packFresh(a);
    const pb = await packFresh(b);
    assert.match(pa.result.checksum, /^sha256:[0-9a-f]{64}$/);
    assert.equal(pa.result.checksum, pb.result.checksum);
    assert.equal(pa.result.size, pb.result.size);
    const bytesA = await readFile(pa.out);
    assert.deepEqual(bytesA, await readFile(pb.out));
    // The reported checksum and size describe the bytes actually written.
    assert.equal(pa.result.checksum, sha256(bytesA));
    assert.equal(pa.result.size, bytesA.length);
    assert.equal(pa.result.unpackedBytes, FILES.reduce((n, f) => n + Buffer.byteLength(f.content), 0));

    // Packing the same tree twice is stable too.
    assert.equal((await packFresh(a)).result.checksum, pa.result.checksum);
  });

  it('gives a different checksum when content, names or the exec bit change', async () => {
    const base = await freshDir('base');
    await writeTree(base, 'a');
    const { result: original } = await packFresh(base);

    await writeFile(path.join(base, 'prompts/user.md'), 'Hello {{name}}!\n');
    const { result: edited } = await packFresh(base);
    assert.notEqual(edited.checksum, original.checksum);

    await chmod(path.join(base, 'arena.yaml'), 0o744);
    const { result: exec } = await packFresh(base);
    assert.notEqual(exec.checksum, edited.checksum);

    await writeFile(path.join(base, 'new.txt'), '');
    const { result: added } = await packFresh(base);
    assert.notEqual(added.checksum, exec.checksum);
  });

  it('sorts entries bytewise, without "./", and includes directories', async () => {
    const root = await freshDir('sorted');
    for (const name of ['b', 'a-b', 'a/b', 'a/a', 'C', 'é']) {
      await mkdir(path.dirname(path.join(root, name)), { recursive: true });
      await writeFile(path.join(root, name), name);
    }
    const { out, result } = await packFresh(root);
    const entries = await listArchive(out);
    const paths = entries.map((e) => e.path);
    // Bytewise: "C" (0x43) < "a" < "a-b" ("-" 0x2d) < "a/a" ("/" 0x2f) < "b" < "é" (0xc3 0xa9).
    assert.deepEqual(paths, ['C', 'a', 'a-b', 'a/a', 'a/b', 'b', 'é']);
    assert.equal(entries.find((e) => e.path === 'a')?.type, 'directory');
    assert.equal(result.files, 7); // every entry counts, directories included
  });

  it('excludes .git directories (and .git files) at any depth', async () => {
    const root = await freshDir('git');
    await mkdir(path.join(root, '.git/refs'), { recursive: true });
    await writeFile(path.join(root, '.git/HEAD'), 'x');
    await mkdir(path.join(root, 'sub/deeper/.git'), { recursive: true });
    await writeFile(path.join(root, 'sub/deeper/.git/config'), 'x');
    await writeFile(path.join(root, 'sub/.git'), 'gitdir: ../.git/modules/sub\n');
    await writeFile(path.join(root, 'sub/.gitignore'), 'kept\n');
    await writeFile(path.join(root, 'sub/deeper/file'), 'kept\n');

    const { out } = await packFresh(root);
    const paths = (await listArchive(out)).map((e) => e.path);
    assert.deepEqual(paths, ['sub', 'sub/.gitignore', 'sub/deeper', 'sub/deeper/file']);
  });

  it('normalises modes, owners and mtimes', async () => {
    const root = await freshDir('modes');
    const cases: Array<[string, number, number]> = [
      ['private', 0o600, 0o644],
      ['world-writable', 0o666, 0o644],
      ['owner-exec', 0o700, 0o755],
      ['group-exec-only', 0o610, 0o755],
      ['other-exec-only', 0o601, 0o755],
      ['setuid', 0o4755, 0o755],
    ];
    for (const [name, mode] of cases) {
      await writeFile(path.join(root, name), name);
      await chmod(path.join(root, name), mode);
    }
    await mkdir(path.join(root, 'secret-dir'));
    await writeFile(path.join(root, 'secret-dir/f'), 'f');
    await chmod(path.join(root, 'secret-dir'), 0o700);

    const { out } = await packFresh(root);
    const byPath = new Map((await listArchive(out)).map((e) => [e.path, e]));
    for (const [name, , expected] of cases) {
      assert.equal(byPath.get(name)?.mode, expected, `mode of ${name}`);
      assert.equal(byPath.get(name)?.type, 'file');
    }
    assert.equal(byPath.get('secret-dir')?.mode, 0o755);

    // The system tar agrees: owner 0/0 with no names, epoch mtime, normalised modes.
    const listing = execFileSync('tar', ['-tzvf', out], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } }).trim().split('\n');
    assert.equal(listing.length, cases.length + 2);
    for (const line of listing) {
      assert.match(line, /^[-dl]r[-w]x?.* 0\/0 .* 1970-01-01 00:00 /, line);
    }
    assert.ok(listing.some((l) => l.startsWith('-rwxr-xr-x') && l.endsWith(' setuid')));
    assert.ok(listing.some((l) => l.startsWith('-rw-r--r--') && l.endsWith(' private')));
    assert.ok(listing.some((l) => l.startsWith('drwxr-xr-x') && l.endsWith(' secret-dir/')));
  });

  it('round-trips through listArchive and the system tar', async () => {
    const root = await freshDir('roundtrip');
    await writeTree(root, 'a');
    const big = randomBytes(300_000);
    await writeFile(path.join(root, 'big.bin'), big);
    const { out, result } = await packFresh(root);

    const entries = await listArchive(out);
    assert.equal(entries.length, result.files);
    for (const f of FILES) {
      const e = entries.find((x) => x.path === f.rel);
      assert.ok(e, `${f.rel} is in the archive`);
      assert.equal(e.type, 'file');
      assert.equal(e.size, Buffer.byteLength(f.content));
      assert.equal(e.mode, f.exec ? 0o755 : 0o644);
    }
    assert.deepEqual(entries.find((e) => e.path === 'prompts/arena-link.yaml'), {
      path: 'prompts/arena-link.yaml',
      type: 'symlink',
      mode: 0o777,
      size: 0,
      linkname: '../arena.yaml',
    });
    assert.equal(entries.find((e) => e.path === 'big.bin')?.size, big.length);
    assert.equal(entries.find((e) => e.path === 'zz-empty-dir')?.type, 'directory');

    // Extract with the system tar and compare the content byte for byte.
    const dest = await freshDir('extracted');
    execFileSync('tar', ['-xzf', out, '-C', dest]);
    for (const f of FILES) {
      assert.equal(await readFile(path.join(dest, f.rel), 'utf8'), f.content, f.rel);
    }
    assert.deepEqual(await readFile(path.join(dest, 'big.bin')), big);
    assert.equal(await readlink(path.join(dest, 'prompts/arena-link.yaml')), '../arena.yaml');
    assert.equal(await readFile(path.join(dest, 'prompts/arena-link.yaml'), 'utf8'), FILES[0]?.content);
    assert.equal((await stat(path.join(dest, 'scripts/run.sh'))).mode & 0o777, 0o755);
    assert.ok((await stat(path.join(dest, 'zz-empty-dir'))).isDirectory());
  });

  describe('symlinks', () => {
    it('keeps links that resolve inside the root, as written (dangling ones too)', async () => {
      const root = await freshDir('links-ok');
      await mkdir(path.join(root, 'd/e'), { recursive: true });
      await writeFile(path.join(root, 'a.txt'), 'a');
      await symlink('../a.txt', path.join(root, 'd/up-one'));
      await symlink('./d/e/../../a.txt', path.join(root, 'roundabout'));
      await symlink('d', path.join(root, 'dir-link'));
      await symlink('dir-link/up-one', path.join(root, 'chained'));
      await symlink('not-there-yet', path.join(root, 'dangling'));
      await symlink('..', path.join(root, 'd/parent')); // the root itself is inside

      const { out } = await packFresh(root);
      const links = Object.fromEntries(
        (await listArchive(out)).filter((e) => e.type === 'symlink').map((e) => [e.path, e.linkname]),
      );
      assert.deepEqual(links, {
        chained: 'dir-link/up-one',
        'd/parent': '..',
        'd/up-one': '../a.txt',
        dangling: 'not-there-yet',
        'dir-link': 'd',
        roundabout: './d/e/../../a.txt',
      });
    });

    const escapes: Array<[string, (root: string) => Promise<string>]> = [
      ['an absolute link', async (root) => {
        await symlink('/etc/passwd', path.join(root, 'passwd'));
        return 'passwd';
      }],
      ['a ../ link out of the root', async (root) => {
        await symlink('../outside', path.join(root, 'out'));
        return 'out';
      }],
      ['a nested link that climbs too far', async (root) => {
        await mkdir(path.join(root, 'd'));
        await symlink('../../x', path.join(root, 'd/x'));
        return 'd/x';
      }],
      ['a link that escapes only through another link', async (root) => {
        // Lexically "up/.." is inside, but up -> ../.. is the root, so up/.. is above it.
        await mkdir(path.join(root, 'd/e'), { recursive: true });
        await symlink('../..', path.join(root, 'd/e/up'));
        await symlink('up/..', path.join(root, 'd/e/sneaky'));
        return 'd/e/sneaky';
      }],
      ['a link through an absolute link', async (root) => {
        await symlink('/tmp', path.join(root, 'abs'));
        await symlink('abs/x', path.join(root, 'via'));
        return 'abs';
      }],
    ];
    for (const [label, make] of escapes) {
      it(`rejects ${label} with UnsafeContentError naming the path and target`, async () => {
        const root = await freshDir('links-bad');
        await writeFile(path.join(root, 'fine.txt'), 'fine');
        const bad = await make(root);
        const target = await readlink(path.join(root, bad));
        const out = path.join(await freshDir('out'), 'bundle.tar.gz');
        await assert.rejects(packDirectory(root, out), (err: unknown) => {
          assert.ok(err instanceof UnsafeContentError, String(err));
          assert.equal(err.reason, 'UnsafeContent');
          assert.ok(err.message.includes(`"${bad}"`) || err.message.includes(bad), err.message);
          assert.ok(err.message.includes(target), err.message);
          return true;
        });
        assert.equal(existsSync(out), false, 'nothing is written for a rejected tree');
      });
    }

    it('rejects a symlink loop', async () => {
      const root = await freshDir('loop');
      await symlink('b', path.join(root, 'a'));
      await symlink('a', path.join(root, 'b'));
      await symlink('a/x', path.join(root, 'c'));
      await assert.rejects(packFresh(root), UnsafeContentError);
    });
  });

  it('rejects FIFOs and sockets', async () => {
    const fifoRoot = await freshDir('fifo');
    await writeFile(path.join(fifoRoot, 'ok.txt'), 'ok');
    execFileSync('mkfifo', [path.join(fifoRoot, 'pipe')]);
    await assert.rejects(packFresh(fifoRoot), (err: unknown) => {
      assert.ok(err instanceof UnsafeContentError);
      assert.match(err.message, /"pipe".*FIFO/);
      return true;
    });

    const sockRoot = await freshDir('sock');
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(path.join(sockRoot, 'sock'), resolve));
    try {
      await assert.rejects(packFresh(sockRoot), /"sock".*socket/);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  describe('limits', () => {
    it('defaults to 10000 entries and 100 MiB', () => {
      assert.deepEqual({ ...DEFAULT_PACK_LIMITS }, { maxFiles: 10_000, maxBytes: 100 * 1024 * 1024 });
    });

    it('rejects more entries than maxFiles, saying how to change it', async () => {
      const root = await freshDir('many');
      for (let i = 0; i < 5; i++) await writeFile(path.join(root, `f${i}`), 'x');
      await packFresh(root, { maxFiles: 5 }); // exactly at the limit is fine
      await assert.rejects(packFresh(root, { maxFiles: 4 }), (err: unknown) => {
        assert.ok(err instanceof ArtifactTooLargeError);
        assert.equal(err.retryable, false);
        assert.match(err.message, /more than 4 entries/);
        assert.match(err.message, /--max-bundle-files/);
        return true;
      });
      // Directories count as entries.
      await mkdir(path.join(root, 'dir'));
      await assert.rejects(packFresh(root, { maxFiles: 5 }), ArtifactTooLargeError);
    });

    it('rejects more unpacked bytes than maxBytes, saying how to change it', async () => {
      const root = await freshDir('big');
      await writeFile(path.join(root, 'a'), Buffer.alloc(600));
      await writeFile(path.join(root, 'b'), Buffer.alloc(400));
      const { result } = await packFresh(root, { maxBytes: 1000 });
      assert.equal(result.unpackedBytes, 1000);
      const out = path.join(await freshDir('out'), 'bundle.tar.gz');
      await assert.rejects(packDirectory(root, out, { maxBytes: 999 }), (err: unknown) => {
        assert.ok(err instanceof ArtifactTooLargeError);
        assert.match(err.message, /exceeds 999 bytes/);
        assert.match(err.message, /--max-bundle-bytes/);
        return true;
      });
      assert.equal(existsSync(out), false);
    });
  });

  it('throws InvalidSpecError when the root is missing or not a directory', async () => {
    const missing = path.join(tmp, 'no', 'such', 'dir');
    await assert.rejects(packFresh(missing), (err: unknown) => {
      assert.ok(err instanceof InvalidSpecError);
      assert.equal(err.retryable, false);
      assert.equal(err.message, `path "${missing}": no such directory in the source`);
      return true;
    });
    const file = path.join(await freshDir('file-root'), 'file');
    await writeFile(file, 'x');
    await assert.rejects(packFresh(file), InvalidSpecError);
  });

  describe('errors while writing', () => {
    // The module's fs bindings are swapped through node:module's
    // syncBuiltinESMExports, so the failure happens mid-archive for real.
    async function withStub<T>(moduleName: string, prop: string, stub: (real: any) => any, fn: () => Promise<T>): Promise<T> {
      const mod = require(moduleName);
      const real = mod[prop];
      mod[prop] = stub(real);
      syncBuiltinESMExports();
      try {
        return await fn();
      } finally {
        mod[prop] = real;
        syncBuiltinESMExports();
      }
    }

    it('removes the partial output when reading the tree fails mid-archive', async () => {
      const root = await freshDir('read-fail');
      await writeFile(path.join(root, 'a-big.bin'), randomBytes(2_000_000));
      await writeFile(path.join(root, 'z-last.txt'), 'z');
      const out = path.join(await freshDir('out'), 'bundle.tar.gz');
      let partialSize = 0;

      await withStub(
        'node:fs/promises',
        'open',
        (real) =>
          async (p: string, ...rest: unknown[]) => {
            if (String(p).endsWith('z-last.txt')) {
              // By now the big file has gone through gzip into the output.
              for (let i = 0; i < 200 && partialSize === 0; i++) {
                partialSize = (await stat(out).catch(() => null))?.size ?? 0;
                if (partialSize === 0) await new Promise((r) => setTimeout(r, 10));
              }
              throw Object.assign(new Error(`EIO: i/o error, open '${p}'`), { code: 'EIO' });
            }
            return real(p, ...rest);
          },
        async () => {
          await assert.rejects(packDirectory(root, out), /EIO/);
        },
      );
      assert.ok(partialSize > 0, 'a partial archive existed while packing');
      assert.equal(existsSync(out), false, 'the partial archive was removed');
    });

    it('reports a full disk as StorageFailedError and removes the partial output', async () => {
      const root = await freshDir('enospc');
      await writeFile(path.join(root, 'data.bin'), randomBytes(500_000));
      const out = path.join(await freshDir('out'), 'bundle.tar.gz');
      const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      const failing = (real: (...a: any[]) => void) =>
        (fd: number, ...rest: any[]) => {
          const cb = rest[rest.length - 1];
          if (typeof cb !== 'function') return real(fd, ...rest);
          // The first write succeeds so a partial file exists; later ones fail.
          if (++writes > 1) return process.nextTick(cb, enospc());
          return real(fd, ...rest);
        };
      let writes = 0;
      await withStub('node:fs', 'write', failing, () =>
        withStub('node:fs', 'writev', failing, async () => {
          await assert.rejects(packDirectory(root, out), (err: unknown) => {
            assert.ok(err instanceof StorageFailedError, String(err));
            assert.match(err.message, /no space left on device/);
            return true;
          });
        }),
      );
      assert.ok(writes > 1, 'the stubbed write was used');
      assert.equal(existsSync(out), false);
    });
  });
});
