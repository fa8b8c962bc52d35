/** ConfigMaps, Secrets and Namespaces read from the API server, for workers running in a cluster. */
import { statusCode, type KubeClients } from '../kube/config.js';
import type { ConfigMapObject, NamespaceObject, ResourceReader, SecretObject } from './types.js';

export class KubeResourceReader implements ResourceReader {
  constructor(private readonly kube: Pick<KubeClients, 'core'>) {}

  async getConfigMap(namespace: string, name: string): Promise<ConfigMapObject | null> {
    try {
      const cm = await this.kube.core.readNamespacedConfigMap({ namespace, name });
      return {
        namespace,
        name,
        ...(cm.metadata?.resourceVersion ? { resourceVersion: cm.metadata.resourceVersion } : {}),
        data: cm.data ?? {},
        binaryData: cm.binaryData ?? {},
      };
    } catch (err) {
      if (statusCode(err) === 404) return null;
      throw err;
    }
  }

  /** Needs `get` on namespaces (the worker's ClusterRole grants it when the content volume is on). */
  async getNamespace(name: string): Promise<NamespaceObject | null> {
    try {
      const ns = await this.kube.core.readNamespace({ name });
      return { name, labels: ns.metadata?.labels ?? {} };
    } catch (err) {
      if (statusCode(err) === 404) return null;
      if (statusCode(err) === 403) {
        throw new Error(
          `reading Namespace ${name} was forbidden: the worker's service account needs "get" on namespaces to find the namespace's workspace label`,
        );
      }
      throw err;
    }
  }

  async getSecret(namespace: string, name: string): Promise<SecretObject | null> {
    try {
      const secret = await this.kube.core.readNamespacedSecret({ namespace, name });
      const data: Record<string, Buffer> = {};
      for (const [k, v] of Object.entries(secret.data ?? {})) data[k] = Buffer.from(v, 'base64');
      // stringData is write-only on the API server; it never comes back on reads.
      return { namespace, name, ...(secret.type ? { type: secret.type } : {}), data };
    } catch (err) {
      if (statusCode(err) === 404) return null;
      throw err;
    }
  }
}
