/**
 * Reads Kubernetes-style YAML (files or folders, multi-document) into the kinds
 * local mode understands: ArenaSource (validated), ConfigMap, Secret and Namespace.
 * Problems are collected per document with its file, so one bad document does
 * not hide the others.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { ArenaSource } from '../api/schema.js';
import { DEFAULT_NAMESPACE, parseArenaSource } from '../api/validate.js';
import type { ConfigMapObject, NamespaceObject, SecretObject } from '../resources/types.js';

export interface Manifests {
  sources: ArenaSource[];
  configMaps: ConfigMapObject[];
  secrets: SecretObject[];
  /** Namespaces: their omnia.altairalabs.ai/workspace label names the workspace of their sources. */
  namespaces: NamespaceObject[];
  problems: string[];
}

const YAML_FILE = /\.ya?ml$/i;

export async function yamlFiles(paths: string[]): Promise<string[]> {
  const files: string[] = [];
  for (const p of paths) {
    const info = await stat(p);
    if (info.isDirectory()) {
      const entries = (await readdir(p, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
      const nested = entries.filter((e) => e.isDirectory() || YAML_FILE.test(e.name)).map((e) => join(p, e.name));
      files.push(...(await yamlFiles(nested)));
    } else {
      files.push(p);
    }
  }
  return files;
}

export async function loadManifests(paths: string[], defaultNamespace = DEFAULT_NAMESPACE): Promise<Manifests> {
  const out: Manifests = { sources: [], configMaps: [], secrets: [], namespaces: [], problems: [] };
  for (const file of await yamlFiles(paths)) {
    parseManifestText(await readFile(file, 'utf8'), file, out, defaultNamespace);
  }
  return out;
}

export function parseManifestText(text: string, file: string, out: Manifests, defaultNamespace = DEFAULT_NAMESPACE): void {
  parseAllDocuments(text).forEach((doc, i) => {
    const where = `${file} (document ${i + 1})`;
    if (doc.errors.length > 0) {
      out.problems.push(`${where}: ${doc.errors.map((e) => e.message).join('; ')}`);
      return;
    }
    const obj = doc.toJS() as Record<string, unknown> | null;
    if (obj === null || obj === undefined) return;
    try {
      const meta = (obj.metadata ?? {}) as { name?: string; namespace?: string; labels?: unknown };
      const namespace = meta.namespace ?? defaultNamespace;
      switch (obj.kind) {
        case 'ArenaSource': {
          const withNs = { ...obj, metadata: { ...meta, namespace } };
          out.sources.push(parseArenaSource(withNs));
          break;
        }
        case 'ConfigMap':
          out.configMaps.push({
            namespace,
            name: requireName(meta.name),
            data: stringMap(obj.data, 'data'),
            binaryData: stringMap(obj.binaryData, 'binaryData'),
          });
          break;
        case 'Secret': {
          const data: Record<string, Buffer> = {};
          for (const [k, v] of Object.entries(stringMap(obj.data, 'data'))) data[k] = Buffer.from(v, 'base64');
          for (const [k, v] of Object.entries(stringMap(obj.stringData, 'stringData'))) data[k] = Buffer.from(v, 'utf8');
          out.secrets.push({
            namespace,
            name: requireName(meta.name),
            ...(typeof obj.type === 'string' ? { type: obj.type } : {}),
            data,
          });
          break;
        }
        case 'Namespace':
          out.namespaces.push({ name: requireName(meta.name), labels: stringMap(meta.labels, 'metadata.labels') });
          break;
        default:
          out.problems.push(`${where}: kind ${JSON.stringify(obj.kind)} is not handled here (ArenaSource, ConfigMap, Secret, Namespace)`);
      }
    } catch (err) {
      out.problems.push(`${where}: ${(err as Error).message}`);
    }
  });
}

function requireName(name: unknown): string {
  if (typeof name !== 'string' || name === '') throw new Error('metadata.name is required');
  return name;
}

function stringMap(value: unknown, field: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new Error(`${field} must be a map of strings`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw new Error(`${field}.${k} must be a string`);
    out[k] = v;
  }
  return out;
}
