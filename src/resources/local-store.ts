/**
 * Local mode's stand-in for the API server's ConfigMaps, Secrets and Namespaces: one JSON file
 * per object under <dataDir>/resources, written by `apply`/`dev` and read by
 * workers. Secret files are 0600; they never pass through Temporal.
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ConfigMapObject, NamespaceObject, ResourceReader, SecretObject } from './types.js';

type Kind = 'configmaps' | 'secrets' | 'namespaces';
/** Namespaces are cluster-scoped: stored under this pseudo-namespace. */
const CLUSTER = '_cluster';
const NAME = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?|_cluster)$/;

export class LocalResourceStore implements ResourceReader {
  constructor(readonly root: string) {}

  async getConfigMap(namespace: string, name: string): Promise<ConfigMapObject | null> {
    return this.read<ConfigMapObject>('configmaps', namespace, name);
  }

  async getSecret(namespace: string, name: string): Promise<SecretObject | null> {
    const stored = await this.read<{ namespace: string; name: string; type?: string; data: Record<string, string> }>(
      'secrets',
      namespace,
      name,
    );
    if (!stored) return null;
    const data: Record<string, Buffer> = {};
    for (const [k, v] of Object.entries(stored.data)) data[k] = Buffer.from(v, 'base64');
    return { namespace, name, ...(stored.type ? { type: stored.type } : {}), data };
  }

  async getNamespace(name: string): Promise<NamespaceObject | null> {
    return this.read<NamespaceObject>('namespaces', CLUSTER, name);
  }

  async putNamespace(ns: NamespaceObject): Promise<void> {
    await this.write('namespaces', CLUSTER, ns.name, ns, 0o644);
  }

  async putConfigMap(cm: ConfigMapObject): Promise<void> {
    await this.write('configmaps', cm.namespace, cm.name, cm, 0o644);
  }

  async putSecret(secret: SecretObject): Promise<void> {
    const data: Record<string, string> = {};
    for (const [k, v] of Object.entries(secret.data)) data[k] = v.toString('base64');
    await this.write('secrets', secret.namespace, secret.name, { ...secret, data }, 0o600);
  }

  async delete(kind: Kind, namespace: string, name: string): Promise<void> {
    await rm(this.file(kind, namespace, name), { force: true });
  }

  private file(kind: Kind, namespace: string, name: string): string {
    if (!NAME.test(namespace) || !NAME.test(name)) throw new Error(`invalid object name ${namespace}/${name}`);
    return join(this.root, kind, namespace, `${name}.json`);
  }

  private async read<T>(kind: Kind, namespace: string, name: string): Promise<T | null> {
    try {
      return JSON.parse(await readFile(this.file(kind, namespace, name), 'utf8')) as T;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  private async write(kind: Kind, namespace: string, name: string, value: unknown, mode: number): Promise<void> {
    const target = this.file(kind, namespace, name);
    await mkdir(dirname(target), { recursive: true, mode: 0o700 });
    const tmp = `${target}.${process.pid}.${Date.now()}.tmp`;
    await writeFile(tmp, JSON.stringify(value, null, 2), { mode });
    await rename(tmp, target);
  }
}
