/**
 * Kubernetes client set-up in one place: in-cluster service account when running
 * in a pod, otherwise KUBECONFIG / ~/.kube/config (or an explicit file).
 */
import type { RequestContext } from '@kubernetes/client-node';
import { CoreV1Api, CustomObjectsApi, KubeConfig } from './kubernetes-client.js';
import { Agent } from 'node:https';

export { API_GROUP as GROUP, PLURAL, VERSION } from '../api/group-version.js';
export const FINALIZER = 'omnia.altairalabs.ai/arena-source';
export const RECONCILE_ANNOTATION = 'omnia.altairalabs.ai/reconcile-requested-at';
/** What Omnia's dashboard sets to ask for a sync now; handled exactly like RECONCILE_ANNOTATION. */
export const OMNIA_RECONCILE_ANNOTATION = 'omnia.altairalabs.ai/reconcile-at';
/** Who wrote a field, for server-side field ownership. */
export const FIELD_MANAGER = 'arena-source';

export interface KubeClients {
  config: KubeConfig;
  core: CoreV1Api;
  custom: CustomObjectsApi;
}

/**
 * @kubernetes/client-node (1.x) builds a new https.Agent for every API call, so each status
 * patch or Event paid a TCP connect and TLS handshake of its own (CPU on both ends, and a
 * connection per request in flight). This reuses one keep-alive agent for as long as the TLS
 * settings it was made from stay the same (a rotated client certificate makes a new one).
 */
export class KeepAliveKubeConfig extends KubeConfig {
  private pooled?: { key: string; agent: Agent };

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    const made = context.getAgent();
    // Proxies and plain HTTP keep the library's own agent.
    if (!(made instanceof Agent) || made.constructor !== Agent) return;
    const o = made.options;
    const key = JSON.stringify([o.ca, o.cert, o.key, o.pfx, o.passphrase, o.rejectUnauthorized, o.servername].map((v) => (Buffer.isBuffer(v) ? v.toString('base64') : v)));
    if (this.pooled?.key !== key) {
      this.pooled?.agent.destroy();
      this.pooled = { key, agent: new Agent({ ...o, keepAlive: true, maxSockets: 32 }) };
    }
    context.setAgent(this.pooled.agent);
  }
}

export function loadKubeClients(kubeconfigPath?: string): KubeClients {
  const config = new KeepAliveKubeConfig();
  if (kubeconfigPath) config.loadFromFile(kubeconfigPath);
  else config.loadFromDefault();
  return { config, core: config.makeApiClient(CoreV1Api), custom: config.makeApiClient(CustomObjectsApi) };
}

/** The HTTP status of a client error (v1 client: `code`), or undefined. */
export function statusCode(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown; response?: { statusCode?: unknown } };
  for (const c of [e?.code, e?.statusCode, e?.response?.statusCode]) if (typeof c === 'number') return c;
  return undefined;
}
