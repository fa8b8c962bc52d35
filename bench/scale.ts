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
import proto from '@temporalio/proto';
import { API_VERSION, KIND } from '../src/api/schema.js';
import { parseArenaSource } from '../src/api/validate.js';
import { applySource, connectClient } from '../src/client.js';
import { seedRepo } from '../src/dev/demo-git/repo.js';
import { workflowIdFor } from '../workflows/definitions.js';
import { localActivityOf } from '../src/temporal/history-activities.js';
import { scrapeCounter, scrapeSamples, startWorkerProcess, waitForPollers, type GitCounts, type GitInfra, type TemporalServer } from './lib/infra.js';
import { memory, ProcessMeter } from './lib/machine.js';
import { hexText, quickCommit } from './lib/repos.js';
import { fmtBytes, fmtMs, fmtNum, log, median, pool, sleep, type Table } from './lib/util.js';
import { optionDefault } from '../src/cli/options.js';
import { parseTtl } from '../src/store/retention.js';

export interface ScaleOptions {
  n: number;
  repos: number;
  steadySeconds: number;
  changeSeconds: number;
  cache: boolean;
  /** The worker's --max-cached-workflows; unset: the worker's default. */
  cachedWorkflows?: number;
  /** Run the worker in a memory cgroup with this limit (MiB), as in a pod: it sizes its cache and Node its heaps from it. */
  memoryLimitMiB?: number;
  /** The sources' interval, in seconds (default 60). */
  intervalSeconds?: number;
  /** Cycles per workflow run (WorkflowTuning.cyclesPerRun); unset: the workflow's default. */
  cyclesPerRun?: number;
  /** A label for this configuration in the tables. */
  label?: string;
}

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
  label: string;
  intervalSeconds: number;
  cyclesPerRun?: number;
  n: number;
  repos: number;
  cache: boolean;
  cachedWorkflows?: number;
  /** The worker ran in a memory cgroup with this limit (MiB). */
  memoryLimitMiB?: number;
  /**
   * The cache the worker chose: its bounds and why (arena_source_worker_cached_workflows_max), the size in
   * force at the end and how often it changed (arena_source_worker_cached_workflows, _cache_resizes_total).
   */
  workerCache?: string;
  /** The most its cgroup was charged (RSS and page cache), when it ran in one. */
  cgroupPeakBytes?: number;
  applySeconds: number;
  readySeconds: number;
  /** After all were Ready, how long until the worker's cache settled (see settleCache); 0: it was. */
  cacheSettleSeconds?: number;
  readyProgress: Array<{ seconds: number; ready: number }>;
  workerPeakBytes: number;
  /** The peak with the git helper's whole RSS added (its node binary's pages counted twice), as before session 15. */
  workerPeakSummedBytes?: number;
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
  const runId = randomUUID().slice(0, 8);
  const taskQueue = `bench-scale-${runId}`;
  // A namespace per run: workflow ids of an earlier run (same names) would otherwise be signalled instead of started.
  const NS = `scale-${runId}`;
  const perRepo = Math.ceil(opts.n / opts.repos);
  const intervalSeconds = opts.intervalSeconds ?? 60;
  const interval = specInterval(intervalSeconds);
  const tuning = opts.cyclesPerRun !== undefined ? { cyclesPerRun: opts.cyclesPerRun } : undefined;

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
    ...(opts.memoryLimitMiB ? { memoryLimitBytes: opts.memoryLimitMiB * 1024 * 1024 } : {}),
  });
  const client = await connectClient({ address: temporal.address, namespace: 'default' });
  await waitForPollers(client, taskQueue);
  await sleep(2000);
  const workerIdleBytes = memory(worker.pid).rss;
  const tPolling = Date.now();
  const [chosen] = await scrapeSamples(worker.metricsUrl, 'arena_source_worker_cached_workflows_max');
  const [initial] = await scrapeSamples(worker.metricsUrl, 'arena_source_worker_cached_workflows');
  const cacheBounds = chosen ? `${initial && initial.value !== chosen.value ? `${initial.value}–` : ''}${chosen.value} (${chosen.labels.from})` : undefined;
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
        spec: { type: 'git', interval, git: { url: repos[s.repo]!.url, ref: { branch: 'main' }, path: s.path } },
      });
      await applySource(client, taskQueue, source, tuning);
    });
    const applySeconds = (Date.now() - tApply) / 1000;
    log(`scale: applied ${opts.n} sources in ${applySeconds.toFixed(1)} s`);
    const readyProgress: Array<{ seconds: number; ready: number }> = [];
    for (;;) {
      // Ready once: an artifact revision is published (a later cycle shows phase Fetching but keeps Ready=True).
      const ready = await count(client, `TaskQueue = '${taskQueue}' AND ExecutionStatus = 'Running' AND ArenaSourceRevision != ''`);
      const seconds = (Date.now() - tApply) / 1000;
      if (readyProgress.length === 0 || readyProgress.at(-1)!.ready !== ready) readyProgress.push({ seconds, ready });
      if (ready >= opts.n) break;
      if (seconds > 1800) {
        log(`scale: only ${ready}/${opts.n} Ready after 30 min; measuring on`);
        break;
      }
      if (readyProgress.length % 10 === 0) log(`scale: ${ready}/${opts.n} Ready after ${seconds.toFixed(0)} s`);
      await sleep(500);
    }
    const readySeconds = (Date.now() - tApply) / 1000;
    log(`scale: all ${opts.n} Ready after ${readySeconds.toFixed(1)} s`);
    await endPhase('apply → all Ready', m, c0, tApply);

    // A'. The worker's cache settles: its first review has passed and, if it resized, one interval of
    // cycles since (a resize starts a new SDK worker, whose first cycle of each source replays it).
    ctx.infra.reset();
    m = meters();
    c0 = await cyclesNow();
    const tSettle = Date.now();
    const settled = await settleCache(worker.metricsUrl, tPolling, intervalSeconds);
    const cacheSettleSeconds = (Date.now() - tSettle) / 1000;
    if (settled.resizes > 0) await endPhase('workflow cache settling', m, c0, tSettle);
    log(`scale: workflow cache settled ${cacheSettleSeconds.toFixed(0)} s after all were Ready (${settled.resizes} resize(s))`);

    // B. Unchanged sources.
    ctx.infra.reset();
    m = meters();
    c0 = await cyclesNow();
    const tSteady = Date.now();
    await sleep(opts.steadySeconds * 1000);
    const steady = await endPhase('steady, unchanged', m, c0, tSteady);
    const tSteadyEnd = Date.now();

    // C. 10% of the sources change per minute: pushes to whole repositories, round robin.
    const tChange = Date.now();
    const pushes: Array<{ repo: string; sha: string; at: number; done?: number }> = [];
    let changedSources = 0;
    let change: PhaseResult | undefined;
    if (opts.changeSeconds > 0) {
    const pushesPerMinute = (0.1 * opts.n) / perRepo;
    const every = 60_000 / pushesPerMinute;
    ctx.infra.reset();
    m = meters();
    c0 = await cyclesNow();
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
    change = await endPhase('10% of sources change per minute', m, c0, tChange);
    // Let the last pushes reach every source of their repository (at most one interval + jitter).
    const deadline = Date.now() + 90_000;
    while (pushes.some((p) => p.done === undefined) && Date.now() < deadline) await sleep(1000);
    await tracker.stop();
    }
    const tChangeEnd = Date.now();

    // Temporal actions and history events per cycle, from a sample of histories (every run since the apply).
    const sample = sources.filter((_, i) => i % Math.max(1, Math.floor(opts.n / HISTORY_SAMPLE)) === 0).slice(0, HISTORY_SAMPLE);
    const runs = await pool(sample, 4, (s) => runsSince(client, workflowIdFor({ namespace: NS, name: s.name }), tApply));
    steady.perCycle = cycleStats(runs, tSteady, tSteadyEnd, intervalSeconds);
    if (change) change.perCycle = cycleStats(runs, tChange, tChangeEnd, intervalSeconds);
    const lengths = runs.map((r) => r.at(-1)?.events?.length ?? 0);
    const cgroupPeakBytes = await worker.cgroupPeakBytes?.();
    const workerCache = cacheBounds && `${cacheBounds}${await cacheAtTheEnd(worker.metricsUrl)}`;

    result = {
      label: opts.label ?? `${opts.n} sources`,
      intervalSeconds,
      ...(opts.cyclesPerRun !== undefined ? { cyclesPerRun: opts.cyclesPerRun } : {}),
      n: opts.n,
      repos: opts.repos,
      cache: opts.cache,
      ...(opts.cachedWorkflows !== undefined ? { cachedWorkflows: opts.cachedWorkflows } : {}),
      ...(opts.memoryLimitMiB ? { memoryLimitMiB: opts.memoryLimitMiB } : {}),
      ...(workerCache ? { workerCache } : {}),
      ...(cgroupPeakBytes !== undefined ? { cgroupPeakBytes } : {}),
      applySeconds,
      readySeconds,
      cacheSettleSeconds,
      readyProgress,
      // VmHWM only grows: the last phase's is the whole run's peak (the helper's, its peak less its file pages).
      workerPeakBytes: Math.max(...phases.map((p) => p.worker.peak)),
      workerPeakSummedBytes: Math.max(...phases.map((p) => p.worker.peakSummed)),
      workerIdleBytes,
      phases,
      historyLength: { median: median(lengths), max: Math.max(...lengths) },
      propagation: pushes.map((p) => ({ repo: p.repo, sources: perRepo, seconds: p.done === undefined ? null : (p.done - p.at) / 1000 })),
      pushes: pushes.length,
      changedSources,
    };
  } finally {
    await worker.stop();
    // Stop this run's workflows, so they do not load the server during the next run.
    const ids: string[] = [];
    for await (const wf of client.workflow.list({ query: `TaskQueue = '${taskQueue}' AND ExecutionStatus = 'Running'` })) ids.push(wf.workflowId);
    await pool(ids, 16, (id) => client.workflow.getHandle(id).terminate('benchmark run finished').catch(() => undefined));
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
        const n = await count(client, `TaskQueue = '${taskQueue}' AND ExecutionStatus = 'Running' AND ArenaSourceRevision = 'main@sha1:${p.sha}'`).catch(() => 0);
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

/** The workflow's runs that started at or after `since` and the one running then, oldest first. */
async function runsSince(client: Client, workflowId: string, since: number): Promise<History[]> {
  const runs: History[] = [];
  let runId: string | undefined;
  for (let i = 0; i < 1000; i++) {
    const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    runs.unshift(history);
    const first = history.events?.[0];
    runId = first?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId ?? undefined;
    if (!runId || eventMs(first!) < since) break;
  }
  return runs;
}

function eventMs(e: HistoryEvent): number {
  const t = e.eventTime;
  if (!t) return 0;
  return Number(String(t.seconds ?? 0)) * 1000 + Math.floor((t.nanos ?? 0) / 1e6);
}

/** What Temporal (Cloud) bills as an action, by kind; events that are not actions return undefined. */
/** The activity an event schedules (remote) or records (a local activity's marker). */
function activityType(e: HistoryEvent): string | undefined {
  return e.activityTaskScheduledEventAttributes?.activityType?.name ?? localActivityOf(e)?.type;
}

function actionKind(e: HistoryEvent): string | undefined {
  // A local activity is billed as an action (one per workflow task, at most): counted as an activity.
  if (e.activityTaskScheduledEventAttributes || localActivityOf(e)) return 'activities';
  if (e.timerStartedEventAttributes) return 'timers';
  if (e.workflowExecutionSignaledEventAttributes) return 'signals';
  if (e.upsertWorkflowSearchAttributesEventAttributes) return 'searchAttributes';
  // A run is one action, started by the client or by continue-as-new (its ContinuedAsNew event is not another).
  if (e.workflowExecutionStartedEventAttributes) return 'runs';
  if (e.markerRecordedEventAttributes) return 'markers';
  return undefined;
}

export interface KindStats {
  /** Cycles of this kind seen in the window across the sampled workflows. */
  cycles: number;
  /** Actions per cycle, by kind, and their total. */
  actions: Record<string, number> & { total: number };
  /** Activities per cycle, by type. */
  activities: Record<string, number>;
  events: number;
  /** History bytes per cycle (the events, encoded): what the server stores and a replay reads. */
  bytes: number;
}

export interface CycleStats {
  /** Cycles seen in the window (resolveRevision activities) across the sampled workflows. */
  cycles: number;
  /** All cycles of the window together (what a source costs in this phase). */
  actions: Record<string, number> & { total: number };
  activities: Record<string, number>;
  events: number;
  /** Cycles that found nothing new, and cycles that fetched: each with its share of run starts. */
  unchanged: KindStats;
  changed: KindStats;
  actionsPerSourceHour: number;
  eventsPerSourceHour: number;
}

/**
 * A cycle is everything from one resolveRevision to the next (its activities, the timer, the
 * workflow tasks, a continue-as-new and the next run's start when one falls in between);
 * it "changed" when it fetched. Only events inside [from, to) count.
 */
function cycleStats(runs: History[][], from: number, to: number, intervalSeconds = 60): CycleStats {
  type Acc = { cycles: number; kinds: Record<string, number>; activities: Record<string, number>; events: number; bytes: number };
  const acc = (): Acc => ({ cycles: 0, kinds: { activities: 0, activityRetries: 0, timers: 0, signals: 0, searchAttributes: 0, runs: 0, markers: 0 }, activities: {}, events: 0, bytes: 0 });
  const total = acc();
  const byKind = { unchanged: acc(), changed: acc() };
  for (const workflowRuns of runs) {
    // Split the whole history into cycles at each resolveRevision; a cycle counts when it starts in the window.
    let current: HistoryEvent[] | undefined;
    const all: HistoryEvent[][] = [];
    for (const e of workflowRuns.flatMap((h) => h.events ?? [])) {
      if (activityType(e) === 'resolveRevision') all.push((current = []));
      current?.push(e);
    }
    // The last one is still running: drop it.
    all.pop();
    const cycles = all.filter((c) => {
      const t = eventMs(c[0]!);
      return t >= from && t < to;
    });
    for (const cycle of cycles) {
      // The fetch: a remote activity, or a local one where the workflow's worker fetched (fetchSourceHere).
      const fetched = cycle.some((e) => activityType(e) === 'fetchSource' || activityType(e) === 'fetchSourceHere');
      for (const a of [total, fetched ? byKind.changed : byKind.unchanged]) {
        a.cycles++;
        for (const e of cycle) {
          a.events++;
          a.bytes += proto.temporal.api.history.v1.HistoryEvent.encode(e).finish().length;
          const kind = actionKind(e);
          if (kind) a.kinds[kind] = (a.kinds[kind] ?? 0) + 1;
          const type = activityType(e);
          if (type) a.activities[type] = (a.activities[type] ?? 0) + 1;
          const attempt = e.activityTaskStartedEventAttributes?.attempt ?? 1;
          if (attempt > 1) a.kinds.activityRetries = (a.kinds.activityRetries ?? 0) + attempt - 1;
        }
      }
    }
  }
  const stats = (a: Acc): KindStats => {
    const per = (n: number) => (a.cycles ? n / a.cycles : NaN);
    const actions: Record<string, number> = {};
    let total = 0;
    for (const [k, v] of Object.entries(a.kinds)) {
      actions[k] = per(v);
      total += per(v);
    }
    return {
      cycles: a.cycles,
      actions: { ...actions, total },
      activities: Object.fromEntries(Object.entries(a.activities).map(([k, v]) => [k, per(v)])),
      events: per(a.events),
      bytes: per(a.bytes),
    };
  };
  const overall = stats(total);
  const perHour = 3600 / intervalSeconds;
  return {
    ...overall,
    unchanged: stats(byKind.unchanged),
    changed: stats(byKind.changed),
    actionsPerSourceHour: overall.actions.total * perHour,
    eventsPerSourceHour: overall.events * perHour,
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
    `${r.label}: ${r.n} sources (interval ${specInterval(r.intervalSeconds)}, ±5% jitter) on ${r.repos} repositories (${Math.ceil(r.n / r.repos)} sources each, ${FOLDERS} bundle folders), one worker process (role all, concurrency 20), git cache ${r.cache ? 'on' : 'off'}, workflow cache ${r.cachedWorkflows ?? r.workerCache ?? "the worker's default"}${r.memoryLimitMiB ? `, in a ${r.memoryLimitMiB} MiB memory cgroup (as a pod's limit; the cgroup's own peak, page cache included: ${r.cgroupPeakBytes !== undefined ? fmtBytes(r.cgroupPeakBytes) : 'n/a'})` : ''}, cycles per run ${r.cyclesPerRun ?? "the workflow's default"}${r.cacheSettleSeconds ? `; the steady phase began ${fmtNum(r.cacheSettleSeconds, 0)} s after all were Ready, once the worker's cache had settled` : ''}`,
    'worker = the worker process and its git helper process: CPU in % of one core, git processes included; RSS average / max over the phase (the helper by its private memory); Temporal = the dev server (in-memory); git server = the benchmark process (HTTP server + git http-backend children)',
    'git = upload-pack fetch requests / all HTTP requests the git server answered; actions and events per source per hour from ' +
      `${HISTORY_SAMPLE} sampled workflow histories (actions: activities scheduled + retries, timers, signals, search-attribute upserts, runs)`,
    `changes: ${r.pushes} pushes to whole repositories (${r.changedSources} source revisions changed); every source of the repository had the new revision after ` +
      (done.length ? `median ${fmtNum(median(done), 0)} s, max ${fmtNum(Math.max(...done), 0)} s` : 'n/a') +
      (done.length < r.propagation.length ? ` (${r.propagation.length - done.length} not within the wait)` : ''),
  ];
  const kinds = r.phases.flatMap((p) =>
    p.perCycle
      ? (['unchanged', 'changed'] as const)
          .filter((k) => p.perCycle![k].cycles > 0)
          .map((k) => {
            const c = p.perCycle![k];
            const acts = Object.entries(c.activities).map(([a, v]) => `${a} ${fmtNum(v, 2)}`).join(', ');
            return [
              `${k} (${p.name})`,
              fmtNum(c.cycles),
              fmtNum(c.actions.total, 2),
              `${fmtNum(c.actions.activities ?? 0, 2)} + ${fmtNum(c.actions.activityRetries ?? 0, 2)}`,
              fmtNum(c.actions.timers ?? 0, 2),
              fmtNum(c.actions.searchAttributes ?? 0, 2),
              fmtNum(c.actions.runs ?? 0, 3),
              fmtNum(c.actions.markers ?? 0, 3),
              fmtNum(c.events, 1),
              fmtBytes(c.bytes),
              acts,
              p.loadAvg[0]!.toFixed(2),
            ];
          })
      : [],
  );
  const unchanged = steady?.perCycle?.unchanged;
  const month = 30 * 24 * 3600;
  const perMonth = unchanged
    ? [60, 300, 3600].map((sec) => [
        sec < 3600 ? `${sec / 60}m` : `${sec / 3600}h`,
        fmtNum(month / sec),
        fmtNum(unchanged.actions.total, 2),
        fmtNum((month / sec) * unchanged.actions.total),
        fmtNum((month / sec) * unchanged.events),
        fmtBytes((month / sec) * unchanged.bytes),
      ])
    : [];
  notes.push(`history length of the sampled workflows' current runs at the end: median ${fmtNum(r.historyLength.median)} (max ${fmtNum(r.historyLength.max)})`);
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
        `load average at the end of the apply phase: ${r.phases[0]?.loadAvg.join(' / ')}`,
        `Ready progress: ${r.readyProgress.filter((_, i, a) => i % Math.ceil(a.length / 8) === 0 || i === a.length - 1).map((p) => `${p.ready} @ ${fmtMs(p.seconds * 1000)}`).join(', ')}`,
      ],
    },
    {
      title: '4c. Temporal actions and history events per cycle (sampled workflows)',
      columns: ['cycles', 'sampled', 'actions', 'activities + retries', 'timers', 'SA upserts', 'run starts', 'markers', 'events', 'history bytes', 'activities by type', 'load'],
      rows: kinds,
      notes: [
        'a cycle runs from one resolveRevision to the next: its activities, the timer, and a continue-as-new with the next run\'s start when one falls there (amortised over the run\'s cycles); markers (patch markers) are counted as actions here',
      ],
    },
    {
      title: '4d. Actions per source per month (30 days) of an unchanged source, from the steady phase',
      columns: ['interval', 'cycles/month', 'actions/cycle', 'actions/month', 'history events/month', 'history bytes/month'],
      rows: perMonth,
      notes: ['actions per cycle do not depend on the interval (a run is a fixed number of cycles); a changed cycle adds the fetch, pack, upload and status writes (4c)'],
    },
  ];
}

