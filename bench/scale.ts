/**
 * 4. Scale on one worker: N ArenaSources (interval 1m) on a few repositories,
 *    one worker process (`node bin/arena-source.js worker`), our own Temporal dev
 *    server. Measures: time until all N are Ready after apply and the worker's
 *    peak memory (compared with Flux's published figures), then an unchanged
 *    steady state (CPU, RSS, Temporal actions and history events per source per
 *    hour, from a sample of workflow histories), then 10% of the sources changing
 *    per minute (the same, plus git traffic and how long a push takes to reach
 *    every source of its repository).
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { API_VERSION, KIND } from '../src/api/schema.js';
import { parseArenaSource } from '../src/api/validate.js';
import { applySource, connectClient } from '../src/client.js';
import { seedRepo } from '../src/dev/demo-git/repo.js';
import { workflowIdFor } from '../workflows/definitions.js';
import { scrapeCounter, startWorkerProcess, waitForPollers, type GitCounts, type GitInfra, type TemporalServer } from './lib/infra.js';
import { memory, ProcessMeter } from './lib/machine.js';
import { hexText, quickCommit } from './lib/repos.js';
import { fmtBytes, fmtMs, fmtNum, log, median, pool, sleep, type Table } from './lib/util.js';

export interface ScaleOptions {
  n: number;
  repos: number;
  steadySeconds: number;
  changeSeconds: number;
  cache: boolean;
  /** The worker's --max-cached-workflows; unset: the SDK's default. */
  cachedWorkflows?: number;
}

const NS = 'bench';
const FOLDERS = 10;
const HISTORY_SAMPLE = 20;

type Meter = ReturnType<ProcessMeter['stop']>;

export interface PhaseResult {
  name: string;
  seconds: number;
  worker: Meter;
  temporal: Meter;
  gitServer: Meter;
  git: GitCounts;
  cycles: { noop: number; fetched: number; failed: number };
  /** The worker's V8 heap (used) and memory outside it (ArrayBuffers, …) at the end of the phase, from its /metrics. */
  heapUsed: number;
  external: number;
  /** From the sampled workflow histories. */
  perCycle?: CycleStats;
  loadAvg: number[];
}

export interface ScaleResult {
  n: number;
  repos: number;
  cache: boolean;
  cachedWorkflows?: number;
  applySeconds: number;
  readySeconds: number;
  readyProgress: Array<{ seconds: number; ready: number }>;
  workerPeakBytes: number;
  /** Worker RSS once it polls, before any source exists. */
  workerIdleBytes: number;
  phases: PhaseResult[];
  historyLength: { median: number; max: number };
  propagation: Array<{ repo: string; sources: number; seconds: number | null }>;
  pushes: number;
  changedSources: number;
}

interface Ctx {
  tmp: string;
  infra: GitInfra;
  gitRoot: string;
}

