/**
 * Maps ArenaSource resources onto workflows. An informer per watched namespace
 * (or one cluster-wide) feeds keys into a rate-limited, de-duplicated work queue
 * (./work-queue.ts); a fixed pool of workers reconciles them, never two at once for
 * a key, always from the latest object; failures (a 409 conflict included) go back
 * through the queue with per-key exponential backoff, and the next attempt re-reads
 * the object from the API server. A periodic re-list converges whatever a lost watch
 * event missed. Everything it does is idempotent (signal-with-start; finalizer
 * patches guarded by resourceVersion or a JSON-patch test), so two controllers at
 * once, or a restart, lose nothing.
 */
import type { Informer, KubernetesObject, ObjectCache } from '@kubernetes/client-node';
import { PatchStrategy, makeInformer, setHeaderOptions } from '../kube/kubernetes-client.js';
import type { Client } from '@temporalio/client';
import type { ArenaSource } from '../api/schema.js';
import { parseArenaSource } from '../api/validate.js';
import { applySource, reconcileSource, refOf, sourceHandle, startDeletion } from '../client.js';
import { controllerReconciles } from '../observability/metrics.js';
import {
  FINALIZER,
  GROUP,
  OMNIA_RECONCILE_ANNOTATION,
  PLURAL,
  RECONCILE_ANNOTATION,
  VERSION,
  statusCode,
  type KubeClients,
} from '../kube/config.js';
import { WorkQueue, type RateLimit } from './work-queue.js';

export interface ControllerOptions {
  kube: KubeClients;
  client: Client;
  taskQueue: string;
  /** Namespaces to watch; empty or undefined = all. */
  namespaces?: string[];
  /** Full re-list interval (default 5 minutes). */
  resyncMs?: number;
  /** Reconciles at once across all keys (default 16). */
  workers?: number;
  /** Retry backoff of the work queue (defaults: 500 ms doubling to 5 min; 10/s after a burst of 100). */
  retry?: RateLimit;
  /** How long a source's workflow may take to delete everything before the deletion is retried (default 5 min). */
  deleteTimeoutMs?: number;
  log?: (message: string) => void;
}

type Resource = ArenaSource & KubernetesObject & {
  metadata: ArenaSource['metadata'] & {
    deletionTimestamp?: string | Date;
    finalizers?: string[];
    resourceVersion?: string;
    annotations?: Record<string, string>;
  };
};

const ANNOTATIONS = [RECONCILE_ANNOTATION, OMNIA_RECONCILE_ANNOTATION];

/** A deletion handed to a source's workflow, checked on until its run completes. */
interface Deletion {
  uid: string | undefined;
  checks: number;
  startedAt: number;
}

/** First check of a deletion's run, doubling per check up to the max. */
const DELETION_POLL_MS = 500;
const DELETION_POLL_MAX_MS = 5_000;

export class ArenaSourceController {
  private readonly informers: Array<Informer<Resource> & ObjectCache<Resource>> = [];
  private readonly queue: WorkQueue<string>;
  /** What the last event showed of the fields that matter, per key: status-only updates are dropped. */
  private readonly seen = new Map<string, string>();
  /** What we last told Temporal per key, so a re-queue does not re-signal. */
  private readonly handled = new Map<string, { generation?: number; annotations?: Record<string, string> }>();
  private readonly deletions = new Map<string, Deletion>();
  private resyncTimer?: NodeJS.Timeout;
  private readonly restartTimers = new Set<NodeJS.Timeout>();
  /** Informer paths not (or no longer) listed and watching, with why: readiness. */
  private readonly unsynced = new Map<string, { reason: string }>();
  private readonly inFlight = new Set<Promise<void>>();
  private workers: Array<Promise<void>> = [];
  private started = false;
  private stopped = false;
  private readonly log: (message: string) => void;

  constructor(private readonly opts: ControllerOptions) {
    this.log = opts.log ?? ((m) => console.log(m));
    this.queue = new WorkQueue(opts.retry);
  }