/** An interval as a spec writes it: 600 → "10m", 30 → "30s". */
export function specInterval(seconds: number): string {
  return seconds % 60 === 0 ? `${seconds / 60}m` : `${seconds}s`;
}

/** What a configuration sets beyond the worker's and the workflow's defaults, for its label. */
export function settingsOf(r: { cachedWorkflows?: number; cyclesPerRun?: number }): string[] {
  return [r.cachedWorkflows !== undefined ? `${r.cachedWorkflows} cached` : '', r.cyclesPerRun !== undefined ? `${r.cyclesPerRun} cycles per run` : ''].filter(Boolean);
}

/** One row per configuration, and the marginal memory per source between the smallest and largest N of each workload. */
export function scaleSummary(runs: ScaleResult[]): Table {
  const steadyOf = (r: ScaleResult) => r.phases.find((p) => p.name.startsWith('steady'));
  const rows = runs.map((r) => {
    const s = steadyOf(r);
    return [
      r.label,
      `${fmtNum(r.readySeconds, 0)} s`,
      fmtBytes(r.workerIdleBytes),
      fmtBytes(r.workerPeakBytes),
      s ? fmtBytes(s.worker.rssMax) : '',
      s ? `${fmtNum(s.worker.cpuPct, 0)}%` : '',
      fmtNum(r.phases.reduce((n, p) => n + p.cycles.failed, 0)),
      s?.perCycle ? fmtNum(s.perCycle.unchanged.actions.total, 2) : '',
      s?.perCycle ? fmtNum(s.perCycle.unchanged.events, 1) : '',
      r.phases.map((p) => p.loadAvg[0]!.toFixed(1)).join(' / '),
    ];
  });
  // Between sizes of one workload only: the same interval, cache and run length (a size given its own
  // interval, N@S, or a fixed cache is another workload).
  const workloads = new Map<string, ScaleResult[]>();
  for (const r of runs) {
    const key = `${r.intervalSeconds}|${r.cachedWorkflows ?? ''}|${r.cyclesPerRun ?? ''}`;
    workloads.set(key, [...(workloads.get(key) ?? []), r]);
  }
  const notes: string[] = [];
  for (const same of workloads.values()) {
    if (same.length < 2) continue;
    same.sort((a, b) => a.n - b.n);
    const lo = same[0]!;
    const hi = same.at(-1)!;
    const per = (a: number, b: number) => fmtBytes((b - a) / (hi.n - lo.n));
    const set = settingsOf(lo);
    const which = set.length ? ` (${set.join(', ')})` : '';
    notes.push(
      `marginal memory per source${which}, (RSS at ${hi.n} − RSS at ${lo.n}) / ${hi.n - lo.n}: steady-phase max ${per(steadyOf(lo)!.worker.rssMax, steadyOf(hi)!.worker.rssMax)}, ` +
        `peak (VmHWM) ${per(lo.workerPeakBytes, hi.workerPeakBytes)}`,
    );
  }
  notes.push(
    "RSS = the worker's, plus its git helper's private memory (the helper's node binary and libraries are the worker's pages too); " +
      'with the helper\'s whole RSS added, as before session 15: ' +
      runs.map((r) => `${r.label} peak ${r.workerPeakSummedBytes ? fmtBytes(r.workerPeakSummedBytes) : '–'}, steady max ${steadyOf(r) ? fmtBytes(steadyOf(r)!.worker.rssMaxSummed) : '–'}`).join('; '),
  );
  notes.push('load = 1-minute load average at the end of each phase (apply / cache settling, where the cache resized / steady / changes); the machine is shared');
  return {
    title: '4e. Scale summary: memory, CPU and actions by configuration',
    columns: ['configuration', 'all Ready after', 'RSS idle', 'RSS peak', 'RSS steady max', 'steady CPU', 'failed cycles', 'actions/unchanged cycle', 'events/unchanged cycle', 'load'],
    rows,
    notes,
  };
}

