/**
 * 2. No-op cycle: the source did not change. resolveRevision (one ls-remote, then
 *    a re-hash of the stored artifact) is all a no-op cycle runs besides its two
 *    status writes. Time, bytes on the wire, HTTP requests, TCP
 *    connections and git processes, against a full fetch of the same source.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { gitRevision } from '../src/api/revision.js';
import { git } from '../src/dev/demo-git/repo.js';
import { benchDeps, fetchPackUpload, gitSpec, noopCycle } from './lib/activities.js';
import { countGitProcesses, type GitInfra } from './lib/infra.js';
import { fmtBytes, fmtMs, fmtNum, fmtRatio, log, median, timed, type Table } from './lib/util.js';
import type { Sample } from './cycle.js';

export interface NoopOptions {
  reps: number;
}

export interface NoopCase {
  repo: string;
  noop: Sample & { connections: number };
  /** The same source's changed cycle before this work: ls-remote + shallow fetch of the whole tree + pack + upload. */
  full?: Sample;
  samples: Array<Sample & { connections: number }>;
}

interface Ctx {
  tmp: string;
  infra: GitInfra;
  gitRoot: string;
}

export async function runNoopBench(
  ctx: Ctx,
  repos: Array<{ repo: string; bare: string; path: string; full?: Sample }>,
  opts: NoopOptions,
): Promise<{ cases: NoopCase[]; tables: Table[] }> {
  const cases: NoopCase[] = [];
  for (const r of repos) {
    const root = await mkdtemp(join(ctx.tmp, `noop-${r.repo}-`));
    const deps = benchDeps(root, join(root, 'worker'));
    const url = ctx.infra.url(r.repo);
    const spec = gitSpec(url, r.path);
    const source = { namespace: 'bench', name: `noop-${r.repo}` };
    const sha = (await git(['rev-parse', 'refs/heads/main'], { cwd: r.bare })).stdout.trim();
    const artifact = await fetchPackUpload(deps, source, spec, gitRevision('main', sha));
    const samples: Array<Sample & { connections: number }> = [];
    for (let i = 0; i < opts.reps; i++) {
      ctx.infra.reset();
      const { value, gitProcesses } = await countGitProcesses(() => timed(() => noopCycle(deps, source, spec, artifact)));
      if (!value.value) throw new Error(`no-op cycle of ${r.repo} did not find the artifact current`);
      const c = ctx.infra.counts();
      samples.push({
        ms: value.ms,
        bytesDown: c.bytesDown,
        bytesUp: c.bytesUp,
        requests: c.requests,
        gitProcesses,
        otherProcesses: 0,
        connections: ctx.infra.proxy.connections,
      });
    }
    const med = (k: keyof Sample | 'connections') => median(samples.map((s) => s[k] as number));
    const noop = {
      ms: med('ms'),
      bytesDown: med('bytesDown'),
      bytesUp: med('bytesUp'),
      requests: med('requests'),
      gitProcesses: med('gitProcesses'),
      otherProcesses: 0,
      connections: med('connections'),
    };
    cases.push({ repo: r.repo, noop, ...(r.full ? { full: r.full } : {}), samples });
    log(`noop ${r.repo}: ${fmtMs(noop.ms)}, ${fmtBytes(noop.bytesDown + noop.bytesUp)} on the wire, ${noop.requests} requests`);
    await rm(root, { recursive: true, force: true });
  }
  return { cases, tables: [noopTable(cases)] };
}

function noopTable(cases: NoopCase[]): Table {
  const rows: string[][] = [];
  for (const c of cases) {
    const n = c.noop;
    rows.push([c.repo, 'no-op: resolveRevision (ls-remote + re-hash of the artifact)', fmtMs(n.ms), fmtBytes(n.bytesDown + n.bytesUp), fmtNum(n.requests), fmtNum(n.connections), fmtNum(n.gitProcesses)]);
    if (c.full) {
      const f = c.full;
      rows.push([c.repo, 'full fetch (before): ls-remote + shallow fetch + pack + upload', fmtMs(f.ms), fmtBytes(f.bytesDown + f.bytesUp), fmtNum(f.requests), '', fmtNum(f.gitProcesses)]);
      rows.push([
        c.repo,
        'no-op is cheaper by',
        fmtRatio(f.ms / n.ms),
        fmtRatio((f.bytesDown + f.bytesUp) / (n.bytesDown + n.bytesUp)),
        fmtRatio(f.requests / n.requests),
        '',
        fmtRatio(f.gitProcesses / n.gitProcesses),
      ]);
    }
  }
  return {
    title: '2. No-op cycle (unchanged source) vs. a full fetch',
    columns: ['repo', 'what', 'time', 'on the wire', 'HTTP req', 'TCP conn', 'git procs'],
    rows,
    notes: [
      `median of ${cases[0]?.samples.length ?? 0} no-op cycles; the two status writes of a cycle are not included (no git, no network)`,
      'one ls-remote = one git protocol v2 exchange: GET info/refs (capabilities) + POST ls-refs, on one kept-alive connection',
    ],
  };
}
