/**
 * Benchmarks of arena-source: `npm run bench` (builds, then runs all of them).
 *
 *   node dist/bench/run.js [--only cycle,noop,latency,scale,pack] [flags]
 *
 *   1 cycle    changed-source cycle (fetch + pack + upload) vs git clone --depth 1 + tar czf
 *   2 noop     no-op cycle (unchanged source) vs a full fetch
 *   3 latency  change-to-Ready latency, with the reconcile signal and with polling
 *   4 scale    N sources on one worker process: Ready time, CPU, memory, Temporal actions
 *   5 pack     packDirectory vs tar czf throughput
 *   6 webhook  push → signed webhook → Ready, beside the reconcile signal
 *   7 fork     event loop held by one git spawn, by process size (why git runs from a helper process)
 *   8 replay   CPU to replay an evicted workflow, by the cycles in its run (short runs)
 *   9 roles    a worker process's idle RSS by --role
 *  10 kubernetes  cluster mode beside Flux's source-controller (`--kubernetes`, or `--only kubernetes`;
 *                 not part of the default run: it needs kube-apiserver and Flux, `ensure-tools.sh bench`)
 *  11 memory   memory per cached workflow by part, beside a plain sleep-loop workflow (the SDK's floor); 11b what it gains per cycle of a run
 *
 * Every figure comes with the baseline measured in the same run. Nothing here is a
 * test: no assertion fails on a number. Results: the tables on stdout and
 * bench/results/latest.json (or --out).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runCycleBench, type Sample } from './cycle.js';
import { cleanups, GitInfra, startTemporal, type TemporalServer } from './lib/infra.js';
import { describeMachine, machineInfo } from './lib/machine.js';
import { allocatorProblem } from './lib/image-env.js';
import { largeRepo, serveCopy, smallRepo, type RepoInfo } from './lib/repos.js';
import { log, renderTable, type Table } from './lib/util.js';
import { runLatencyBench } from './latency.js';
import { runNoopBench } from './noop.js';
import { runPackBench } from './pack.js';
import { runKubernetesBench } from './kubernetes.js';
import { runScaleBench, scaleSummary, settingsOf, specInterval, type ScaleResult } from './scale.js';
import { runWebhookBench } from './webhook.js';
import { runForkBench } from './fork.js';
import { runReplayBench } from './replay.js';
import { runRolesBench } from './roles.js';
import { runCachedMemoryBench, runCycleGrowthBench } from './cached-memory.js';

const ALL = ['cycle', 'noop', 'latency', 'scale', 'pack', 'webhook', 'fork', 'replay', 'roles', 'memory', 'kubernetes'] as const;
/** What runs without --only: the cluster benchmark needs tools the others do not. */
const DEFAULT: Bench[] = ['cycle', 'noop', 'latency', 'scale', 'pack', 'webhook', 'fork', 'replay', 'roles', 'memory'];
type Bench = (typeof ALL)[number];

