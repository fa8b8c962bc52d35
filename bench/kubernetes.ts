/**
 * 10. Cluster mode, side by side with Flux (`--kubernetes`): one kube-apiserver + etcd (as
 *    the tests start them), one git server (uploadpack.allowFilter on, through the counting
 *    proxy) and, in turn:
 *      - Flux's source-controller v1.9.1 (bench/flux/build.sh) with N GitRepositories;
 *      - arena-source: `controller` + W × `worker --kubernetes` + a Temporal dev server,
 *        with N ArenaSources;
 *    on one repository, each object naming one of its folders (Flux: sparseCheckout), interval
 *    5m. Per system and N: apply → all Ready, peak and steady RSS per process, CPU seconds,
 *    git bytes, API requests (kube-apiserver's apiserver_request_total, less the bench's own),
 *    then delete → all gone. Each system and N gets fresh processes; the other system is
 *    stopped meanwhile. The machine's load average is recorded with every row.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile } from 'node:fs/promises';
import { homedir, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { seedRepo } from '../src/dev/demo-git/repo.js';
import { startKube, type Kube } from '../test/helpers/kube.js';
import { cleanups, freePort, startTemporal, startWorkerProcess, stopChild, type GitInfra, type TemporalServer } from './lib/infra.js';
import { cpuSeconds, nodeChildren, ProcessMeter } from './lib/machine.js';
import { IMAGE_ENV } from './lib/image-env.js';
import { hexText } from './lib/repos.js';
import { fmtBytes, fmtNum, log, pool, sleep, type Table } from './lib/util.js';

export interface KubeBenchOptions {
  sizes: number[];
  workers: number;
  interval: string;
  steadySeconds: number;
  systems: Array<'flux' | 'arena'>;
  fluxArgs: string[];
  /** MiB of a file outside the bundle folders (default 0). */
  blobMiB: number;
}

type System = 'flux' | 'arena';

interface ProcMeasure {
  name: string;
  /** apply → all Ready. */
  peakBytes: number;
  /** From the deletion of all N until all are gone (absent in results of older runs). */
  deletePeakBytes?: number;
  steadyBytes: number;
  cpuSeconds: number;
}

export interface KubeRun {
  system: System;
  n: number;
  applySeconds: number;
  readySeconds: number;
  deleteSeconds: number;
  stuck: number;
  processes: ProcMeasure[];
  gitBytesDown: number;
  gitRequests: number;
  apiRequests: number;
  apiRequestsSteady: number;
  loadAvg: number[];
}

interface Ctx {
  tmp: string;
  infra: GitInfra;
  gitRoot: string;
}

const FOLDERS = 10;
const ARENA_NS = 'arena';
const FLUX_NS = 'flux';
const BIN_DIR = join(homedir(), '.cache', 'arena-source', 'bin');
const ARENA_BASE = `/apis/omnia.altairalabs.ai/v1alpha1/namespaces/${ARENA_NS}/arenasources`;
const FLUX_BASE = `/apis/source.toolkit.fluxcd.io/v1/namespaces/${FLUX_NS}/gitrepositories`;