/** The cache size in force when the run ended, and its resizes (the worker's adaptive cache). */
async function cacheAtTheEnd(metricsUrl: string): Promise<string> {
  const [now] = await scrapeSamples(metricsUrl, 'arena_source_worker_cached_workflows');
  const resizes = await scrapeSamples(metricsUrl, 'arena_source_worker_cache_resizes_total');
  const count = (direction: string) => resizes.find((r) => r.labels.direction === direction)?.value ?? 0;
  return now ? `, ${now.value} at the end (grown ${count('grow')}×, shrunk ${count('shrink')}×)` : '';
}

/** The worker's default --cache-review-interval (the benchmark does not set it). */
const CACHE_REVIEW_SECONDS = parseTtl(String(optionDefault('--cache-review-interval'))) / 1000;

/**
 * Waits until the worker's workflow cache is steady: its first review is past (a review interval after
 * it started polling) and no resize in the last interval of the sources (±5% jitter) and review.
 */
async function settleCache(metricsUrl: string, tPolling: number, intervalSeconds: number): Promise<{ resizes: number }> {
  const resizesNow = async () => (await scrapeSamples(metricsUrl, 'arena_source_worker_cache_resizes_total')).reduce((n, s) => n + s.value, 0);
  let resizes = await resizesNow();
  let lastResizeAt = resizes > 0 ? Date.now() : undefined;
  const quietMs = (intervalSeconds * 1.05 + 5) * 1000;
  for (const deadline = Date.now() + 30 * 60_000; Date.now() < deadline; await sleep(2000)) {
    const n = await resizesNow();
    if (n !== resizes) [resizes, lastResizeAt] = [n, Date.now()];
    const reviewed = Date.now() - tPolling >= (CACHE_REVIEW_SECONDS + 5) * 1000;
    if (reviewed && (lastResizeAt === undefined || Date.now() - lastResizeAt >= quietMs)) break;
  }
  return { resizes };
}
