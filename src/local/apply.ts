/**
 * Applies parsed manifests in local mode: ConfigMaps and Secrets into the local
 * resource store (read by workers), ArenaSources into Temporal (signal-with-start).
 * Returns kubectl-style lines ("arenasource/x configured").
 */
import type { Client } from '@temporalio/client';
import { applySource } from '../client.js';
import type { Manifests } from '../manifests/load.js';
import type { LocalResourceStore } from '../resources/local-store.js';

export async function applyManifests(
  client: Client,
  taskQueue: string,
  resources: LocalResourceStore,
  manifests: Manifests,
): Promise<string[]> {
  const lines: string[] = [];
  // Resources first, so a source's first cycle finds its Namespace, ConfigMap and Secret.
  for (const ns of manifests.namespaces) {
    await resources.putNamespace(ns);
    lines.push(`namespace/${ns.name} configured`);
  }
  for (const cm of manifests.configMaps) {
    await resources.putConfigMap(cm);
    lines.push(`configmap/${cm.name} (${cm.namespace}) configured`);
  }
  for (const secret of manifests.secrets) {
    await resources.putSecret(secret);
    lines.push(`secret/${secret.name} (${secret.namespace}) configured`);
  }
  for (const source of manifests.sources) {
    await applySource(client, taskQueue, source);
    lines.push(`arenasource.omnia.altairalabs.ai/${source.metadata.name} (${source.metadata.namespace}) configured`);
  }
  return lines;
}