  async start(): Promise<void> {
    const namespaces = this.opts.namespaces?.filter(Boolean) ?? [];
    const scopes = namespaces.length > 0 ? namespaces : [undefined];
    this.workers = Array.from({ length: Math.max(1, this.opts.workers ?? 16) }, () => this.work());
    for (const namespace of scopes) {
      const path = namespace
        ? `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${PLURAL}`
        : `/apis/${GROUP}/${VERSION}/${PLURAL}`;
      const informer = makeInformer<Resource>(this.opts.kube.config, path, () => this.list(namespace));
      informer.on('add', (obj) => this.observe(obj));
      informer.on('update', (obj) => this.observe(obj));
      informer.on('delete', (obj) => this.forget(keyOf(obj)));
      informer.on('error', (err) => {
        if (this.stopped) return;
        const message = (err as Error)?.message ?? String(err);
        this.unsynced.set(path, { reason: `watch failed: ${message}` });
        this.log(`watch ${path} failed (${message}); restarting in 5s`);
        const timer = setTimeout(() => {
          this.restartTimers.delete(timer);
          if (!this.stopped) void this.startInformer(path, informer);
        }, 5_000);
        this.restartTimers.add(timer);
      });
      await this.startInformer(path, informer);
      this.informers.push(informer);
    }
    this.resyncTimer = setInterval(() => void this.resync(), this.opts.resyncMs ?? 5 * 60_000);
    this.started = true;
    this.log(`controller watching ArenaSources in ${namespaces.length ? namespaces.join(', ') : 'all namespaces'}`);
  }

  /**
   * (Re)starts an informer: it lists, then watches. The informer reports a failure of
   * either through its error event (start() itself resolves), which replaces this
   * attempt's marker; so the path counts as synced only if the marker survived.
   */
  private async startInformer(path: string, informer: Informer<Resource>): Promise<void> {
    const attempt = { reason: 'listing' };
    this.unsynced.set(path, attempt);
    try {
      await informer.start();
    } catch (err) {
      this.unsynced.set(path, { reason: `start failed: ${(err as Error)?.message ?? String(err)}` });
      return;
    }
    if (this.unsynced.get(path) === attempt) this.unsynced.delete(path);
  }

  /** Undefined when every informer has listed and is watching; else what is not. */
  syncProblem(): string | undefined {
    if (this.stopped) return 'stopped';
    if (!this.started) return 'starting';
    if (this.unsynced.size === 0) return undefined;
    return [...this.unsynced].map(([path, { reason }]) => `${path}: ${reason}`).join('; ');
  }

