/**
 * One test environment: a local stack (worker, artifact store and server, local
 * resources) on a fresh task queue of the shared Temporal dev server, plus a real
 * git smart-HTTP server, all on 127.0.0.1 and removed afterwards.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { API_VERSION, KIND, type ArenaSource, type ArenaSourceSpec } from '../../src/api/schema.js';
import { parseArenaSource } from '../../src/api/validate.js';
import { applySource, getCounters, getSource, refOf } from '../../src/client.js';
import { FaultyGitHttpServer } from './faulty-git-server.js';
import { startLocalStack, type LocalStack, type LocalStackOptions } from '../../src/local/stack.js';
import type { WorkflowTuning } from '../../workflows/definitions.js';
import { temporalAddress, uniqueTaskQueue } from './temporal.js';
import { waitFor } from './wait.js';

export interface TestEnv {
  stack: LocalStack;
  git: FaultyGitHttpServer;
  gitRoot: string;
  dataDir: string;
  taskQueue: string;
  namespace: string;
  apply(name: string, spec: Partial<ArenaSourceSpec> & Pick<ArenaSourceSpec, 'type'>, tuning?: WorkflowTuning): Promise<ArenaSource>;
  get(name: string): Promise<ArenaSource>;
  counters(name: string): ReturnType<typeof getCounters>;
  waitFor(name: string, what: string, ok: (s: ArenaSource) => boolean, timeoutMs?: number): Promise<ArenaSource>;
  download(url: string): Promise<{ status: number; body: Buffer; sha256: string }>;
  close(): Promise<void>;
}

export async function startTestEnv(
  label: string,
  opts: {
    gitAuth?: { username: string; password: string };
    backends?: LocalStackOptions['backends'];
    packLimits?: LocalStackOptions['packLimits'];
    retention?: LocalStackOptions['retention'];
    contentKeep?: number;
    /** Artifact store instead of the filesystem one (e.g. an S3 store). */
    store?: LocalStackOptions['store'];
    /** The push webhook receiver on the artifact server's port. */
    webhooks?: LocalStackOptions['webhooks'];
  } = {},
): Promise<TestEnv> {
  const dataDir = await mkdtemp(join(tmpdir(), `arena-${label}-`));
  const gitRoot = join(dataDir, 'git');
  const taskQueue = uniqueTaskQueue(label);
  // A namespace per environment keeps workflow ids apart across test files sharing one server.
  const namespace = `t-${taskQueue.replace(/[^a-z0-9]/g, '').slice(-20)}`;
  const git = await FaultyGitHttpServer.start({ root: gitRoot, ...(opts.gitAuth ? { basicAuth: opts.gitAuth } : {}) });
  const stack = await startLocalStack({
    dataDir,
    temporalAddress: temporalAddress(),
    taskQueue,
    ...(opts.backends ? { backends: opts.backends } : {}),
    ...(opts.store ? { store: opts.store } : {}),
    ...(opts.packLimits ? { packLimits: opts.packLimits } : {}),
    ...(opts.retention ? { retention: opts.retention } : {}),
    ...(opts.contentKeep !== undefined ? { contentKeep: opts.contentKeep } : {}),
    ...(opts.webhooks ? { webhooks: opts.webhooks } : {}),
  });
  const ref = (name: string) => ({ namespace, name });
  return {
    stack,
    git,
    gitRoot,
    dataDir,
    taskQueue,
    namespace,
    async apply(name, spec, tuning) {
      const source = parseArenaSource({
        apiVersion: API_VERSION,
        kind: KIND,
        metadata: { name, namespace },
        spec: { interval: '1m', ...spec },
      });
      await applySource(stack.client, taskQueue, source, tuning);
      return source;
    },
    get: (name) => getSource(stack.client, ref(name)),
    counters: (name) => getCounters(stack.client, ref(name)),
    waitFor: (name, what, ok, timeoutMs = 30_000) =>
      waitFor(`${namespace}/${name}: ${what}`, () => getSource(stack.client, ref(name)), ok, timeoutMs),
    async download(url) {
      const res = await fetch(url);
      const body = Buffer.from(await res.arrayBuffer());
      return { status: res.status, body, sha256: `sha256:${createHash('sha256').update(body).digest('hex')}` };
    },
    async close() {
      for await (const wf of stack.client.workflow.list({ query: `TaskQueue = '${taskQueue}' AND ExecutionStatus = 'Running'` })) {
        await stack.client.workflow.getHandle(wf.workflowId).terminate('test finished').catch(() => undefined);
      }
      await stack.close();
      await git.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export { refOf };