export async function runScaleBench(ctx: Ctx, temporal: TemporalServer, opts: ScaleOptions): Promise<{ results: ScaleResult; tables: Table[] }> {
  const dataDir = await mkdtemp(join(ctx.tmp, 'scale-'));
  const taskQueue = `bench-scale-${randomUUID().slice(0, 8)}`;
  const perRepo = Math.ceil(opts.n / opts.repos);

  // Repositories: each with FOLDERS bundle folders of 5 files.
  const repos: Array<{ name: string; bare: string; url: string }> = [];
  for (let r = 0; r < opts.repos; r++) {
    const files: Record<string, string> = { 'README.md': '# scale\n' };
    for (let f = 0; f < FOLDERS; f++) {
      files[`b${f}/pack.json`] = JSON.stringify({ id: `b${f}`, version: '1' });
      for (let p = 0; p < 4; p++) files[`b${f}/prompts/p${p}.md`] = `# prompt ${p}\n${hexText(1024).toString()}\n`;
    }
    const name = `scale-${r}`;
    await seedRepo(ctx.gitRoot, name, files);
    repos.push({ name, bare: join(ctx.gitRoot, `${name}.git`), url: ctx.infra.url(name) });
  }
  const sources = Array.from({ length: opts.n }, (_, i) => ({
    name: `s${String(i).padStart(5, '0')}`,
    repo: i % opts.repos,
    path: `b${Math.floor(i / opts.repos) % FOLDERS}`,
  }));

  const worker = await startWorkerProcess({
    temporalAddress: temporal.address,
    taskQueue,
    dataDir,
    env: {
      ...(opts.cache ? {} : { ARENA_SOURCE_GIT_CACHE: 'off' }),
      ...(opts.cachedWorkflows !== undefined ? { ARENA_SOURCE_MAX_CACHED_WORKFLOWS: String(opts.cachedWorkflows) } : {}),
    },
  });
  const client = await connectClient({ address: temporal.address, namespace: 'default' });
  await waitForPollers(client, taskQueue);
  await sleep(2000);
  const workerIdleBytes = memory(worker.pid).rss;
  // (the git helper starts with the first git command)
  log(`scale: worker polling, RSS ${fmtBytes(workerIdleBytes)} before any source`);
  const phases: PhaseResult[] = [];
  const meters = () => ({ worker: new ProcessMeter(worker.pid, true), temporal: new ProcessMeter(temporal.pid), gitServer: new ProcessMeter(process.pid) });
  const cyclesNow = async () => ({
    noop: await scrapeCounter(worker.metricsUrl, 'arena_source_cycles_total', { result: 'noop' }),
    fetched: await scrapeCounter(worker.metricsUrl, 'arena_source_cycles_total', { result: 'fetched' }),
    failed: await scrapeCounter(worker.metricsUrl, 'arena_source_cycles_total', { result: 'failed' }),
  });
  const endPhase = async (name: string, m: ReturnType<typeof meters>, c0: Awaited<ReturnType<typeof cyclesNow>>, t0: number): Promise<PhaseResult> => {
    const c1 = await cyclesNow();
    const { loadavg } = await import('node:os');
    const phase: PhaseResult = {
      name,
      seconds: (Date.now() - t0) / 1000,
      worker: m.worker.stop(),
      temporal: m.temporal.stop(),
      gitServer: m.gitServer.stop(),
      git: ctx.infra.counts(),
      cycles: { noop: c1.noop - c0.noop, fetched: c1.fetched - c0.fetched, failed: c1.failed - c0.failed },
      heapUsed: await scrapeCounter(worker.metricsUrl, 'arena_source_process_nodejs_heap_size_used_bytes'),
      external: await scrapeCounter(worker.metricsUrl, 'arena_source_process_nodejs_external_memory_bytes'),
      loadAvg: loadavg().map((x) => Math.round(x * 100) / 100),
    };
    phases.push(phase);
    log(
      `scale ${name}: ${phase.seconds.toFixed(0)} s, worker CPU ${phase.worker.cpuPct.toFixed(0)}%, ` +
        `RSS ${fmtBytes(phase.worker.rssMax)} (V8 heap ${fmtBytes(phase.heapUsed)}, external ${fmtBytes(phase.external)}), cycles ${JSON.stringify(phase.cycles)}`,
    );
    return phase;
  };

  let result: ScaleResult;
  try {
    // A. Apply all N, wait until all are Ready.
    ctx.infra.reset();
    let m = meters();
    let c0 = await cyclesNow();
    const tApply = Date.now();
    await pool(sources, 32, async (s) => {
      const source = parseArenaSource({
        apiVersion: API_VERSION,
        kind: KIND,
        metadata: { name: s.name, namespace: NS },
        spec: { type: 'git', interval: '1m', git: { url: repos[s.repo]!.url, ref: { branch: 'main' }, path: s.path } },
      });
      await applySource(client, taskQueue, source);
    });
    const applySeconds = (Date.now() - tApply) / 1000;
    log(`scale: applied ${opts.n} sources in ${applySeconds.toFixed(1)} s`);
    const readyProgress: Array<{ seconds: number; ready: number }> = [];
    for (;;) {
      // Ready once: an artifact revision is published (a later cycle shows phase Fetching but keeps Ready=True).
      const ready = await count(client, `TaskQueue = '${taskQueue}' AND ArenaSourceRevision != ''`);
      const seconds = (Date.now() - tApply) / 1000;
      if (readyProgress.length === 0 || readyProgress.at(-1)!.ready !== ready) readyProgress.push({ seconds, ready });
      if (ready >= opts.n) break;
      if (seconds > 1800) throw new Error(`only ${ready}/${opts.n} Ready after 30 min`);
      if (readyProgress.length % 10 === 0) log(`scale: ${ready}/${opts.n} Ready after ${seconds.toFixed(0)} s`);
      await sleep(500);
    }
    const readySeconds = (Date.now() - tApply) / 1000;
    log(`scale: all ${opts.n} Ready after ${readySeconds.toFixed(1)} s`);
    await endPhase('apply → all Ready', m, c0, tApply);
    const workerPeakBytes = phases[0]!.worker.peak;

    // B. Unchanged sources.
    ctx.infra.reset();
    m = meters();
    c0 = await cyclesNow();
    const tSteady = Date.now();
    await sleep(opts.steadySeconds * 1000);
    const steady = await endPhase('steady, unchanged', m, c0, tSteady);
    const tSteadyEnd = Date.now();

    // C. 10% of the sources change per minute: pushes to whole repositories, round robin.
    const pushesPerMinute = (0.1 * opts.n) / perRepo;
    const every = 60_000 / pushesPerMinute;
    ctx.infra.reset();
    m = meters();
    c0 = await cyclesNow();
    const tChange = Date.now();
    const pushes: Array<{ repo: string; sha: string; at: number; done?: number }> = [];
    let changedSources = 0;
    const tracker = trackPropagation(client, taskQueue, pushes, perRepo);
    for (let k = 0; Date.now() - tChange < opts.changeSeconds * 1000; k++) {
      const due = tChange + k * every;
      if (due - tChange >= opts.changeSeconds * 1000) break;
      await sleep(Math.max(0, due - Date.now()));
      const repo = repos[k % repos.length]!;
      const folder = `b${k % FOLDERS}`;
      const sha = await quickCommit(repo.bare, { [`${folder}/prompts/p1.md`]: `# changed ${k}\n${hexText(1024).toString()}\n` });
      pushes.push({ repo: repo.name, sha, at: Date.now() });
      changedSources += sources.filter((s) => repos[s.repo] === repo).length;
    }
    await sleep(Math.max(0, tChange + opts.changeSeconds * 1000 - Date.now()));
    const change = await endPhase('10% of sources change per minute', m, c0, tChange);
    const tChangeEnd = Date.now();
    // Let the last pushes reach every source of their repository (at most one interval + jitter).
    const deadline = Date.now() + 90_000;
    while (pushes.some((p) => p.done === undefined) && Date.now() < deadline) await sleep(1000);
    tracker.stop();

    // Temporal actions and history events per source per hour, from a sample of histories.
    const sample = sources.filter((_, i) => i % Math.max(1, Math.floor(opts.n / HISTORY_SAMPLE)) === 0).slice(0, HISTORY_SAMPLE);
    const histories = await pool(sample, 8, (s) => client.workflow.getHandle(workflowIdFor({ namespace: NS, name: s.name })).fetchHistory());
    steady.perCycle = cycleStats(histories, tSteady, tSteadyEnd);
    change.perCycle = cycleStats(histories, tChange, tChangeEnd);
    const lengths = histories.map((h) => h.events?.length ?? 0);

    result = {
      n: opts.n,
      repos: opts.repos,
      cache: opts.cache,
      ...(opts.cachedWorkflows !== undefined ? { cachedWorkflows: opts.cachedWorkflows } : {}),
      applySeconds,
      readySeconds,
      readyProgress,
      workerPeakBytes,
      workerIdleBytes,
      phases,
      historyLength: { median: median(lengths), max: Math.max(...lengths) },
      propagation: pushes.map((p) => ({ repo: p.repo, sources: perRepo, seconds: p.done === undefined ? null : (p.done - p.at) / 1000 })),
      pushes: pushes.length,
      changedSources,
    };
  } finally {
    await worker.stop();
    await client.connection.close();
    await rm(dataDir, { recursive: true, force: true });
  }
  return { results: result, tables: scaleTables(result) };
}

