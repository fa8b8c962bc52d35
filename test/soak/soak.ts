/**
 * Soak: many sources with short intervals on a few changing repositories, for a
 * bounded time, against a real Temporal dev server, real git and one worker
 * process. Reports cycles, errors, p50/p99 cycle time, worker RSS at start vs end,
 * and history length per workflow (bounded by continue-as-new). Loopback only.
 *
 *   node dist/test/soak/soak.js [--sources 200] [--minutes 3] [--interval 5s] [--repos 10]
 *   (npm run soak -- --minutes 5)
 */
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { API_VERSION, KIND } from '../../src/api/schema.js';
import { parseArenaSource } from '../../src/api/validate.js';
import { applySource, connectClient, getSource, sourceHandle } from '../../src/client.js';
import { cycleHistory } from '../../src/history.js';
import { GitHttpServer } from '../../src/dev/demo-git/git-http-server.js';
import { bareRepoPath, commitFiles, seedRepo } from '../../src/dev/demo-git/repo.js';
import { startTemporalDevServer } from '../../src/dev/temporal-server.js';
import { freePort, startCli } from '../helpers/processes.js';

const { values } = parseArgs({
  options: {
    sources: { type: 'string', default: '200' },
    minutes: { type: 'string', default: '3' },
    interval: { type: 'string', default: '5s' },
    repos: { type: 'string', default: '10' },
  },
});
const N = Number(values.sources);
const MINUTES = Number(values.minutes);
const REPOS = Number(values.repos);

async function rssKiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main() {
  const dir = await mkdtemp(join(tmpdir(), 'arena-soak-'));
  const temporal = await startTemporalDevServer({ port: await freePort(), dbFilename: join(dir, 'temporal.db') });
  const git = await GitHttpServer.start({ root: join(dir, 'git') });
  for (let r = 0; r < REPOS; r++) await seedRepo(join(dir, 'git'), `repo${r}`, { 'pack.json': JSON.stringify({ v: 0 }) });
  const taskQueue = 'soak';
  const worker = startCli(['--data-dir', join(dir, 'data'), '--temporal-address', temporal.address, '--task-queue', taskQueue, 'worker', '--metrics-port', String(await freePort())], {
    ARENA_SOURCE_LOG_LEVEL: 'error',
  });
  const client = await connectClient({ address: temporal.address, namespace: 'default' });
  const refs = Array.from({ length: N }, (_, i) => ({ namespace: 'soak', name: `s${i}` }));
  try {
    await new Promise((r) => setTimeout(r, 3_000));
    const rssStart = await rssKiB(worker.child.pid!);
    const started = Date.now();
    for (const [i, ref] of refs.entries()) {
      await applySource(client, taskQueue, parseArenaSource({
        apiVersion: API_VERSION, kind: KIND, metadata: ref,
        spec: { type: 'git', interval: values.interval, git: { url: git.repoUrl(`repo${i % REPOS}`) } },
      }), { maxHistoryEvents: 400 });
    }
    // Change one repository every few seconds for the whole run.
    let commits = 0;
    const deadline = started + MINUTES * 60_000;
    const samples: number[] = [];
    while (Date.now() < deadline) {
      await commitFiles(bareRepoPath(join(dir, 'git'), `repo${commits % REPOS}`), { 'pack.json': JSON.stringify({ v: ++commits }) }, { branch: 'main', message: `c${commits}` });
      samples.push(await rssKiB(worker.child.pid!));
      await new Promise((r) => setTimeout(r, 5_000));
    }
    const rssEnd = await rssKiB(worker.child.pid!);
    // Cycles, errors and durations from Temporal itself (a sample of sources), phases from queries.
    const sample = refs.filter((_, i) => i % Math.max(1, Math.floor(N / 40)) === 0);
    const durations: number[] = [];
    let cycles = 0;
    let failed = 0;
    const historyLengths: number[] = [];
    let runs = 0;
    for (const ref of sample) {
      const records = await cycleHistory(client, ref, 10_000, 50);
      cycles += records.length;
      failed += records.filter((r) => r.result === 'failed').length;
      durations.push(...records.map((r) => r.durationMs));
      const desc = await sourceHandle(client, ref).describe();
      historyLengths.push(desc.historyLength);
      runs += new Set(records.map((r) => r.runId)).size;
    }
    const phases = new Map<string, number>();
    for (const ref of refs) {
      const s = await getSource(client, ref);
      phases.set(s.status?.phase ?? '?', (phases.get(s.status?.phase ?? '?') ?? 0) + 1);
    }
    durations.sort((a, b) => a - b);
    const half = Math.floor(samples.length / 2);
    const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
    const report = {
      sources: N, repos: REPOS, interval: values.interval, minutes: MINUTES, commits,
      sampledSources: sample.length, cyclesInSample: cycles, failedCyclesInSample: failed,
      cycleMsP50: percentile(durations, 50), cycleMsP99: percentile(durations, 99),
      workerRssMiBStart: +(rssStart / 1024).toFixed(1), workerRssMiBEnd: +(rssEnd / 1024).toFixed(1),
      workerRssMiBFirstHalfAvg: +(avg(samples.slice(0, half)) / 1024).toFixed(1),
      workerRssMiBSecondHalfAvg: +(avg(samples.slice(half)) / 1024).toFixed(1),
      historyEventsMax: Math.max(...historyLengths), historyEventsAvg: Math.round(avg(historyLengths)),
      workflowRunsInSample: runs, phases: Object.fromEntries(phases),
    };
    console.log(JSON.stringify(report, null, 2));
  } finally {
    for (const ref of refs) await sourceHandle(client, ref).terminate('soak done').catch(() => undefined);
    await client.connection.close();
    await worker.stop();
    await git.close();
    await temporal.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
