/**
 * 1. Changed-source cycle: fetch + pack + upload of a git bundle, against the
 *    plain baseline `git clone --depth 1 --single-branch` + `tar czf` of the same
 *    folder over the same git HTTP server, in the same run, interleaved.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { SourceRef } from '../activities/types.js';
import { gitRevision } from '../src/api/revision.js';
import { git } from '../src/dev/demo-git/repo.js';
import { ContentVolume } from '../src/content/content-volume.js';
import { benchDeps, fetchPackUpload, gitSpec, packUpload, type CycleResult } from './lib/activities.js';
import { countGitProcesses, type GitInfra } from './lib/infra.js';
import { legacyFetch } from './lib/legacy-git.js';
import { changeFiles, quickCommit, type LargeRepoSpec, type RepoInfo } from './lib/repos.js';
import { fmtBytes, fmtMs, fmtNum, fmtRatio, log, median, rotate, timed, type Table } from './lib/util.js';

export interface CycleOptions {
  smallReps: number;
  largeReps: number;
  large: LargeRepoSpec;
}

export interface Sample {
  ms: number;
  bytesDown: number;
  bytesUp: number;
  requests: number;
  gitProcesses: number;
  otherProcesses: number;
  checksum?: string;
}

export type Variant = 'baseline' | 'before' | 'partial' | 'cacheCold' | 'cacheIncremental' | 'cacheShared' | 'cacheContent';

export const VARIANT_LABELS: Record<Variant, string> = {
  baseline: 'baseline: git clone --depth 1 --single-branch + tar czf',
  before: 'before: ls-remote + shallow fetch of the whole tree',
  partial: 'now, no cache: partial fetch + sparse checkout of path',
  cacheCold: 'now, cache cold (first fetch on a worker)',
  cacheIncremental: 'now, cache warm: incremental fetch of the new commit',
  cacheShared: '2nd source, same commit, other path (cache shared)',
  cacheContent: 'now, cache warm + a version on the content volume (Omnia)',
};

export interface CaseResult {
  repo: string;
  files: number;
  packBytes: number;
  path: string;
  bundleFiles: number;
  samples: Record<Variant, Sample[]>;
}

export interface CycleBenchResult {
  cases: CaseResult[];
  tables: Table[];
}

interface Ctx {
  tmp: string;
  infra: GitInfra;
  gitRoot: string;
}

export async function runCycleBench(ctx: Ctx, repos: { small: RepoInfo; large: RepoInfo }, opts: CycleOptions): Promise<CycleBenchResult> {
  const cases: CaseResult[] = [];
  cases.push(await runCase(ctx, 'small', repos.small, opts.smallReps, ['README.md', 'ci.yml']));
  const lib = Array.from({ length: 20 }, (_, i) => `lib/m${String(i * 5).padStart(3, '0')}/f0${i % 10}.txt`);
  cases.push(await runCase(ctx, 'large', repos.large, opts.largeReps, lib));
  return { cases, tables: [cycleTable(cases)] };
}

async function runCase(ctx: Ctx, repo: string, info: RepoInfo, reps: number, elsewhere: string[]): Promise<CaseResult> {
  const url = ctx.infra.url(repo);
  const [path, otherPath] = info.bundles as [string, string];
  const root = await mkdtemp(join(ctx.tmp, `cycle-${repo}-`));
  const warmRoot = join(root, 'worker-warm');
  const warmContentRoot = join(root, 'worker-warm-content');
  const samples: Record<Variant, Sample[]> = { baseline: [], before: [], partial: [], cacheCold: [], cacheIncremental: [], cacheShared: [], cacheContent: [] };
  const source = (v: string): SourceRef => ({ namespace: 'bench', name: `${repo}-${v.toLowerCase()}` });

  // The warm worker's cache starts with the repository's current commit (as after an earlier cycle).
  const sha0 = (await git(['rev-parse', 'refs/heads/main'], { cwd: info.bare })).stdout.trim();
  delete process.env.ARENA_SOURCE_GIT_CACHE;
  await fetchPackUpload(benchDeps(root, warmRoot), source('warmup'), gitSpec(url, path), gitRevision('main', sha0));
  await fetchPackUpload(contentDeps(root, warmContentRoot), source('warmup-content'), gitSpec(url, path), gitRevision('main', sha0), CONTENT_TARGET);

  let bundleFiles = 0;
  for (let rep = 0; rep < reps; rep++) {
    // A new commit that changes both bundle folders and some files elsewhere.
    const tag = `${repo}-${rep}-${Date.now()}`;
    const sha = await quickCommit(info.bare, { ...changeFiles(path, tag, elsewhere), ...changeFiles(otherPath, tag) });
    const revision = gitRevision('main', sha);
    const units: Variant[][] = [['baseline'], ['before'], ['partial'], ['cacheCold'], ['cacheIncremental', 'cacheShared'], ['cacheContent']];
    for (const unit of rotate(units, rep)) {
      for (const variant of unit) {
        const sample = await measure(ctx, () =>
          runVariant(variant, { root, warmRoot, warmContentRoot, url, path, otherPath, revision, rep, source: source(variant) }),
        );
        samples[variant].push(sample.sample);
        if (sample.files) bundleFiles = sample.files;
      }
    }
    const sums = new Set((['before', 'partial', 'cacheCold', 'cacheIncremental', 'cacheContent'] as Variant[]).map((v) => samples[v].at(-1)?.checksum));
    if (sums.size !== 1) log(`WARNING: ${repo} rep ${rep}: variants produced different artifacts: ${[...sums].join(', ')}`);
    log(`cycle ${repo} rep ${rep + 1}/${reps}: ` + (Object.keys(samples) as Variant[]).map((v) => `${v} ${fmtMs(samples[v].at(-1)!.ms)}`).join(', '));
  }
  await rm(root, { recursive: true, force: true });
  return { repo, files: info.files, packBytes: info.packBytes, path, bundleFiles, samples };
}

interface VariantInput {
  root: string;
  warmRoot: string;
  warmContentRoot: string;
  url: string;
  path: string;
  otherPath: string;
  revision: string;
  rep: number;
  source: SourceRef;
}

async function runVariant(variant: Variant, v: VariantInput): Promise<{ result?: CycleResult; other: number }> {
  switch (variant) {
    case 'baseline': {
      const dir = join(v.root, `baseline-${v.rep}`);
      await run('git', ['clone', '--quiet', '--depth', '1', '--single-branch', '--branch', 'main', v.url, dir]);
      await run('tar', ['czf', `${dir}.tar.gz`, '-C', join(dir, v.path), '.']);
      return { other: 2 }; // tar and the gzip it starts
    }
    case 'before': {
      const deps = benchDeps(v.root, join(v.root, 'worker-before'));
      await mkdir(deps.workRoot, { recursive: true });
      const workDir = await mkdtemp(join(deps.workRoot, 'bench.before.'));
      const sha = await legacyFetch({ url: v.url, ref: { branch: 'main' }, path: v.path }, join(workDir, 'content'), 600_000);
      return { result: await packUpload(deps, v.source, workDir, join(workDir, 'content', v.path), gitRevision('main', sha)), other: 0 };
    }
    case 'partial': {
      process.env.ARENA_SOURCE_GIT_CACHE = 'off';
      try {
        return { result: await fetchPackUpload(benchDeps(v.root, join(v.root, 'worker-nocache')), v.source, gitSpec(v.url, v.path), v.revision), other: 0 };
      } finally {
        delete process.env.ARENA_SOURCE_GIT_CACHE;
      }
    }
    case 'cacheCold':
      return { result: await fetchPackUpload(benchDeps(v.root, join(v.root, `worker-cold-${v.rep}`)), v.source, gitSpec(v.url, v.path), v.revision), other: 0 };
    case 'cacheIncremental':
      return { result: await fetchPackUpload(benchDeps(v.root, v.warmRoot), v.source, gitSpec(v.url, v.path), v.revision), other: 0 };
    case 'cacheShared':
      return { result: await fetchPackUpload(benchDeps(v.root, v.warmRoot), v.source, gitSpec(v.url, v.otherPath), v.revision), other: 0 };
    case 'cacheContent':
      return {
        result: await fetchPackUpload(contentDeps(v.root, v.warmContentRoot), v.source, gitSpec(v.url, v.path), v.revision, CONTENT_TARGET),
        other: 0,
      };
  }
}

const CONTENT_TARGET = { targetPath: 'arena/bench', history: true };

/** A worker with a content root (its own warm git cache, so it compares with cacheIncremental). */
function contentDeps(root: string, workRoot: string) {
  return { ...benchDeps(root, workRoot), content: new ContentVolume(join(root, 'workspace-content')) };
}