async function count(client: Client, query: string): Promise<number> {
  return (await client.workflow.count(query)).count;
}

/** Polls visibility for every push until all sources of its repository report its revision. */
function trackPropagation(client: Client, taskQueue: string, pushes: Array<{ sha: string; at: number; done?: number }>, perRepo: number) {
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      for (const p of pushes) {
        if (p.done !== undefined) continue;
        const n = await count(client, `TaskQueue = '${taskQueue}' AND ArenaSourceRevision = 'main@sha1:${p.sha}'`).catch(() => 0);
        if (n >= perRepo) p.done = Date.now();
      }
      await sleep(1000);
    }
  })();
  return {
    stop: () => {
      stopped = true;
      return loop;
    },
  };
}

type History = Awaited<ReturnType<ReturnType<Client['workflow']['getHandle']>['fetchHistory']>>;
type HistoryEvent = NonNullable<History['events']>[number];

function eventMs(e: HistoryEvent): number {
  const t = e.eventTime;
  if (!t) return 0;
  return Number(String(t.seconds ?? 0)) * 1000 + Math.floor((t.nanos ?? 0) / 1e6);
}

/** What Temporal (Cloud) bills as an action, by kind; events that are not actions return undefined. */
function actionKind(e: HistoryEvent): string | undefined {
  if (e.activityTaskScheduledEventAttributes) return 'activities';
  if (e.timerStartedEventAttributes) return 'timers';
  if (e.workflowExecutionSignaledEventAttributes) return 'signals';
  if (e.upsertWorkflowSearchAttributesEventAttributes) return 'searchAttributes';
  if (e.workflowExecutionStartedEventAttributes || e.workflowExecutionContinuedAsNewEventAttributes) return 'runs';
  if (e.markerRecordedEventAttributes) return 'markers';
  return undefined;
}

