/**
 * 5. Pack throughput: the reproducible tar.gz (packDirectory: sorted entries,
 *    fixed metadata, gzip level 6, sha256 on the fly) vs `tar czf` (GNU tar +
 *    gzip -6 in a second process) of the same tree; plus the memory packing and
 *    uploading take, to show nothing holds the whole archive.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { packDirectory } from '../src/bundle/pack.js';
import { git } from '../src/devgit/repo.js';
import { FilesystemArtifactStore } from '../src/store/fs-store.js';
import { fmtBytes, fmtMs, fmtNum, fmtRatio, log, median, timed, type Table } from './lib/util.js';

export interface PackCase {
  tree: string;
  files: number;
  bytes: number;
  ours: { ms: number[]; outBytes: number; peakRssDelta: number };
  tar: { ms: number[]; outBytes: number };
  upload: { ms: number; peakRssDelta: number };
}

/** Peak RSS above the starting point while `fn` runs (sampled every 5 ms). */
async function peakRss<T>(fn: () => Promise<T>): Promise<{ value: T; delta: number }> {
  global.gc?.();
  const start = process.memoryUsage.rss();
  let peak = start;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 5);
  try {
    const value = await fn();
    peak = Math.max(peak, process.memoryUsage.rss());
    return { value, delta: peak - start };
  } finally {
    clearInterval(timer);
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
    let peakDelta = 0;
    const limits = { maxBytes: 4 * 1024 ** 3, maxFiles: 1_000_000 };
    for (let i = 0; i < t.reps; i++) {
      const order = i % 2 === 0 ? ['ours', 'tar'] : ['tar', 'ours'];
      for (const which of order) {
        const out = join(root, `${which}-${i}.tar.gz`);
        if (which === 'ours') {
          const { value, delta } = await peakRss(() => timed(() => packDirectory(dir, out, limits)));
          ours.push(value.ms);
          outBytes = value.value.size;
          peakDelta = Math.max(peakDelta, delta);
        } else {
          tar.push((await timed(() => tarCzf(out, dir))).ms);
          tarBytes = (await stat(out)).size;
        }
        if (i < t.reps - 1) await rm(out, { force: true });
      }
    }
    // Upload of the last archive into a filesystem store (rename + re-hash + fsync).
    const store = new FilesystemArtifactStore(join(root, 'store'));
    const last = join(root, `ours-${t.reps - 1}.tar.gz`);
    const { checksum } = await packDirectory(dir, last, limits);
    const up = await peakRss(() => timed(() => store.put({ namespace: 'bench', name: t.name }, last, checksum)));
    cases.push({
      tree: t.name,
      files: size.files,
      bytes: size.bytes,
      ours: { ms: ours, outBytes, peakRssDelta: peakDelta },
      tar: { ms: tar, outBytes: tarBytes },
      upload: { ms: up.value.ms, peakRssDelta: up.delta },
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
    rows.push([c.tree, 'packDirectory (reproducible, sha256)', fmtNum(c.files), fmtBytes(c.bytes), fmtMs(o), mbs(c.bytes, o), fmtRatio(o / t), fmtBytes(c.ours.outBytes), fmtBytes(c.ours.peakRssDelta)]);
    rows.push([c.tree, 'upload to the fs store (hash + fsync + rename)', '', fmtBytes(c.ours.outBytes), fmtMs(c.upload.ms), mbs(c.ours.outBytes, c.upload.ms), '', '', fmtBytes(c.upload.peakRssDelta)]);
  }
  return {
    title: '5. Pack throughput: packDirectory vs tar czf of the same tree',
    columns: ['tree', 'what', 'entries', 'input', 'time', 'throughput', 'time ratio', 'archive', 'peak RSS +'],
    rows,
    notes: [
      `median of ${cases.map((c) => `${c.ours.ms.length} (${c.tree})`).join(', ')} interleaved runs; throughput = input (unpacked) bytes per second`,
      'peak RSS + = resident memory above the start while packing/uploading: far below the archive size, nothing buffers it whole',
    ],
  };
}
