/**
 * The Kubernetes objects a source reads besides itself (ConfigMaps, Secrets),
 * behind one interface with two backends: local files (dev mode) and the API
 * server (controller mode).
 */

export interface ConfigMapObject {
  namespace: string;
  name: string;
  /** Set by the API server; absent for local objects (the revision is then a content hash). */
  resourceVersion?: string;
  data: Record<string, string>;
  binaryData: Record<string, string>;
}

export interface SecretObject {
  namespace: string;
  name: string;
  type?: string;
  /** Decoded values (stringData and base64 data merged, as the API server does). */
  data: Record<string, Buffer>;
}

/** Only what the content volume needs of a Namespace: its labels (the workspace label). */
export interface NamespaceObject {
  name: string;
  labels: Record<string, string>;
}

export interface ResourceReader {
  getConfigMap(namespace: string, name: string): Promise<ConfigMapObject | null>;
  getSecret(namespace: string, name: string): Promise<SecretObject | null>;
  getNamespace(name: string): Promise<NamespaceObject | null>;
}
