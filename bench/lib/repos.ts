/**
 * The repositories the benchmarks fetch. The large one (5,000 files, ~100 MB of
 * packed history) is generated once with `git fast-import` and cached under
 * ~/.cache/arena-source/bench/; each run serves a hard-linked copy of it, so
 * commits made during a run never touch the cache.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { bareRepoPath, createBareRepo, git, seedRepo, DEVGIT_IDENTITY } from '../../src/dev/demo-git/repo.js';
import { log } from './util.js';

export const CACHE_DIR = join(homedir(), '.cache', 'arena-source', 'bench');

export interface LargeRepoSpec {
  /** Files in the tree at HEAD (bundle folders included). */
  files: number;
  /** Packed size of the whole history to aim for, in MB. */
  historyMB: number;
}

export interface RepoInfo {
  /** Bare repository on disk. */
  bare: string;
  files: number;
  packBytes: number;
  /** Bundle folders (paths) inside it. */
  bundles: string[];
}

const BUNDLE_FILES = 20;
const BUNDLES = ['bundles/support', 'bundles/sales'];
const GENERATOR_VERSION = 2;

function hexText(bytes: number): Buffer {
  // Hex of random bytes in 64-character lines: text that compresses about 2:1, and never deltas.
  const hex = randomBytes(Math.ceil(bytes / 2)).toString('hex');
  return Buffer.from(hex.replace(/(.{64})/g, '$1\n').slice(0, bytes));
}

function bundleFiles(folder: string, version: string): Array<[string, Buffer]> {
  const out: Array<[string, Buffer]> = [[`${folder}/pack.json`, Buffer.from(JSON.stringify({ id: folder, version }, null, 2))]];
  for (let i = 1; i < BUNDLE_FILES; i++) {
    out.push([`${folder}/prompts/p${String(i).padStart(2, '0')}.md`, Buffer.from(`# prompt ${i} (${version})\n\n${hexText(2048).toString()}\n`)]);
  }
  return out;
}