async function measure(ctx: Ctx, fn: () => Promise<{ result?: CycleResult; other: number }>): Promise<{ sample: Sample; files?: number }> {
  ctx.infra.reset();
  const { value, gitProcesses } = await countGitProcesses(() => timed(fn));
  const c = ctx.infra.counts();
  const sample: Sample = {
    ms: value.ms,
    bytesDown: c.bytesDown,
    bytesUp: c.bytesUp,
    requests: c.requests,
    gitProcesses,
    otherProcesses: value.value.other,
    ...(value.value.result ? { checksum: value.value.result.checksum } : {}),
  };
  return { sample, ...(value.value.result ? { files: value.value.result.files } : {}) };
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')}: ${err}`))));
  });
}

export function summarize(samples: Sample[]) {
  return {
    ms: median(samples.map((s) => s.ms)),
    bytesDown: median(samples.map((s) => s.bytesDown)),
    bytesUp: median(samples.map((s) => s.bytesUp)),
    requests: median(samples.map((s) => s.requests)),
    processes: median(samples.map((s) => s.gitProcesses + s.otherProcesses)),
  };
}

function cycleTable(cases: CaseResult[]): Table {
  const rows: string[][] = [];
  for (const c of cases) {
    const base = summarize(c.samples.baseline);
    for (const v of Object.keys(VARIANT_LABELS) as Variant[]) {
      const s = summarize(c.samples[v]);
      rows.push([
        `${c.repo}`,
        VARIANT_LABELS[v],
        fmtMs(s.ms),
        v === 'baseline' ? '1.00×' : fmtRatio(s.ms / base.ms),
        fmtBytes(s.bytesDown),
        v === 'baseline' ? '1.00×' : fmtRatio(s.bytesDown / base.bytesDown),
        fmtNum(s.requests),
        fmtNum(s.processes),
      ]);
    }
  }
  const notes = cases.map(
    (c) =>
      `${c.repo}: ${c.files} files, ${fmtBytes(c.packBytes)} packed history, bundle path "${c.path}" (${c.bundleFiles} entries); ` +
      `median of ${c.samples.baseline.length} interleaved runs, a new commit before each`,
  );
  notes.push('time and bytes ratios are variant ÷ baseline of the same run; processes = git processes (children included) + tar/gzip');
  for (const c of cases) {
    const warm = summarize(c.samples.cacheIncremental).ms;
    const content = summarize(c.samples.cacheContent).ms;
    notes.push(`${c.repo}: writing the content volume version costs ${fmtRatio(content / warm)} of the warm cycle (${fmtMs(content - warm)}; target ≤ 1.20×)`);
  }
  return {
    title: '1. Changed-source cycle: fetch + pack + upload vs. git clone --depth 1 + tar czf',
    columns: ['repo', 'variant', 'time', 'ratio', 'downloaded', 'ratio', 'HTTP req', 'procs'],
    rows,
    notes,
  };
}