export interface CycleStats {
  /** Cycles seen in the window (resolveRevision activities) across the sampled workflows. */
  cycles: number;
  /** Actions per cycle, by kind, and their total. */
  actions: Record<string, number> & { total: number };
  /** Activities per cycle, by type. */
  activities: Record<string, number>;
  events: number;
  /** At one cycle per minute (the interval; the ±5% jitter averages out). */
  actionsPerSourceHour: number;
  eventsPerSourceHour: number;
}

function cycleStats(histories: History[], from: number, to: number, intervalSeconds = 60): CycleStats {
  const kinds: Record<string, number> = { activities: 0, activityRetries: 0, timers: 0, signals: 0, searchAttributes: 0, runs: 0, markers: 0 };
  const activities: Record<string, number> = {};
  let events = 0;
  let cycles = 0;
  for (const h of histories) {
    for (const e of h.events ?? []) {
      const t = eventMs(e);
      if (t < from || t >= to) continue;
      events++;
      const kind = actionKind(e);
      if (kind) kinds[kind] = (kinds[kind] ?? 0) + 1;
      const type = e.activityTaskScheduledEventAttributes?.activityType?.name;
      if (type) {
        activities[type] = (activities[type] ?? 0) + 1;
        if (type === 'resolveRevision') cycles++;
      }
      const attempt = e.activityTaskStartedEventAttributes?.attempt ?? 1;
      if (attempt > 1) kinds.activityRetries = (kinds.activityRetries ?? 0) + attempt - 1;
    }
  }
  const per = (n: number) => (cycles ? n / cycles : NaN);
  const actions: Record<string, number> = {};
  let total = 0;
  for (const [k, v] of Object.entries(kinds)) {
    actions[k] = per(v);
    total += per(v);
  }
  const perHour = 3600 / intervalSeconds;
  return {
    cycles,
    actions: { ...actions, total },
    activities: Object.fromEntries(Object.entries(activities).map(([k, v]) => [k, per(v)])),
    events: per(events),
    actionsPerSourceHour: total * perHour,
    eventsPerSourceHour: per(events) * perHour,
  };
}

