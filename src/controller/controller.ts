/**
 * Maps ArenaSource resources onto workflows. An informer per watched namespace
 * (or one cluster-wide) feeds a keyed work queue; each key is reconciled by
 * itself, latest object wins, failures retry with backoff, and a periodic
 * re-list converges whatever a lost watch event missed. Everything it does is
 * idempotent (signal-with-start; finalizer patches guarded by resourceVersion),
 * so two controllers at once, or a restart, lose nothing.
 */
import { PatchStrategy, makeInformer, setHeaderOptions, type Informer, type KubernetesObject } from '@kubernetes/client-node';
import type { Client } from '@temporalio/client';
import type { ArenaSource } from '../api/schema.js';
import { parseArenaSource } from '../api/validate.js';
import { applySource, deleteSourceWithStart, reconcileSource, refOf } from '../client.js';
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

export interface ControllerOptions {
  kube: KubeClients;
  client: Client;
  taskQueue: string;
  /** Namespaces to watch; empty or undefined = all. */
  namespaces?: string[];
  /** Full re-list interval (default 5 minutes). */
  resyncMs?: number;
  log?: (message: string) => void;
}

type Resource = ArenaSource & KubernetesObject & {
  metadata: ArenaSource['metadata'] & { deletionTimestamp?: string | Date; finalizers?: string[] };
};

export class ArenaSourceController {
  private readonly informers: Array<Informer<Resource>> = [];
  private readonly queue = new Map<string, Resource>();
  private readonly running = new Set<string>();
  private readonly retries = new Map<string, number>();
  /** What we last told Temporal per key, so our own status patches do not re-signal. */
  private readonly handled = new Map<string, { generation?: number; annotations?: Record<string, string> }>();
  private resyncTimer?: NodeJS.Timeout;
  private readonly restartTimers = new Set<NodeJS.Timeout>();
  /** Informer paths not (or no longer) listed and watching, with why: readiness. */
  private readonly unsynced = new Map<string, { reason: string }>();
  private readonly drains = new Set<Promise<void>>();
  private started = false;
  private stopped = false;
  private readonly log: (message: string) => void;

  constructor(private readonly opts: ControllerOptions) {
    this.log = opts.log ?? ((m) => console.log(m));
  }

  async start(): Promise<void> {
    const namespaces = this.opts.namespaces?.filter(Boolean) ?? [];
    const scopes = namespaces.length > 0 ? namespaces : [undefined];
    for (const namespace of scopes) {
      const path = namespace
        ? `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${PLURAL}`
        : `/apis/${GROUP}/${VERSION}/${PLURAL}`;
      const informer = makeInformer<Resource>(this.opts.kube.config, path, () => this.list(namespace));
      informer.on('add', (obj) => this.enqueue(obj));
      informer.on('update', (obj) => this.enqueue(obj));
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
   * Stops the informers and timers, then waits up to `waitMs` for the reconciles in
   * flight (each is idempotent, so one cut short is simply redone by the next controller).
   */
  async stop(waitMs = 5_000): Promise<void> {
    this.stopped = true;
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    for (const timer of this.restartTimers) clearTimeout(timer);
    this.restartTimers.clear();
    await Promise.allSettled(this.informers.map((i) => i.stop()));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.drains]),
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
          this.handled.delete(keyOf(obj));
          this.enqueue(obj);
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

  private enqueue(obj: Resource): void {
    if (this.stopped) return;
    const key = keyOf(obj);
    this.queue.set(key, obj);
    if (!this.running.has(key)) {
      const drain = this.drain(key).finally(() => this.drains.delete(drain));
      this.drains.add(drain);
    }
  }

  /** Reconciles one key until its queue slot is empty; never two at once for a key. */
  private async drain(key: string): Promise<void> {
    this.running.add(key);
    try {
      while (this.queue.has(key) && !this.stopped) {
        const obj = this.queue.get(key)!;
        this.queue.delete(key);
        try {
          await this.reconcile(obj);
          this.retries.delete(key);
          controllerReconciles.inc({ result: 'succeeded' });
        } catch (err) {
          controllerReconciles.inc({ result: 'failed' });
          const attempt = (this.retries.get(key) ?? 0) + 1;
          this.retries.set(key, attempt);
          const delay = Math.min(60_000, 1_000 * 2 ** Math.min(attempt - 1, 6));
          this.log(`reconcile ${key} failed (attempt ${attempt}, retry in ${delay / 1000}s): ${(err as Error).message}`);
          setTimeout(() => {
            if (!this.queue.has(key)) this.enqueue(obj);
          }, delay);
        }
      }
    } finally {
      this.running.delete(key);
    }
  }

  private async reconcile(obj: Resource): Promise<void> {
    const key = keyOf(obj);
    const finalizers = obj.metadata.finalizers ?? [];
    if (obj.metadata.deletionTimestamp) {
      if (!finalizers.includes(FINALIZER)) return;
      // A queued event may predate our own release of the finalizer: acting on it would start
      // a workflow run only to delete nothing, left running if the workers are going away too.
      const current = await this.fetch(obj);
      if (!current?.metadata.finalizers?.includes(FINALIZER)) return;
      await deleteSourceWithStart(this.opts.client, this.opts.taskQueue, asSource(current));
      await this.releaseFinalizer(current);
      this.handled.delete(key);
      this.log(`${key}: deleted (workflow stopped, artifacts removed)`);
      return;
    }
    if (!finalizers.includes(FINALIZER)) {
      // The patch triggers an update event that reconciles the rest.
      await this.setFinalizers(obj, [...finalizers, FINALIZER]);
      return;
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
    for (const name of [RECONCILE_ANNOTATION, OMNIA_RECONCILE_ANNOTATION]) {
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
   * Removes our finalizer once the source's workflow has deleted everything. The deletion
   * itself may write status (a workflow started just to delete announces itself), so the
   * object seen before it is usually stale: on a conflict, retry on the current object
   * rather than redo the deletion, which would write status again and conflict forever.
   */
  private async releaseFinalizer(obj: Resource): Promise<void> {
    let current = obj;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.setFinalizers(current, (current.metadata.finalizers ?? []).filter((f) => f !== FINALIZER));
        return;
      } catch (err) {
        if (statusCode(err) !== 409 || attempt >= 5) throw err;
      }
      const latest = await this.fetch(obj);
      if (!latest?.metadata.finalizers?.includes(FINALIZER)) return;
      current = latest;
    }
  }

  /** The object as the API server has it now; undefined once it is gone. */
  private async fetch(obj: Resource): Promise<Resource | undefined> {
    try {
      return (await this.opts.kube.custom.getNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
        namespace: obj.metadata.namespace ?? 'default',
        name: obj.metadata.name,
      })) as Resource;
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      throw err;
    }
  }

  private async setFinalizers(obj: Resource, finalizers: string[]): Promise<void> {
    try {
      await this.opts.kube.custom.patchNamespacedCustomObject(
        {
          group: GROUP,
          version: VERSION,
          plural: PLURAL,
          namespace: obj.metadata.namespace ?? 'default',
          name: obj.metadata.name,
          // resourceVersion makes this a compare-and-swap: a concurrent change gets a 409 and a retry.
          body: { metadata: { finalizers, resourceVersion: obj.metadata.resourceVersion } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    } catch (err) {
      if (statusCode(err) === 404) return;
      throw err;
    }
  }
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
