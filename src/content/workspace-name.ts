/**
 * Which workspace a namespace belongs to: its label omnia.altairalabs.ai/workspace,
 * else its own name (Omnia's rule). Read from the API server (or local YAML) and
 * cached briefly: the no-op check asks for it every cycle of every source.
 */
import type { ResourceReader } from '../resources/types.js';

export const WORKSPACE_LABEL = 'omnia.altairalabs.ai/workspace';
const CACHE_MS = 30_000;

export class WorkspaceNames {
  private readonly cache = new Map<string, { workspace: string; until: number }>();

  constructor(private readonly resources: Pick<ResourceReader, 'getNamespace'>) {}

  async of(namespace: string): Promise<string> {
    const hit = this.cache.get(namespace);
    if (hit && hit.until > Date.now()) return hit.workspace;
    const ns = await this.resources.getNamespace(namespace);
    const workspace = ns?.labels[WORKSPACE_LABEL] || namespace;
    this.cache.set(namespace, { workspace, until: Date.now() + CACHE_MS });
    return workspace;
  }
}