const USAGE = `usage: node dist/bench/run.js [options]
  --only LIST              benchmarks to run, comma-separated: ${ALL.join(',')} (default: all)
  --small-reps N           changed cycles on the small repo (default 7)
  --large-reps N           changed cycles on the large repo (default 3)
  --large-files N          files in the large repo (default 5000)
  --large-history-mb N     packed history of the large repo (default 100)
  --noop-reps N            no-op cycles measured per repo (default 20)
  --latency-samples N      samples per mode (default 20)
  --latency-interval S     polling interval in seconds (default 5)
  --latency-lanes N        sources measured in parallel in the polling mode (default 4)
  --scale-n LIST           sources on one worker; a list (100,1000) runs each and adds the marginal memory (default 1000);
                           N@S gives that size its own interval of S seconds, one interval of steady state and no
                           change phase (issue 13 in one run: 100,1000,10000@600)
  --scale-interval S       the sources' interval in seconds (default 60)
  --scale-baseline         also run the largest N as before short runs: every workflow cached, one run per ~5,000 events
  --scale-only-baseline    run only that baseline
  --scale-cycles-per-run N the workflow's cycles per run (default: the workflow's)
  --scale-repos N          repositories they point at (default 20)
  --scale-steady S         seconds of the unchanged steady state measured (default 90)
  --scale-change S         seconds of 10%-of-sources-per-minute changes measured (default 120)
  --scale-no-cache         run the worker with ARENA_SOURCE_GIT_CACHE=off
  --scale-cached-workflows N  the worker's --max-cached-workflows (default: the worker's, from its memory)
  --scale-memory-limit MiB run the worker in a memory cgroup with this limit, as a pod (the chart's: 1024); needs root
  --webhook-samples N      push → webhook → Ready samples, each beside a reconcile-signal one (default 30)
  --webhook-bystanders N   sources on other repositories during the webhook run (default 20)
  --kubernetes             only the cluster benchmark (= --only kubernetes): arena-source beside Flux on one API server
  --kube-sizes LIST        numbers of sources, comma-separated (default 300,1000)
  --kube-workers N         arena-source worker processes (default 1)
  --kube-interval D        interval of every source (default 5m)
  --kube-steady S          seconds of steady state measured after all are Ready (default 30)
  --kube-systems LIST      flux,arena (default both)
  --kube-blob-mib N        add an N MiB file outside the bundle folders to the repository (default 0)
  --flux-args ARGS         extra flags for Flux's source-controller, space-separated (e.g. "--kube-api-qps=500 --kube-api-burst=1000")
  --fork-sizes LIST        process sizes (MiB of ballast) for the fork benchmark (default 0,100,250,1000)
  --replay-cycles LIST     run lengths (cycles) replayed (default 5,10,20,40,80)
  --memory-sizes A,B       cached workflows in benchmark 11's two measurements (default 100,1000)
  --memory-growth N,S,C    11b: N workflows cycling every S seconds, sampled for C cycles (default 200,5,16; 0 skips it)
  --no-eager               dev server without eager activity execution (the self-hosted default)
  --out FILE               JSON results (default bench/results/latest.json)
  --keep                   keep the temporary directory`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      only: { type: 'string' },
      'small-reps': { type: 'string', default: '7' },
      'large-reps': { type: 'string', default: '3' },
      'large-files': { type: 'string', default: '5000' },
      'large-history-mb': { type: 'string', default: '100' },
      'noop-reps': { type: 'string', default: '20' },
      'latency-samples': { type: 'string', default: '20' },
      'latency-interval': { type: 'string', default: '5' },
      'latency-lanes': { type: 'string', default: '4' },
      'scale-n': { type: 'string', default: '1000' },
      'scale-interval': { type: 'string', default: '60' },
      'scale-baseline': { type: 'boolean', default: false },
      'scale-only-baseline': { type: 'boolean', default: false },
      'scale-cycles-per-run': { type: 'string' },
      'scale-repos': { type: 'string', default: '20' },
      'scale-steady': { type: 'string', default: '90' },
      'scale-change': { type: 'string', default: '120' },
      'scale-no-cache': { type: 'boolean', default: false },
      'scale-cached-workflows': { type: 'string' },
      'scale-memory-limit': { type: 'string' },
      'webhook-samples': { type: 'string', default: '30' },
      'webhook-bystanders': { type: 'string', default: '20' },
      'fork-sizes': { type: 'string', default: '0,100,250,1000' },
      'replay-cycles': { type: 'string', default: '5,10,20,40,80' },
      'memory-sizes': { type: 'string', default: '100,1000' },
      'memory-growth': { type: 'string', default: '200,5,16' },
      'no-eager': { type: 'boolean', default: false },
      kubernetes: { type: 'boolean', default: false },
      'kube-sizes': { type: 'string', default: '300,1000' },
      'kube-workers': { type: 'string', default: '1' },
      'kube-interval': { type: 'string', default: '5m' },
      'kube-steady': { type: 'string', default: '30' },
      'kube-systems': { type: 'string', default: 'flux,arena' },
      'flux-args': { type: 'string', default: '' },
      'kube-blob-mib': { type: 'string', default: '0' },
      out: { type: 'string', default: 'bench/results/latest.json' },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const int = (k: keyof typeof values) => {
    const n = Number(values[k]);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${k}: a positive number, not ${String(values[k])}`);
    return n;
  };
  const chosen = values.kubernetes ? ['kubernetes'] : values.only ? values.only.split(',') : DEFAULT;
  const only = new Set<Bench>(chosen.map((s) => s.trim() as Bench));
  for (const b of only) if (!ALL.includes(b)) throw new Error(`--only: unknown benchmark "${b}" (${ALL.join(', ')})`);
  // The memory figures are the image's only on its allocator (bench/lib/image-env.ts).
  const allocator = allocatorProblem();
  if (allocator && ['scale', 'memory', 'roles', 'kubernetes'].some((b) => only.has(b as Bench))) throw new Error(allocator);

  const machine = machineInfo();
  const command = `node dist/bench/run.js ${process.argv.slice(2).join(' ')}`.trim();
  console.log(`arena-source benchmarks — ${new Date().toISOString()}\n${describeMachine(machine)}\ncommand: ${command}\n`);

  // The system's git config must not change what is measured (the worker ignores it too).
  process.env.GIT_CONFIG_NOSYSTEM = '1';

  const tmp = await mkdtemp(join(tmpdir(), 'arena-bench-'));
  // Interrupted: stop the worker and Temporal we started, remove our files.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping`);
      void Promise.allSettled([...cleanups].map((stop) => stop()))
        .then(() => (values.keep ? undefined : rm(tmp, { recursive: true, force: true })))
        .finally(() => process.exit(130));
    });
  }
  const gitRoot = join(tmp, 'git');
  const infra = await GitInfra.start(gitRoot);
  const ctx = { tmp, infra, gitRoot };
  const tables: Table[] = [];
  const results: Record<string, unknown> = {};
  let temporal: TemporalServer | undefined;
  // One dev server for the benchmarks that need Temporal, started on first use.
  const temporalServer = async () => (temporal ??= await startTemporal(!values['no-eager']));
  const started = Date.now();
  const print = (t: Table[]) => {
    for (const table of t) console.log(`${renderTable(table)}\n`);
    tables.push(...t);
  };

  try {
    const needRepos = only.has('cycle') || only.has('noop') || only.has('pack');
    let repos: { small: RepoInfo; large: RepoInfo } | undefined;
    if (needRepos) {
      const large = await largeRepo({ files: int('large-files'), historyMB: int('large-history-mb') });
      repos = {
        small: await smallRepo(gitRoot, 'small'),
        large: { ...large, bare: await serveCopy(large.bare, gitRoot, 'large') },
      };
    }
    let fullFetch: Record<string, Sample> = {};
    if (only.has('cycle') && repos) {
      log('1. changed-source cycle');
      const r = await runCycleBench(ctx, repos, { smallReps: int('small-reps'), largeReps: int('large-reps'), large: { files: int('large-files'), historyMB: int('large-history-mb') } });
      results.cycle = r.cases;
      print(r.tables);
      fullFetch = Object.fromEntries(r.cases.map((c) => [c.repo, medianSample(c.samples.before)]));
    }
    if (only.has('noop') && repos) {
      log('2. no-op cycle');
      const r = await runNoopBench(
        ctx,
        [
          { repo: 'small', bare: repos.small.bare, path: repos.small.bundles[0]!, ...(fullFetch.small ? { full: fullFetch.small } : {}) },
          { repo: 'large', bare: repos.large.bare, path: repos.large.bundles[0]!, ...(fullFetch.large ? { full: fullFetch.large } : {}) },
        ],
        { reps: int('noop-reps') },
      );
      results.noop = r.cases;
      print(r.tables);
    }
    if (only.has('latency')) {
      log('3. change-to-Ready latency');
      const r = await runLatencyBench(ctx, await temporalServer(), {
        samples: int('latency-samples'),
        intervalSeconds: int('latency-interval'),
        lanes: int('latency-lanes'),
      });
      results.latency = r.results;
      print(r.tables);
    }
    if (only.has('scale')) {
      log('4. scale on one worker');
      const sizes = values['scale-n']!.split(',').map(scaleSize);
      const common = {
        repos: int('scale-repos'),
        steadySeconds: int('scale-steady'),
        changeSeconds: Number(values['scale-change']),
        cache: !values['scale-no-cache'],
        intervalSeconds: int('scale-interval'),
        ...(values['scale-cached-workflows'] ? { cachedWorkflows: int('scale-cached-workflows') } : {}),
        ...(values['scale-memory-limit'] ? { memoryLimitMiB: int('scale-memory-limit') } : {}),
        ...(values['scale-cycles-per-run'] ? { cyclesPerRun: int('scale-cycles-per-run') } : {}),
      };
      const runs: ScaleResult[] = [];
      for (const { n, intervalSeconds } of values['scale-only-baseline'] ? [] : sizes) {
        const own = intervalSeconds === undefined ? {} : { intervalSeconds, steadySeconds: Math.max(common.steadySeconds, intervalSeconds), changeSeconds: 0 };
        const at = intervalSeconds === undefined ? '' : ` at ${specInterval(intervalSeconds)}`;
        const set = settingsOf(common);
        const label = `${n} sources${at}, ${set.length ? set.join(', ') : 'defaults'}`;
        const r = await runScaleBench(ctx, await temporalServer(), { ...common, ...own, n, label });
        runs.push(r.results);
        print(r.tables);
      }
      if (values['scale-baseline'] || values['scale-only-baseline']) {
        // Before short runs and a bounded cache: every workflow cached, a run ends near 5,000 events.
        const n = Math.max(...sizes.map((size) => size.n));
        const r = await runScaleBench(ctx, await temporalServer(), {
          ...common,
          n,
          cachedWorkflows: n + 100,
          cyclesPerRun: 1_000_000,
          label: `${n} sources, baseline (all cached, long runs)`,
        });
        runs.push(r.results);
        print(r.tables);
      }
      results.scale = runs;
      print([scaleSummary(runs)]);
    }
    if (only.has('fork')) {
      log('6. fork cost');
      const r = runForkBench(values['fork-sizes']!.split(',').map(Number));
      results.fork = r.cases;
      print(r.tables);
    }
    if (only.has('replay')) {
      log('7. replay cost');
      const r = await runReplayBench(await temporalServer(), { cycles: values['replay-cycles']!.split(',').map(Number), reps: 30 });
      results.replay = r.cases;
      print(r.tables);
    }
    if (only.has('roles')) {
      log('8. worker RSS by role');
      const r = await runRolesBench(tmp, await temporalServer());
      results.roles = r.cases;
      print(r.tables);
    }
    if (only.has('memory')) {
      log('11. memory per cached workflow');
      const sizes = values['memory-sizes']!.split(',').map(Number);
      if (sizes.length !== 2) throw new Error('--memory-sizes: two sizes, e.g. 100,1000');
      const r = await runCachedMemoryBench(await temporalServer(), sizes as [number, number]);
      results.memory = r.cases;
      print(r.tables);
      const [n, intervalS, cycles] = values['memory-growth']!.split(',').map(Number);
      if (n && intervalS && cycles) {
        log('11b. memory a cached workflow gains per cycle of its run');
        const g = await runCycleGrowthBench(await temporalServer(), { n, intervalS, cycles });
        results.memoryGrowth = g.cases;
        print(g.tables);
      }
    }
    if (only.has('kubernetes')) {
      log('6. cluster mode beside Flux');
      const r = await runKubernetesBench(ctx, {
        sizes: values['kube-sizes']!.split(',').map((x) => Number(x.trim())),
        workers: int('kube-workers'),
        interval: values['kube-interval']!,
        steadySeconds: int('kube-steady'),
        systems: values['kube-systems']!.split(',').map((x) => x.trim()) as Array<'flux' | 'arena'>,
        fluxArgs: values['flux-args']!.split(' ').filter(Boolean),
        blobMiB: Number(values['kube-blob-mib']),
      });
      results.kubernetes = r.results;
      print(r.tables);
    }
    if (only.has('pack') && repos) {
      log('5. pack throughput');
      const r = await runPackBench(tmp, [
        { name: 'large-tree', bare: repos.large.bare, path: '', reps: 3 },
        { name: 'small-bundle', bare: repos.small.bare, path: repos.small.bundles[0]!, reps: 15 },
      ]);
      results.pack = r.cases;
      print(r.tables);
    }
    if (only.has('webhook')) {
      log('6. push-to-Ready through a webhook');
      const r = await runWebhookBench(ctx, await temporalServer(), { samples: int('webhook-samples'), bystanders: int('webhook-bystanders') });
      results.webhook = r.results;
      print(r.tables);
    }
  } finally {
    await temporal?.stop().catch(() => undefined);
    await infra.close().catch(() => undefined);
    if (!values.keep) await rm(tmp, { recursive: true, force: true });
    else log(`kept ${tmp}`);
  }

  const end = machineInfo();
  const minutes = (Date.now() - started) / 60_000;
  const summary = `finished in ${minutes.toFixed(1)} min; load average at the end ${end.loadAvg.join(' / ')}`;
  console.log(`==== all tables ====\n${describeMachine(machine)}\ncommand: ${command}\n`);
  for (const t of tables) console.log(`${renderTable(t)}\n`);
  console.log(summary);
  const out = resolve(values.out!);
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify({ command, startedAt: new Date(started).toISOString(), minutes, machine, machineAtEnd: end, results, tables }, null, 2)}\n`);
  log(`results written to ${out}`);
}

/** One --scale-n entry: N, or N@S for N sources at an interval of S seconds. */
function scaleSize(entry: string): { n: number; intervalSeconds?: number } {
  const match = /^(\d+)(?:@(\d+))?$/.exec(entry.trim());
  if (!match) throw new Error(`--scale-n: '${entry}' is not N or N@SECONDS`);
  return { n: Number(match[1]), ...(match[2] !== undefined ? { intervalSeconds: Number(match[2]) } : {}) };
}

function medianSample(samples: Sample[]): Sample {
  const med = (k: keyof Sample) => {
    const v = samples.map((s) => s[k] as number).sort((a, b) => a - b);
    const m = v.length >> 1;
    return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
  };
  return { ms: med('ms'), bytesDown: med('bytesDown'), bytesUp: med('bytesUp'), requests: med('requests'), gitProcesses: med('gitProcesses'), otherProcesses: med('otherProcesses') };
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exit(1);
  },
);