/** Writes a fast-import stream to `git fast-import` in `bare`, with backpressure. */
async function fastImport(bare: string, produce: (write: (chunk: string | Buffer) => Promise<void>) => Promise<void>): Promise<void> {
  const child = spawn('git', ['fast-import', '--quiet', '--done'], { cwd: bare, stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const closed = new Promise<number>((res) => child.on('close', (code) => res(code ?? 1)));
  let failed: Error | undefined;
  child.stdin.on('error', (err) => (failed ??= err));
  const write = async (chunk: string | Buffer) => {
    if (failed) throw failed;
    if (!child.stdin.write(chunk)) await Promise.race([once(child.stdin, 'drain'), closed]);
  };
  try {
    await produce(write);
    await write('done\n');
  } catch {
    // reported below with git's own message
  }
  child.stdin.end();
  const code = await closed;
  if (code !== 0 || failed) throw new Error(`git fast-import failed (${code}): ${stderr.slice(0, 2000)}`);
}

let commitTime = 1_700_000_000;
function commitHeader(ref: string, message: string): string {
  commitTime += 60;
  const who = `${DEVGIT_IDENTITY.name} <${DEVGIT_IDENTITY.email}> ${commitTime} +0000`;
  return `commit ${ref}\nauthor ${who}\ncommitter ${who}\ndata ${Buffer.byteLength(message)}\n${message}\n`;
}

async function inline(write: (c: string | Buffer) => Promise<void>, path: string, content: Buffer): Promise<void> {
  await write(`M 100644 inline ${path}\ndata ${content.length}\n`);
  await write(content);
  await write('\n');
}

/** Bytes of the repository's objects, packed and loose. */
async function packBytes(bare: string): Promise<number> {
  const { stdout } = await git(['count-objects', '-v'], { cwd: bare });
  const kib = (key: string) => Number(new RegExp(`^${key}: (\\d+)`, 'm').exec(stdout)?.[1] ?? 0);
  return (kib('size') + kib('size-pack')) * 1024;
}

/** The large repository, generated on first use (about a minute) and cached. */
export async function largeRepo(spec: LargeRepoSpec): Promise<RepoInfo> {
  const name = `large-${spec.files}f-${spec.historyMB}mb-v${GENERATOR_VERSION}.git`;
  const bare = join(CACHE_DIR, name);
  if (existsSync(join(bare, 'refs', 'heads', 'main')) || existsSync(join(bare, 'packed-refs'))) {
    return { bare, files: spec.files, packBytes: await packBytes(bare), bundles: BUNDLES };
  }
  log(`generating ${name} (${spec.files} files, ~${spec.historyMB} MB of history) in ${CACHE_DIR} …`);
  const t0 = Date.now();
  const tmp = `${bare}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  await git(['init', '--quiet', '--bare', tmp]);
  await git(['symbolic-ref', 'HEAD', 'refs/heads/main'], { cwd: tmp });

  const others = spec.files - BUNDLES.length * BUNDLE_FILES - 1; // -1: .gitattributes
  const perDir = 40;
  const otherPath = (i: number) => `lib/m${String(Math.floor(i / perDir)).padStart(3, '0')}/f${String(i % perDir).padStart(2, '0')}.txt`;
  const size = () => 2048 + Math.floor(Math.random() * 12 * 1024); // 2–14 KiB, 8 KiB on average
  // Hex text packs to ~59% of its size (zlib); the initial tree is most of one snapshot, the rest is rewrites.
  const packedPerFile = 8 * 1024 * 0.59;
  const initialMB = (others * packedPerFile) / 1e6;
  const commits = 40;
  const rewritesPerCommit = Math.max(1, Math.round(((spec.historyMB - initialMB) * 1e6) / packedPerFile / commits));

  await fastImport(tmp, async (write) => {
    await write(commitHeader('refs/heads/main', 'Initial import'));
    await inline(write, '.gitattributes', Buffer.from('*.md text\n*.json text\n'));
    for (const b of BUNDLES) for (const [p, c] of bundleFiles(b, '1')) await inline(write, p, c);
    for (let i = 0; i < others; i++) await inline(write, otherPath(i), hexText(size()));
    await write('\n');
    for (let c = 1; c <= commits; c++) {
      // Same branch in the same stream: fast-import continues from its tip.
      await write(commitHeader('refs/heads/main', `Rewrite ${rewritesPerCommit} files (${c})`));
      for (let k = 0; k < rewritesPerCommit; k++) await inline(write, otherPath(Math.floor(Math.random() * others)), hexText(size()));
      await write('\n');
    }
  });
  await rm(bare, { recursive: true, force: true });
  await rename(tmp, bare);
  const bytes = await packBytes(bare);
  log(`generated ${name}: ${(bytes / 1e6).toFixed(0)} MB packed, ${commits + 1} commits, in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return { bare, files: spec.files, packBytes: bytes, bundles: BUNDLES };
}

/** Serves a hard-linked copy of `src` as `<root>/<name>.git` (allowFilter etc. as every devgit repo). */
export async function serveCopy(src: string, root: string, name: string): Promise<string> {
  const dest = bareRepoPath(root, name);
  await mkdir(root, { recursive: true });
  await git(['clone', '--quiet', '--bare', '--local', src, dest]);
  await createBareRepo(root, name);
  return dest;
}

/** The small repository: 50 files, two bundle folders of 22 files, six files at the root. */
export async function smallRepo(root: string, name: string): Promise<RepoInfo> {
  const files: Record<string, string> = {
    '.gitattributes': '*.md text\n',
    'README.md': '# prompt library\n',
    'LICENSE': 'Apache-2.0\n',
    'CODEOWNERS': '* @team\n',
    'Makefile': 'all:\n\techo ok\n',
    'ci.yml': 'on: push\n',
  };
  for (const folder of ['support', 'sales']) {
    files[`${folder}/pack.json`] = JSON.stringify({ id: folder, version: '1' });
    files[`${folder}/README.md`] = `# ${folder}\n`;
    for (let i = 0; i < 20; i++) files[`${folder}/prompts/p${String(i).padStart(2, '0')}.md`] = `# prompt ${i}\n\n${hexText(1500).toString()}\n`;
  }
  const bare = bareRepoPath(root, name);
  await seedRepo(root, name, files);
  return { bare, files: Object.keys(files).length, packBytes: await packBytes(bare), bundles: ['support', 'sales'] };
}

/**
 * A new commit on `branch` of the bare repository, straight into it with
 * fast-import (as fast for 5,000 files as for 50): `files` change, the rest stays.
 * Returns the commit.
 */
export async function quickCommit(bare: string, files: Record<string, string | Buffer>, branch = 'main'): Promise<string> {
  await fastImport(bare, async (write) => {
    await write(commitHeader(`refs/heads/${branch}`, 'bench change'));
    await write(`from refs/heads/${branch}^0\n`);
    for (const [p, c] of Object.entries(files)) await inline(write, p, Buffer.isBuffer(c) ? c : Buffer.from(c));
    await write('\n');
  });
  return (await git(['rev-parse', `refs/heads/${branch}`], { cwd: bare })).stdout.trim();
}

/** Files for a change of `bundle` (one prompt edited) and of `others` files elsewhere in the large repo. */
export function changeFiles(bundle: string, tag: string, elsewhere: string[] = []): Record<string, Buffer> {
  const out: Record<string, Buffer> = { [`${bundle}/prompts/p01.md`]: Buffer.from(`# prompt 1 (${tag})\n\n${hexText(2048).toString()}\n`) };
  for (const p of elsewhere) out[p] = hexText(8192);
  return out;
}

export { hexText };
