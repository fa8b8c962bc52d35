/**
 * Property tests (fast-check) for the pack/untar path: random trees pack
 * reproducibly and survive a pack → extract → pack round trip byte for byte;
 * random (often hostile) tar streams never write outside the destination and
 * fail only with typed errors.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DEFAULT_PACK_LIMITS, packDirectory } from '../../src/bundle/pack.js';
import { ArenaSourceError } from '../../src/errors.js';
import { extractTarGz, newBudget } from '../../src/oci/extract.js';
import { makeTarGz, type TarSpec } from '../helpers/registry.js';

const segment = fc.stringMatching(/^[a-zA-Z0-9_-][a-zA-Z0-9._-]{0,11}$/).filter((s) => s !== '.git' && s !== '..' && s !== '.');
const relPath = fc.array(segment, { minLength: 1, maxLength: 4 }).map((parts) => parts.join('/'));
const tree = fc.uniqueArray(fc.record({ path: relPath, body: fc.uint8Array({ maxLength: 2048 }), exec: fc.boolean() }), {
  selector: (f) => f.path.toLowerCase(),
  maxLength: 25,
}).filter((files) => {
  // No file may also be a directory of another file.
  const paths = new Set(files.map((f) => f.path.toLowerCase()));
  return files.every((f) => !f.path.toLowerCase().split('/').slice(0, -1).some((_, i, a) => paths.has(a.slice(0, i + 1).join('/'))));
});

async function writeTree(root: string, files: Array<{ path: string; body: Uint8Array; exec: boolean }>, reverse: boolean, mtime: number) {
  const ordered = reverse ? [...files].reverse() : files;
  for (const f of ordered) {
    const full = join(root, f.path);
    await mkdir(dirname(full), { recursive: true });
    await writeFile(full, f.body, { mode: f.exec ? 0o755 : 0o600 });
    await utimes(full, mtime, mtime);
  }
}

/** Every path under dir (to prove nothing appeared outside the extraction root). */
async function listAll(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) out.push(join(e.parentPath ?? (e as unknown as { path: string }).path, e.name));
  return out.sort();
}

describe('pack and untar properties', () => {
  it('same content ⇒ same checksum, whatever the order, times and modes on disk; pack → extract → pack is byte-identical', async () => {
    await fc.assert(
      fc.asyncProperty(tree, async (files) => {
        const base = await mkdtemp(join(tmpdir(), 'prop-'));
        try {
          await mkdir(join(base, 'a'));
          await mkdir(join(base, 'b'));
          await writeTree(join(base, 'a'), files, false, 1_000_000);
          await writeTree(join(base, 'b'), files, true, 2_000_000_000);
          const a = await packDirectory(join(base, 'a'), join(base, 'a.tar.gz'));
          const b = await packDirectory(join(base, 'b'), join(base, 'b.tar.gz'));
          assert.equal(a.checksum, b.checksum);
          await mkdir(join(base, 'x'));
          await extractTarGz(join(base, 'a.tar.gz'), join(base, 'x'), newBudget(DEFAULT_PACK_LIMITS), { what: 'property' });
          const again = await packDirectory(join(base, 'x'), join(base, 'x.tar.gz'));
          assert.equal(again.checksum, a.checksum);
        } finally {
          await rm(base, { recursive: true, force: true });
        }
      }),
      { numRuns: 40 },
    );
  });

  it('random tar streams never write outside the destination and fail only with typed errors', async () => {
    const hostileName = fc.oneof(
      relPath,
      fc.constantFrom('/etc/passwd', '../escape', 'a/../../escape', './ok', 'a/./b', '//abs', 'a\\b', '..', '.'),
      relPath.map((p) => `../${p}`),
    );
    const entry: fc.Arbitrary<TarSpec> = fc.oneof(
      fc.record({ name: hostileName, type: fc.constant('file' as const), body: fc.string({ maxLength: 64 }) }),
      fc.record({ name: hostileName, type: fc.constant('directory' as const) }),
      fc.record({ name: hostileName, type: fc.constant('symlink' as const), linkname: hostileName }),
      fc.record({ name: hostileName, type: fc.constant('link' as const), linkname: hostileName }),
      fc.record({ name: hostileName, type: fc.constantFrom('fifo' as const, 'character-device' as const, 'block-device' as const) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(entry, { maxLength: 12 }), async (entries) => {
        const base = await mkdtemp(join(tmpdir(), 'untar-'));
        try {
          const outside = join(base, 'outside');
          const dest = join(base, 'sandbox', 'dest');
          await mkdir(outside, { recursive: true });
          await mkdir(dest, { recursive: true });
          await writeFile(join(outside, 'sentinel'), 'keep');
          await symlink(outside, join(base, 'sandbox', 'escape'));
          const before = await listAll(base);
          const file = join(base, 'layer.tar.gz');
          await writeFile(file, await makeTarGz(entries));
          try {
            await extractTarGz(file, dest, newBudget({ maxFiles: 50, maxBytes: 100_000 }), { what: 'fuzz' });
          } catch (err) {
            assert.ok(err instanceof ArenaSourceError, `untyped error: ${String(err)}`);
          }
          const after = (await listAll(base)).filter((p) => !p.startsWith(`${dest}/`) && p !== file);
          assert.deepEqual(after, before.filter((p) => p !== file), 'something appeared outside the destination');
        } finally {
          await rm(base, { recursive: true, force: true });
        }
      }),
      { numRuns: 150 },
    );
  });
});
