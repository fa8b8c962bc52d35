/**
 * 5. Pack throughput: the reproducible tar.gz (packDirectory: sorted entries,
 *    fixed metadata, gzip level 6, sha256 on the fly) vs `tar czf` (GNU tar +
 *    gzip -6 in a second process) of the same tree; plus the memory packing and
 *    uploading take, to show nothing holds the whole archive.
 */
import { spawn } from 'node:child_process';
import v8 from 'node:v8';
import vm from 'node:vm';
import { copyFile, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { packDirectory } from '../src/bundle/pack.js';
import { git } from '../src/dev/demo-git/repo.js';
import { FilesystemArtifactStore } from '../src/store/fs-store.js';
import { fmtBytes, fmtMs, fmtNum, fmtRatio, log, median, timed, type Table } from './lib/util.js';

export interface PackCase {
  tree: string;
  files: number;
  bytes: number;
  ours: { ms: number[]; outBytes: number; liveBuffers: number };
  tar: { ms: number[]; outBytes: number };
  upload: { ms: number; liveBuffers: number };
}

/** A gc() function, as --expose-gc gives (enabled at run time). */
function exposedGc(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

/**
 * Most bytes held live in Buffers above the starting point while `fn` runs:
 * sampled every 50 ms right after a full GC, so garbage chunks already passed
 * on do not count, only what is still referenced (an archive held whole would
 * show its size). Slows `fn` down: run it on an untimed pass.
 */
async function peakLiveBuffers<T>(fn: () => Promise<T>): Promise<{ value: T; live: number }> {
  const gc = exposedGc();
  gc();
  const start = process.memoryUsage().arrayBuffers;
  let peak = start;
  // Every 50 ms, and never more than a fifth of the time in GC (a big heap takes a while to collect).
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const t0 = performance.now();
      gc();
      peak = Math.max(peak, process.memoryUsage().arrayBuffers);
      await new Promise((r) => setTimeout(r, Math.max(50, 4 * (performance.now() - t0))));
    }
  })();
  try {
    const value = await fn();
    return { value, live: Math.max(0, peak - start) };
  } finally {
    stopped = true;
    await loop;
  }
}

async function treeSize(dir: string): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.name === '.git') continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      const sub = await treeSize(p);
      files += sub.files + 1;
      bytes += sub.bytes;
    } else {
      files++;
      bytes += (await stat(p)).size;
    }
  }
  return { files, bytes };
}

function tarCzf(out: string, dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('tar', ['czf', out, '--exclude=.git', '-C', dir, '.'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`tar: ${err}`))));
  });
}

export async function runPackBench(tmp: string, trees: Array<{ name: string; bare: string; path: string; reps: number }>): Promise<{ cases: PackCase[]; tables: Table[] }> {
  const cases: PackCase[] = [];
  for (const t of trees) {
    const root = await mkdtemp(join(tmp, `pack-${t.name}-`));
    const checkout = join(root, 'checkout');
    await git(['clone', '--quiet', '--depth', '1', `file://${t.bare}`, checkout]);
    const dir = t.path ? join(checkout, t.path) : checkout;
    const size = await treeSize(dir);
    const ours: number[] = [];
    const tar: number[] = [];
    let outBytes = 0;
    let tarBytes = 0;
    const limits = { maxBytes: 4 * 1024 ** 3, maxFiles: 1_000_000 };
    for (let i = 0; i < t.reps; i++) {
      const order = i % 2 === 0 ? ['ours', 'tar'] : ['tar', 'ours'];
      for (const which of order) {
        const out = join(root, `${which}-${i}.tar.gz`);
        if (which === 'ours') {
          const value = await timed(() => packDirectory(dir, out, limits));
          ours.push(value.ms);
          outBytes = value.value.size;
        } else {
          tar.push((await timed(() => tarCzf(out, dir))).ms);
          tarBytes = (await stat(out)).size;
        }
        if (i < t.reps - 1) await rm(out, { force: true });
      }
    }
    // Memory, on untimed passes: pack once more, then upload that archive into a filesystem store.
    const last = join(root, 'memory.tar.gz');
    const packed = await peakLiveBuffers(() => packDirectory(dir, last, limits));
    const store = new FilesystemArtifactStore(join(root, 'store'));
    const copy = join(root, 'timed.tar.gz');
    await copyFile(last, copy);
    const upMem = await peakLiveBuffers(() => store.put({ namespace: 'bench', name: `${t.name}-m` }, last, packed.value.checksum));
    const up = await timed(() => store.put({ namespace: 'bench', name: t.name }, copy, packed.value.checksum));
    cases.push({
      tree: t.name,
      files: size.files,
      bytes: size.bytes,
      ours: { ms: ours, outBytes, liveBuffers: packed.live },
      tar: { ms: tar, outBytes: tarBytes },
      upload: { ms: up.ms, liveBuffers: upMem.live },
    });
    log(`pack ${t.name}: ours ${fmtMs(median(ours))}, tar ${fmtMs(median(tar))}`);
    await rm(root, { recursive: true, force: true });
  }
  return { cases, tables: [packTable(cases)] };
}

function packTable(cases: PackCase[]): Table {
  const rows: string[][] = [];
  const mbs = (bytes: number, ms: number) => `${fmtNum(bytes / 1e6 / (ms / 1000), 1)} MB/s`;
  for (const c of cases) {
    const o = median(c.ours.ms);
    const t = median(c.tar.ms);
    rows.push([c.tree, 'tar czf (GNU tar | gzip -6)', fmtNum(c.files), fmtBytes(c.bytes), fmtMs(t), mbs(c.bytes, t), '1.00×', fmtBytes(c.tar.outBytes), '']);
    rows.push([c.tree, 'packDirectory (reproducible, sha256)', fmtNum(c.files), fmtBytes(c.bytes), fmtMs(o), mbs(c.bytes, o), fmtRatio(o / t), fmtBytes(c.ours.outBytes), fmtBytes(c.ours.liveBuffers)]);
    rows.push([c.tree, 'upload to the fs store (hash + fsync + rename)', '', fmtBytes(c.ours.outBytes), fmtMs(c.upload.ms), mbs(c.ours.outBytes, c.upload.ms), '', '', fmtBytes(c.upload.liveBuffers)]);
  }
  return {
    title: '5. Pack throughput: packDirectory vs tar czf of the same tree',
    columns: ['tree', 'what', 'entries', 'input', 'time', 'throughput', 'time ratio', 'archive', 'live Buffers (peak)'],
    rows,
    notes: [
      `median of ${cases.map((c) => `${c.ours.ms.length} (${c.tree})`).join(', ')} interleaved runs; throughput = input (unpacked) bytes per second`,
      'live Buffers = most bytes still referenced in Buffers at once, sampled after a forced GC every 50 ms on an extra untimed run: an archive held whole would show its size',
    ],
  };
}
