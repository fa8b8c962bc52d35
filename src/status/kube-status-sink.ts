/**
 * Status in a cluster: merge-patches the ArenaSource's `status` subresource (works
 * when no status exists yet) and records core/v1 Events on it, so `kubectl get`
 * and `kubectl describe` show what the workflow knows.
 */
import { PatchStrategy, setHeaderOptions } from '../kube/kubernetes-client.js';
import { hostname } from 'node:os';
import type { SourceRef } from '../api/source-ref.js';
import { API_VERSION, KIND, type ArenaSourceStatus } from '../api/schema.js';
import { GROUP, PLURAL, VERSION, statusCode, type KubeClients } from '../kube/config.js';
import type { SourceEvent, StatusSink } from './types.js';

/** Fields we own; absent ones are sent as null so a merge patch clears them. */
const STATUS_FIELDS: Array<keyof ArenaSourceStatus> = [
  'phase',
  'artifact',
  'conditions',
  'lastFetchTime',
  'nextFetchTime',
  'observedGeneration',
  'lastHandledReconcileAt',
];

export class KubeStatusSink implements StatusSink {
  private readonly uids = new Map<string, string>();

  constructor(private readonly kube: Pick<KubeClients, 'core' | 'custom'>) {}

  async write(source: SourceRef, status: ArenaSourceStatus): Promise<void> {
    const body: Record<string, unknown> = {};
    for (const field of STATUS_FIELDS) body[field] = status[field] ?? null;
    try {
      const patched = (await this.kube.custom.patchNamespacedCustomObjectStatus(
        { group: GROUP, version: VERSION, plural: PLURAL, namespace: source.namespace, name: source.name, body: { status: body } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      )) as { metadata?: { uid?: string } } | undefined;
      // The object's uid names it in Events: kept from the answer, so recording one costs no GET.
      const uid = patched?.metadata?.uid;
      if (uid) this.uids.set(`${source.namespace}/${source.name}`, uid);
    } catch (err) {
      // The resource is gone (deleted while a cycle ran): nothing left to report on.
      if (statusCode(err) === 404) return;
      throw err;
    }
  }

  /** Deleting the resource deletes its status; nothing else is kept. */
  async remove(source: SourceRef): Promise<void> {
    this.uids.delete(`${source.namespace}/${source.name}`);
  }

  async record(source: SourceRef, event: SourceEvent): Promise<void> {
    const uid = await this.uidOf(source);
    if (!uid) return;
    const now = new Date();
    await this.kube.core.createNamespacedEvent({
      namespace: source.namespace,
      body: {
        metadata: { generateName: `${source.name}.`, namespace: source.namespace },
        involvedObject: { apiVersion: API_VERSION, kind: KIND, name: source.name, namespace: source.namespace, uid },
        type: event.type,
        reason: event.reason,
        message: event.message,
        source: { component: 'arena-source' },
        reportingComponent: 'omnia.altairalabs.ai/arena-source',
        reportingInstance: hostname(),
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      },
    });
  }

  private async uidOf(source: SourceRef): Promise<string | undefined> {
    const key = `${source.namespace}/${source.name}`;
    const cached = this.uids.get(key);
    if (cached) return cached;
    try {
      const obj = (await this.kube.custom.getNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
        namespace: source.namespace,
        name: source.name,
      })) as { metadata?: { uid?: string } };
      const uid = obj.metadata?.uid;
      if (uid) this.uids.set(key, uid);
      return uid;
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      throw err;
    }
  }
}