  /**
   * Stops the queue, informers and timers, then waits up to `waitMs` for the reconciles
   * in flight (each is idempotent, so one cut short is simply redone by the next controller).
   */
  async stop(waitMs = 5_000): Promise<void> {
    this.stopped = true;
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    for (const timer of this.restartTimers) clearTimeout(timer);
    this.restartTimers.clear();
    this.queue.shutDown();
    await Promise.allSettled(this.informers.map((i) => i.stop()));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.inFlight, ...this.workers]),
      new Promise((resolve) => (timer = setTimeout(resolve, waitMs))),
    ]);
    clearTimeout(timer);
  }

  /** Re-lists everything and reconciles it again (forgetting what was handled). */
  async resync(): Promise<void> {
    const scopes = this.opts.namespaces?.length ? this.opts.namespaces : [undefined];
    for (const ns of scopes) {
      try {
        for (const obj of (await this.list(ns)).items) {
          const key = keyOf(obj);
          this.handled.delete(key);
          this.queue.add(key);
        }
      } catch (err) {
        this.log(`resync of ${ns ?? 'all namespaces'} failed: ${(err as Error).message}`);
      }
    }
  }

  private async list(namespace: string | undefined) {
    const { custom } = this.opts.kube;
    const list = namespace
      ? await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace })
      : await custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL });
    return list as { apiVersion: string; kind: string; metadata: { resourceVersion?: string }; items: Resource[] };
  }

  /**
   * An informer event: the cached object is trimmed in place to what reconcile reads, and
   * the key is queued only when one of those fields changed. Status writes (ours, every
   * cycle) change none of them, so they neither queue work nor, during a deletion, start
   * the deletion over.
   */
  private observe(obj: Resource): void {
    trim(obj);
    if (this.stopped) return;
    const key = keyOf(obj);
    const print = fingerprint(obj);
    if (this.seen.get(key) === print) return;
    this.seen.set(key, print);
    this.queue.add(key);
  }

  private forget(key: string): void {
    this.seen.delete(key);
    this.handled.delete(key);
    this.deletions.delete(key);
    this.queue.forget(key);
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      const run = this.process(key);
      this.inFlight.add(run);
      await run;
      this.inFlight.delete(run);
      this.queue.done(key);
    }
  }

  private async process(key: string): Promise<void> {
    try {
      await this.reconcile(key);
      this.queue.forget(key);
      controllerReconciles.inc({ result: 'succeeded' });
    } catch (err) {
      controllerReconciles.inc({ result: 'failed' });
      if (this.stopped) return;
      const attempt = this.queue.retries(key) + 1;
      const delay = this.queue.addRateLimited(key);
      const why = isConflict(err) ? 'conflict, re-read on retry' : (err as Error).message;
      this.log(`reconcile ${key} failed (attempt ${attempt}, retry in ${formatDelay(delay)}): ${why}`);
    }
  }

  /** The object from the cache; after a failure (a conflict, say), as the API server has it now. */
  private async current(key: string): Promise<Resource | undefined> {
    if (this.queue.retries(key) === 0) {
      const cached = this.cached(key);
      if (cached) return cached;
    }
    const fresh = await this.fetch(key);
    if (fresh) trim(fresh);
    return fresh;
  }

  private cached(key: string): Resource | undefined {
    const [namespace, name] = splitKey(key);
    for (const informer of this.informers) {
      const obj = informer.get(name, namespace);
      if (obj) return obj;
    }
    return undefined;
  }

  private async reconcile(key: string): Promise<void> {
    let obj = await this.current(key);
    if (!obj) return;
    if (obj.metadata.deletionTimestamp) return this.reconcileDeletion(key, obj);
    if (!(obj.metadata.finalizers ?? []).includes(FINALIZER)) {
      // Go on with the object the patch returns: the workflow starts now, not after the update event
      // has come back through a queue full of other sources' first events (which it finds handled).
      obj = await this.addFinalizer(obj);
      if (!obj) return;
      if (obj.metadata.deletionTimestamp) return this.reconcileDeletion(key, obj);
    }
    const source = asSource(obj);
    const last = this.handled.get(key) ?? {};
    if (last.generation !== obj.metadata.generation) {
      await applySource(this.opts.client, this.opts.taskQueue, source);
      this.handled.set(key, { ...last, generation: obj.metadata.generation });
      this.log(`${key}: generation ${obj.metadata.generation ?? '?'} handed to its workflow`);
    }
    const current = this.handled.get(key)!;
    // Either annotation asks for a sync; each new value is handled once.
    for (const name of ANNOTATIONS) {
      const requested = obj.metadata.annotations?.[name];
      const seen = current.annotations?.[name];
      if (!requested || requested === seen) continue;
      if (requested !== obj.status?.lastHandledReconcileAt) {
        await reconcileSource(this.opts.client, refOf(source), requested);
        this.log(`${key}: reconcile requested at ${requested} (${name})`);
      }
      current.annotations = { ...current.annotations, [name]: requested };
    }
  }

  /**
   * A deleted source: its workflow deletes everything (started just for that if it is
   * gone), then our finalizer goes. No worker waits for the run: the key comes back after
   * a short delay (growing, capped) until the run has completed, so a thousand deletions
   * hold neither the pool nor a thousand long polls. A run that ended otherwise than
   * completed is started again through the rate-limited retry.
   */
  private async reconcileDeletion(key: string, obj: Resource): Promise<void> {
    if (!obj.metadata.finalizers?.includes(FINALIZER)) return;
    const uid = obj.metadata.uid;
    const deletion = this.deletions.get(key);
    if (!deletion || deletion.uid !== uid) {
      await startDeletion(this.opts.client, this.opts.taskQueue, asSource(obj));
      this.deletions.set(key, { uid, checks: 0, startedAt: Date.now() });
      this.queue.addAfter(key, DELETION_POLL_MS);
      return;
    }
    const { status } = await sourceHandle(this.opts.client, refOf(asSource(obj))).describe();
    if (status.name === 'RUNNING') {
      if (Date.now() - deletion.startedAt > (this.opts.deleteTimeoutMs ?? 300_000)) {
        this.deletions.delete(key);
        throw new Error(`its workflow has not finished deleting after ${(this.opts.deleteTimeoutMs ?? 300_000) / 1000}s`);
      }
      deletion.checks += 1;
      this.queue.addAfter(key, Math.min(DELETION_POLL_MAX_MS, DELETION_POLL_MS * 2 ** Math.min(deletion.checks, 4)));
      return;
    }
    if (status.name !== 'COMPLETED') {
      this.deletions.delete(key);
      throw new Error(`its workflow ended ${status.name} before deleting everything`);
    }
    // The cached object may predate the run's status writes; the patch only tests the finalizer.
    await this.releaseFinalizer(obj);
    this.log(`${key}: deleted (workflow stopped, artifacts removed)`);
  }

  /** The object as the API server has it now; undefined once it is gone. */
  private async fetch(key: string): Promise<Resource | undefined> {
    const [namespace, name] = splitKey(key);
    try {
      return (await this.opts.kube.custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name })) as Resource;
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      throw err;
    }
  }

  /**
   * resourceVersion makes this a compare-and-swap: a concurrent change gets a 409 and a retry.
   * Returns the object as patched (trimmed), or undefined once it is gone.
   */
  private async addFinalizer(obj: Resource): Promise<Resource | undefined> {
    const finalizers = [...(obj.metadata.finalizers ?? []), FINALIZER];
    const patched = await this.patch(obj, { metadata: { finalizers, resourceVersion: obj.metadata.resourceVersion } }, PatchStrategy.MergePatch);
    if (patched) trim(patched);
    return patched;
  }

  /**
   * Removes our finalizer and nothing else. A JSON patch that tests the entry it removes
   * conflicts only with a change to the finalizers, not with the status writes that go on
   * while the source is deleted (a resourceVersion guard failed on every one of them).
   */
  private async releaseFinalizer(obj: Resource): Promise<void> {
    const index = (obj.metadata.finalizers ?? []).indexOf(FINALIZER);
    if (index < 0) return;
    const path = `/metadata/finalizers/${index}`;
    try {
      await this.patch(obj, [{ op: 'test', path, value: FINALIZER }, { op: 'remove', path }], PatchStrategy.JsonPatch);
    } catch (err) {
      // A failed test is 422 (Unprocessable): the finalizers moved under us, which is a conflict.
      if (statusCode(err) === 422) throw Object.assign(new Error('finalizers changed'), { code: 409 });
      throw err;
    }
  }

  /** The object as the API server returns it after the patch, or undefined when it is gone. */
  private async patch(obj: Resource, body: unknown, strategy: PatchStrategy): Promise<Resource | undefined> {
    try {
      return (await this.opts.kube.custom.patchNamespacedCustomObject(
        {
          group: GROUP,
          version: VERSION,
          plural: PLURAL,
          namespace: obj.metadata.namespace ?? 'default',
          name: obj.metadata.name,
          body,
        },
        setHeaderOptions('Content-Type', strategy),
      )) as Resource;
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      throw err;
    }
  }
}