export async function runKubernetesBench(ctx: Ctx, opts: KubeBenchOptions): Promise<{ results: KubeRun[]; tables: Table[] }> {
  const fluxBin = join(BIN_DIR, 'flux-source-controller');
  if (opts.systems.includes('flux') && !existsSync(fluxBin)) {
    throw new Error(`${fluxBin} is missing: build it with \`bash scripts/ensure-tools.sh bench\` (bench/flux/build.sh)`);
  }
  const kube = await startKube({ authorizationMode: 'AlwaysAllow' });
  cleanups.add(kube.close);
  let ours = 0;
  const request: Kube['request'] = (...args) => {
    ours++;
    return kube.request(...args);
  };
  try {
    await applyCrds(request, opts.systems);
    for (const ns of [ARENA_NS, FLUX_NS]) await request('POST', '/api/v1/namespaces', { metadata: { name: ns } });
    const files: Record<string, string> = { 'README.md': '# cluster bench\n' };
    for (let f = 0; f < FOLDERS; f++) {
      files[`b${f}/pack.json`] = JSON.stringify({ id: `b${f}`, version: '1' });
      for (let p = 0; p < 4; p++) files[`b${f}/prompts/p${p}.md`] = `# prompt ${p}\n${hexText(1024).toString()}\n`;
    }
    // Optionally a large file outside the folders: what a whole-repository fetch (Flux) pays and a
    // partial fetch of one folder (arena-source) does not. Off by default: the bundles alone.
    if (opts.blobMiB > 0) files['assets/blob.bin'] = hexText(opts.blobMiB * 1024 * 1024).toString();
    await seedRepo(ctx.gitRoot, 'cluster', files);
    const url = ctx.infra.url('cluster');

    const results: KubeRun[] = [];
    for (const n of opts.sizes) {
      for (const system of opts.systems) {
        log(`cluster: ${system}, N=${n}`);
        const run = await runOne(ctx, kube, request, () => ours, system, n, url, opts);
        results.push(run);
        log(
          `cluster: ${system} N=${n}: Ready in ${run.readySeconds.toFixed(1)} s, ` +
            run.processes.map((p) => `${p.name} peak ${fmtBytes(p.peakBytes)}`).join(', ') +
            `, git ${fmtBytes(run.gitBytesDown)}, API ${run.apiRequests}, stuck ${run.stuck}, load ${run.loadAvg.join('/')}`,
        );
      }
    }
    return { results, tables: tablesOf(results, opts) };
  } finally {
    cleanups.delete(kube.close);
    await kube.close();
  }
}

