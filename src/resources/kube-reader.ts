/** ConfigMaps and Secrets read from the API server, for workers running in a cluster. */
import { statusCode, type KubeClients } from '../kube/config.js';
import type { ConfigMapObject, ResourceReader, SecretObject } from './types.js';

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
