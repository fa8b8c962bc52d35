/**
 * ConfigMap sources: the bundle is one key of a ConfigMap. The revision is the
 * object's resourceVersion (API server), or a content hash for local objects.
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ConfigMapSource } from '../api/schema.js';
import { DEFAULT_CONFIGMAP_KEY } from '../api/spec-rules.js';
import { FetchFailedError } from '../errors.js';
import type { ConfigMapObject, ResourceReader } from '../resources/types.js';

export interface ConfigMapBundle {
  revision: string;
  key: string;
  content: Buffer;
}

export async function readConfigMapBundle(
  reader: ResourceReader,
  namespace: string,
  source: ConfigMapSource,
): Promise<ConfigMapBundle> {
  const key = source.key ?? DEFAULT_CONFIGMAP_KEY;
  const cm = await reader.getConfigMap(namespace, source.name);
  if (!cm) {
    throw new FetchFailedError(`ConfigMap ${namespace}/${source.name} not found`, { retryable: false });
  }
  const content = valueOf(cm, key);
  if (!content) {
    const keys = [...Object.keys(cm.data ?? {}), ...Object.keys(cm.binaryData ?? {})].sort();
    throw new FetchFailedError(
      `ConfigMap ${namespace}/${source.name} has no key '${key}' (keys: ${keys.join(', ') || 'none'}); set spec.configMap.key`,
      { retryable: false },
    );
  }
  const revision = cm.resourceVersion ?? `sha256:${createHash('sha256').update(content).digest('hex')}`;
  return { revision, key, content };
}

/** Writes the bundle as a single file named after its key; a .json key must hold valid JSON. */
export async function writeConfigMapBundle(bundle: ConfigMapBundle, dir: string, label: string): Promise<void> {
  if (bundle.key.endsWith('.json')) {
    try {
      JSON.parse(bundle.content.toString('utf8'));
    } catch (err) {
      throw new FetchFailedError(`${label} key '${bundle.key}' is not valid JSON: ${(err as Error).message}`, {
        retryable: false,
      });
    }
  }
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, bundle.key), bundle.content);
}

function valueOf(cm: ConfigMapObject, key: string): Buffer | undefined {
  const text = cm.data?.[key];
  if (text !== undefined) return Buffer.from(text, 'utf8');
  const binary = cm.binaryData?.[key];
  return binary !== undefined ? Buffer.from(binary, 'base64') : undefined;
}