function scaleTables(r: ScaleResult): Table[] {
  const mib = (b: number) => fmtBytes(b);
  const pct = (x: number) => `${fmtNum(x, 0)}%`;
  const phaseRows = r.phases.map((p) => [
    p.name,
    `${fmtNum(p.seconds, 0)} s`,
    fmtNum(p.cycles.noop + p.cycles.fetched + p.cycles.failed),
    `${fmtNum(p.cycles.fetched)}/${fmtNum(p.cycles.failed)}`,
    pct(p.worker.cpuPct),
    `${mib(p.worker.rssAvg)} / ${mib(p.worker.rssMax)}`,
    pct(p.temporal.cpuPct),
    pct(p.gitServer.cpuPct),
    `${fmtNum(p.git.fetches)} / ${fmtNum(p.git.requests)}`,
    fmtBytes(p.git.bytesDown + p.git.bytesUp),
    p.perCycle ? fmtNum(p.perCycle.actions.total, 1) : '',
    p.perCycle ? fmtNum(p.perCycle.actionsPerSourceHour, 0) : '',
    p.perCycle ? fmtNum(p.perCycle.eventsPerSourceHour, 0) : '',
    p.loadAvg[0]!.toFixed(2),
  ]);
  const steady = r.phases.find((p) => p.name.startsWith('steady'));
  const done = r.propagation.map((p) => p.seconds).filter((s): s is number => s !== null);
  const notes = [
    `${r.n} sources (interval 1m, ±5% jitter) on ${r.repos} repositories (${Math.ceil(r.n / r.repos)} sources each, ${FOLDERS} bundle folders), one worker process (concurrency 20), git cache ${r.cache ? 'on' : 'off'}, workflow cache ${r.cachedWorkflows ?? 'SDK default'}`,
    'worker = the worker process and its git helper process: CPU in % of one core, git processes included; RSS average / max over the phase; Temporal = the dev server (in-memory); git server = the benchmark process (HTTP server + git http-backend children)',
    'git = upload-pack fetch requests / all HTTP requests the git server answered; actions and events per source per hour from ' +
      `${HISTORY_SAMPLE} sampled workflow histories (actions: activities scheduled + retries, timers, signals, search-attribute upserts, runs)`,
    `changes: ${r.pushes} pushes to whole repositories (${r.changedSources} source revisions changed); every source of the repository had the new revision after ` +
      (done.length ? `median ${fmtNum(median(done), 0)} s, max ${fmtNum(Math.max(...done), 0)} s` : 'n/a') +
      (done.length < r.propagation.length ? ` (${r.propagation.length - done.length} not within the wait)` : ''),
  ];
  if (steady?.perCycle) {
    const c = steady.perCycle;
    const acts = Object.entries(c.activities).map(([k, v]) => `${k} ${fmtNum(v, 2)}`).join(', ');
    notes.push(
      `steady no-op cycle (${c.cycles} sampled): ${fmtNum(c.actions.total, 2)} actions (activities: ${acts}; timers ${fmtNum(c.actions.timers ?? 0, 2)}; ` +
        `search-attribute upserts ${fmtNum(c.actions.searchAttributes ?? 0, 2)}; retries ${fmtNum(c.actions.activityRetries ?? 0, 2)}), ${fmtNum(c.events, 1)} history events; ` +
        `per source per hour at 1m: ${fmtNum(c.actionsPerSourceHour, 0)} actions, ${fmtNum(c.eventsPerSourceHour, 0)} events`,
      `history length of the sampled workflows at the end: median ${fmtNum(r.historyLength.median)} (max ${fmtNum(r.historyLength.max)}); continue-as-new at 5,000 events ≈ every ${fmtNum(5000 / c.eventsPerSourceHour, 1)} h at 1m`,
    );
  }
  return [
    {
      title: `4. Scale: ${r.n} sources on one worker process`,
      columns: ['phase', 'length', 'cycles', 'fetched/failed', 'worker CPU', 'worker RSS avg / max', 'Temporal CPU', 'git server CPU', 'git fetch / HTTP req', 'git traffic', 'actions/cycle', 'actions/src/h', 'events/src/h', 'load'],
      rows: phaseRows,
      notes,
    },
    {
      title: '4b. All Ready after apply, vs. Flux source-controller (published)',
      columns: ['what', 'arena-source (this run)', 'Flux'],
      rows: [
        [`time until all ${r.n} Ready after apply`, `${fmtNum(r.readySeconds, 1)} s (apply took ${fmtNum(r.applySeconds, 1)} s)`, '1,000 OCIRepositories Ready in 85 s'],
        ['peak memory of the worker process (VmHWM)', `${mib(r.workerPeakBytes)} (${mib(r.workerIdleBytes)} idle before any source)`, '67 MiB peak'],
        ['CPU', 'shared 2-core VM: worker, Temporal dev server and git server on the same cores', '1 CPU / 1 GiB limit'],
      ],
      notes: [
        `Ready progress: ${r.readyProgress.filter((_, i, a) => i % Math.ceil(a.length / 8) === 0 || i === a.length - 1).map((p) => `${p.ready} @ ${fmtMs(p.seconds * 1000)}`).join(', ')}`,
      ],
    },
  ];
}