async function applyCrds(request: Kube['request'], systems: System[]): Promise<void> {
  const paths = ['deploy/crds/omnia.altairalabs.ai_arenasources.yaml'];
  if (systems.includes('flux')) {
    const dir = join(BIN_DIR, 'flux-crds');
    for (const f of (await readdir(dir)).filter((f) => f.endsWith('.yaml'))) paths.push(join(dir, f));
  }
  const names: string[] = [];
  for (const path of paths) {
    for (const doc of parseAllDocuments(await readFile(path, 'utf8')).map((d) => d.toJS())) {
      if (doc?.kind !== 'CustomResourceDefinition') continue;
      const res = await request('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', doc);
      if (res.status !== 201) throw new Error(`CRD ${doc.metadata.name}: ${res.status} ${res.text.slice(0, 300)}`);
      names.push(doc.metadata.name);
    }
  }
  for (const name of names) {
    for (let i = 0; ; i++) {
      const res = await request('GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
      if ((res.body?.status?.conditions ?? []).some((c: any) => c.type === 'Established' && c.status === 'True')) break;
      if (i > 300) throw new Error(`CRD ${name} not established`);
      await sleep(200);
    }
  }
  await sleep(2_000); // discovery catches up with the new groups
}

interface Running {
  procs: Array<{ name: string; pid: number; helpers: boolean }>;
  stop(): Promise<void>;
}

async function runOne(
  ctx: Ctx,
  kube: Kube,
  request: Kube['request'],
  ourCount: () => number,
  system: System,
  n: number,
  url: string,
  opts: KubeBenchOptions,
): Promise<KubeRun> {
  const dir = await mkdtemp(join(ctx.tmp, `${system}-${n}-`));
  const running = system === 'flux' ? await startFlux(kube, dir, opts.fluxArgs) : await startArena(kube, dir, opts.workers);
  const names = Array.from({ length: n }, (_, i) => `s${String(i).padStart(5, '0')}`);
  const base = system === 'flux' ? FLUX_BASE : ARENA_BASE;
  const body = (name: string, i: number) => {
    const path = `b${i % FOLDERS}`;
    return system === 'flux'
      ? {
          apiVersion: 'source.toolkit.fluxcd.io/v1',
          kind: 'GitRepository',
          metadata: { name, namespace: FLUX_NS },
          spec: { url, interval: opts.interval, ref: { branch: 'main' }, sparseCheckout: [path] },
        }
      : {
          apiVersion: 'omnia.altairalabs.ai/v1alpha1',
          kind: 'ArenaSource',
          metadata: { name, namespace: ARENA_NS },
          spec: { type: 'git', interval: opts.interval, git: { url, ref: { branch: 'main' }, path } },
        };
  };
  const isReady = (o: any) =>
    system === 'flux'
      ? (o.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True') && o.status?.artifact
      : o.status?.phase === 'Ready';

  try {
    await sleep(3_000); // settle: informers synced, pollers polling
    ctx.infra.reset();
    const api0 = await apiRequests(kube);
    const ours0 = ourCount();
    const cpu0 = running.procs.map((p) => cpuOf(p.pid, p.helpers));
    const meters = running.procs.map((p) => new ProcessMeter(p.pid, p.helpers, 500));
    const t0 = performance.now();
    await pool(names, 16, async (name, i) => {
      const res = await request('POST', base, body(name, i));
      if (res.status !== 201) throw new Error(`create ${name}: ${res.status} ${res.text.slice(0, 300)}`);
    });
    const applySeconds = (performance.now() - t0) / 1000;
    let readySeconds = NaN;
    for (;;) {
      const items = ((await request('GET', base)).body?.items ?? []) as any[];
      const ready = items.filter(isReady).length;
      if (ready === n) {
        readySeconds = (performance.now() - t0) / 1000;
        break;
      }
      if (performance.now() - t0 > 30 * 60_000) throw new Error(`${system}: ${ready}/${n} Ready after 30 min`);
      await sleep(500);
    }
    const peaks = meters.map((m) => m.stop());
    const gitAfterReady = ctx.infra.counts();
    const apiReady = (await apiRequests(kube)) - api0 - (ourCount() - ours0);

    // Steady state: nothing changes; what the processes hold and what they ask the API server.
    const apiSteady0 = await apiRequests(kube);
    const oursSteady0 = ourCount();
    const steadyMeters = running.procs.map((p) => new ProcessMeter(p.pid, p.helpers, 1000));
    await sleep(opts.steadySeconds * 1000);
    const steady = steadyMeters.map((m) => m.stop());
    const apiRequestsSteady = (await apiRequests(kube)) - apiSteady0 - (ourCount() - oursSteady0);
    const cpu1 = running.procs.map((p) => cpuOf(p.pid, p.helpers));

    // Delete everything: every object must go (finalizers released).
    const deleteMeters = running.procs.map((p) => new ProcessMeter(p.pid, p.helpers, 500));
    const d0 = performance.now();
    await pool(names, 32, async (name) => void (await request('DELETE', `${base}/${name}`)));
    let left = n;
    for (;;) {
      left = (((await request('GET', base)).body?.items ?? []) as any[]).length;
      if (left === 0 || performance.now() - d0 > 5 * 60_000) break;
      await sleep(500);
    }
    const deleteSeconds = (performance.now() - d0) / 1000;
    // VmHWM never falls, so only a sampled RSS above the apply's peak tells of the deletion's own.
    const deletePeaks = deleteMeters.map((m) => m.stop());
    if (left > 0) {
      // Leave the namespace clean for the next run whatever happened: strip the finalizers.
      for (const o of ((await request('GET', base)).body?.items ?? []) as any[]) {
        await request('PATCH', `${base}/${o.metadata.name}`, { metadata: { finalizers: null } }, 'application/merge-patch+json');
      }
    }
    return {
      system,
      n,
      applySeconds,
      readySeconds,
      deleteSeconds,
      stuck: left,
      processes: running.procs.map((p, i) => ({
        name: p.name,
        peakBytes: Math.max(peaks[i]!.peak, peaks[i]!.rssMax),
        deletePeakBytes: deletePeaks[i]!.rssMax,
        steadyBytes: steady[i]!.rssAvg,
        cpuSeconds: cpu1[i]! - cpu0[i]!,
      })),
      gitBytesDown: gitAfterReady.bytesDown,
      gitRequests: gitAfterReady.requests,
      apiRequests: apiReady,
      apiRequestsSteady,
      loadAvg: loadavg().map((x) => Math.round(x * 100) / 100),
    };
  } finally {
    await running.stop();
  }
}

function cpuOf(pid: number, helpers: boolean): number {
  try {
    const own = cpuSeconds(pid);
    let total = own.self + own.children;
    if (helpers) {
      // The worker's git helper is a node child; ProcessMeter finds them the same way.
      for (const p of nodeChildren(pid)) {
        const c = cpuSeconds(p);
        total += c.self + c.children;
      }
    }
    return total;
  } catch {
    return NaN;
  }
}

/** Every request kube-apiserver counted so far (all verbs, resources and codes). */
async function apiRequests(kube: Kube): Promise<number> {
  const text = (await kube.request('GET', '/metrics')).text;
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('apiserver_request_total{')) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

async function startFlux(kube: Kube, dir: string, extra: string[]): Promise<Running> {
  const storage = await freePort();
  const args = [
    `--storage-path=${join(dir, 'storage')}`,
    `--storage-addr=127.0.0.1:${storage}`,
    `--storage-adv-addr=127.0.0.1:${storage}`,
    `--metrics-addr=127.0.0.1:${await freePort()}`,
    `--health-addr=127.0.0.1:${await freePort()}`,
    '--events-addr=',
    '--log-level=error',
    ...extra,
  ];
  await mkdir(join(dir, 'storage'), { recursive: true });
  const child = spawnLogged(join(BIN_DIR, 'flux-source-controller'), args, { KUBECONFIG: kube.kubeconfigPath, HOME: dir }, join(dir, 'flux.log'));
  await sleep(3_000);
  if (child.exitCode !== null) throw new Error(`flux-source-controller exited: ${await readFile(join(dir, 'flux.log'), 'utf8')}`);
  return {
    procs: [{ name: 'flux source-controller', pid: child.pid!, helpers: false }],
    stop: () => stopChild(child),
  };
}

async function startArena(kube: Kube, dir: string, workers: number): Promise<Running> {
  const temporal: TemporalServer = await startTemporal(true);
  const taskQueue = 'bench-cluster';
  const started: Array<{ name: string; pid: number; helpers: boolean; stop(): Promise<void> }> = [];
  try {
    for (let w = 0; w < workers; w++) {
      const worker = await startWorkerProcess({
        temporalAddress: temporal.address,
        taskQueue,
        dataDir: join(dir, `worker-${w}`),
        args: ['--kubernetes', '--kubeconfig', kube.kubeconfigPath],
      });
      started.push({ name: workers > 1 ? `worker ${w + 1}` : 'worker', pid: worker.pid, helpers: true, stop: worker.stop });
    }
    const metrics = await freePort();
    const controller = spawnLogged(
      process.execPath,
      [resolve('bin/arena-source.js'), 'controller', '--kubeconfig', kube.kubeconfigPath, '--temporal-address', temporal.address, '--task-queue', taskQueue, '--metrics-port', String(metrics)],
      // As deploy/ runs it (its NODE_OPTIONS; the allocator from the image).
      { ARENA_SOURCE_LOG_LEVEL: 'warn', NODE_OPTIONS: await controllerNodeOptions(), ...IMAGE_ENV },
      join(dir, 'controller.log'),
    );
    for (let i = 0; ; i++) {
      const ready = await fetch(`http://127.0.0.1:${metrics}/readyz`).then((r) => r.ok, () => false);
      if (ready) break;
      if (controller.exitCode !== null || i > 600) throw new Error(`controller not ready: ${await readFile(join(dir, 'controller.log'), 'utf8')}`);
      await sleep(200);
    }
    started.push({ name: 'controller', pid: controller.pid!, helpers: false, stop: () => stopChild(controller) });
    started.push({ name: 'Temporal dev server', pid: temporal.pid, helpers: false, stop: temporal.stop });
  } catch (err) {
    for (const s of started) await s.stop();
    await temporal.stop();
    throw err;
  }
  return {
    procs: started.map(({ name, pid, helpers }) => ({ name, pid, helpers })),
    stop: async () => {
      for (const s of started) await s.stop().catch(() => undefined);
    },
  };
}

function spawnLogged(bin: string, args: string[], env: NodeJS.ProcessEnv, logPath: string): ChildProcess {
  const child = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = createWriteStream(logPath);
  child.stdout!.pipe(out);
  child.stderr!.pipe(out);
  const stop = () => stopChild(child);
  cleanups.add(stop);
  child.once('exit', () => cleanups.delete(stop));
  return child;
}

function tablesOf(results: KubeRun[], opts: KubeBenchOptions): Table[] {
  const mib = (b: number) => fmtBytes(b);
  const rows: string[][] = [];
  for (const r of results) {
    const total = (k: 'peakBytes' | 'steadyBytes') => r.processes.reduce((a, p) => a + p[k], 0);
    rows.push([
      `${r.system === 'flux' ? 'Flux source-controller' : 'arena-source'} N=${r.n}`,
      `${fmtNum(r.readySeconds, 1)} s`,
      r.processes.map((p) => `${p.name} ${mib(p.peakBytes)}`).join('; ') + (r.processes.length > 1 ? `; total ${mib(total('peakBytes'))}` : ''),
      r.processes.map((p) => `${p.name} ${mib(p.steadyBytes)}`).join('; '),
      r.processes.map((p) => `${p.name} ${fmtNum(p.cpuSeconds, 1)}`).join('; '),
      fmtBytes(r.gitBytesDown),
      `${r.apiRequests} / ${r.apiRequestsSteady}`,
      `${fmtNum(r.deleteSeconds, 1)} s${r.stuck ? ` (${r.stuck} stuck)` : ''}`,
      r.processes.map((p) => `${p.name} ${p.deletePeakBytes !== undefined ? mib(p.deletePeakBytes) : '–'}`).join('; '),
      r.loadAvg.join(' / '),
    ]);
  }
  const ratios: string[][] = [];
  for (const n of opts.sizes) {
    const a = results.find((r) => r.system === 'arena' && r.n === n);
    const f = results.find((r) => r.system === 'flux' && r.n === n);
    if (!a || !f) continue;
    const sum = (r: KubeRun, k: 'peakBytes' | 'cpuSeconds') => r.processes.reduce((x, p) => x + p[k], 0);
    ratios.push([
      `N=${n}`,
      `${fmtNum(a.readySeconds / f.readySeconds, 2)}×`,
      `${fmtNum(sum(a, 'peakBytes') / sum(f, 'peakBytes'), 2)}×`,
      `${fmtNum(sum(a, 'cpuSeconds') / sum(f, 'cpuSeconds'), 2)}×`,
      `${fmtNum(a.gitBytesDown / f.gitBytesDown, 3)}×`,
      `${fmtNum(a.apiRequests / f.apiRequests, 2)}×`,
    ]);
  }
  return [
    {
      title: `10. Cluster mode: arena-source (controller + ${opts.workers} worker(s) + Temporal dev server) vs Flux source-controller v1.9.1, one kube-apiserver, one git repository, interval ${opts.interval}`,
      columns: ['system', 'apply → all Ready', 'peak RSS', `steady RSS (${opts.steadySeconds} s after Ready)`, 'CPU s (apply → end of steady)', 'git bytes down', 'API requests to Ready / steady', 'delete → all gone', 'max RSS while deleting', 'load avg 1/5/15 at end'],
      rows,
      notes: [
        'Flux GitRepositories use sparseCheckout of the folder the matching ArenaSource names (spec.git.path).',
        'API requests: kube-apiserver apiserver_request_total, all verbs and resources, less the bench\'s own requests.',
        'The machine is shared (other jobs were running): the load average is recorded with each row.',
        'Max RSS while deleting: sampled every 0.5 s from the deletion of all N until the last is gone.',
      ],
    },
    {
      title: '10b. Ratio arena-source / Flux (below 1: arena-source needs less)',
      columns: ['N', 'time to Ready', 'peak RSS (all processes)', 'CPU s', 'git bytes', 'API requests to Ready'],
      rows: ratios,
    },
  ];
}

/**
 * The controller's NODE_OPTIONS as deploy/base/controller.yaml sets them (the chart sets the same; a
 * test checks), or BENCH_CONTROLLER_NODE_OPTIONS to measure others.
 */
async function controllerNodeOptions(): Promise<string> {
  if (process.env.BENCH_CONTROLLER_NODE_OPTIONS !== undefined) return process.env.BENCH_CONTROLLER_NODE_OPTIONS;
  const [doc] = parseAllDocuments(await readFile(resolve('deploy/base/controller.yaml'), 'utf8'));
  const deployment = doc?.toJS() as { spec: { template: { spec: { containers: Array<{ env?: Array<{ name: string; value?: string }> }> } } } };
  return deployment.spec.template.spec.containers[0]?.env?.find((e) => e.name === 'NODE_OPTIONS')?.value ?? '';
}
