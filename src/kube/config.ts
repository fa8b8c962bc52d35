/**
 * Kubernetes client set-up in one place: in-cluster service account when running
 * in a pod, otherwise KUBECONFIG / ~/.kube/config (or an explicit file).
 */
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';

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

export function loadKubeClients(kubeconfigPath?: string): KubeClients {
  const config = new KubeConfig();
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