/** What reconcile reads of an object: a change to anything else queues nothing. */
function fingerprint(obj: Resource): string {
  const m = obj.metadata;
  return JSON.stringify([
    m.generation,
    m.deletionTimestamp ? 1 : 0,
    m.finalizers?.includes(FINALIZER) ? 1 : 0,
    ...ANNOTATIONS.map((a) => m.annotations?.[a] ?? ''),
  ]);
}

/**
 * Drops, in place, what the controller never reads, so the informer's cache holds no
 * managedFields, kubectl's last-applied copy of the spec or the status a worker writes.
 */
function trim(obj: Resource): void {
  const m = obj.metadata as Record<string, unknown> & Resource['metadata'];
  for (const field of Object.keys(m)) if (!KEPT_METADATA.has(field)) delete m[field];
  if (m.annotations) {
    const kept = Object.fromEntries(ANNOTATIONS.filter((a) => m.annotations![a] !== undefined).map((a) => [a, m.annotations![a]!]));
    if (Object.keys(kept).length > 0) m.annotations = kept;
    else delete m.annotations;
  }
  const handledAt = obj.status?.lastHandledReconcileAt;
  if (handledAt !== undefined) obj.status = { lastHandledReconcileAt: handledAt } as Resource['status'];
  else delete obj.status;
}

const KEPT_METADATA = new Set([
  'name',
  'namespace',
  'uid',
  'generation',
  'resourceVersion',
  'creationTimestamp',
  'labels',
  'annotations',
  'deletionTimestamp',
  'finalizers',
]);

function isConflict(err: unknown): boolean {
  return statusCode(err) === 409;
}

function formatDelay(ms: number): string {
  return ms < 1_000 ? `${ms}ms` : `${Math.round(ms / 100) / 10}s`;
}

function splitKey(key: string): [namespace: string, name: string] {
  const slash = key.indexOf('/');
  return [key.slice(0, slash), key.slice(slash + 1)];
}

function keyOf(obj: { metadata?: { namespace?: string; name?: string } }): string {
  return `${obj.metadata?.namespace ?? 'default'}/${obj.metadata?.name ?? ''}`;
}

/**
 * The object as the workflow sees it: defaults applied when it is valid; when our
 * stricter rules reject it, the raw spec still goes to the workflow, which reports
 * InvalidSpec in status (where a kubectl user looks), instead of failing here silently.
 */
function asSource(obj: Resource): ArenaSource {
  const meta = {
    name: obj.metadata.name,
    namespace: obj.metadata.namespace ?? 'default',
    ...(obj.metadata.generation !== undefined ? { generation: obj.metadata.generation } : {}),
    ...(obj.metadata.uid ? { uid: obj.metadata.uid } : {}),
    ...(obj.metadata.creationTimestamp ? { creationTimestamp: new Date(obj.metadata.creationTimestamp).toISOString() } : {}),
    ...(obj.metadata.labels ? { labels: obj.metadata.labels } : {}),
  };
  const candidate = { apiVersion: obj.apiVersion, kind: obj.kind, metadata: meta, spec: obj.spec } as ArenaSource;
  try {
    return parseArenaSource(candidate);
  } catch {
    return candidate;
  }
}
