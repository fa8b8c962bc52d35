/**
 * Helpers for the private-git tests: Secrets in the shapes the specification
 * names, the temporary key directories prepareGitAuth leaves behind (none, we
 * hope), and a text form of workflow history and status to search for leaks.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SshGitServer } from './ssh-server.js';
import type { LocalResourceStore } from '../../src/resources/local-store.js';
import { GIT_AUTH_DIR_PREFIX } from '../../src/sources/git/auth.js';

export type SecretData = Record<string, string>;

/** The data of an SSH Secret for `server`: its client key and its host key line. */
export function sshSecretData(server: SshGitServer, overrides: SecretData = {}): SecretData {
  return { identity: server.clientPrivateKey, known_hosts: `${server.hostKeyLine}\n`, ...overrides };
}

export async function putSecret(resources: LocalResourceStore, namespace: string, name: string, data: SecretData): Promise<void> {
  const bytes: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(data)) bytes[k] = Buffer.from(v, 'utf8');
  await resources.putSecret({ namespace, name, data: bytes });
}

/**
 * Every `git-auth-*` entry at most `depth` levels below `root` (the workers' work
 * roots are one level below a stack's `work` directory). Missing root: none.
 */
export async function authTempDirs(root: string, depth = 2): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string, level: number): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const p = join(dir, e.name);
      if (e.name.startsWith(GIT_AUTH_DIR_PREFIX)) found.push(p);
      else if (e.isDirectory() && level < depth) await walk(p, level + 1);
    }
  };
  await walk(root, 1);
  return found;
}

/**
 * JSON with every byte array (payload data: workflow inputs, results, failures)
 * decoded as UTF-8 text. Walks the objects itself: protobuf messages' own
 * toJSON() would turn bytes into base64, where a search finds nothing.
 */
export function textOf(value: unknown): string {
  const seen = new WeakSet<object>();
  const plain = (v: unknown): unknown => {
    if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
    if (typeof v === 'bigint') return v.toString();
    if (v === null || typeof v !== 'object') return v;
    if (seen.has(v)) return '[cycle]';
    seen.add(v);
    if (Array.isArray(v)) return v.map(plain);
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v)) out[k] = plain((v as Record<string, unknown>)[k]);
    return out;
  };
  return JSON.stringify(plain(value));
}

/** All files below `dir`, concatenated (the local status store: statuses and events). */
export async function filesText(dir: string): Promise<string> {
  const parts: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) parts.push(await readFile(p, 'utf8'));
    }
  };
  await walk(dir);
  return parts.join('\n');
}

/**
 * The strings that must never show up anywhere: each secret value, each of its
 * non-trivial lines (a private key's body), and the basic-auth header forms.
 */
export function secretNeedles(data: SecretData): string[] {
  const needles = new Set<string>();
  for (const [key, value] of Object.entries(data)) {
    if (key === 'known_hosts' || key === 'username') continue; // public by nature
    if (value.length >= 4) needles.add(value);
    for (const line of value.split('\n').map((l) => l.trim())) if (line.length >= 8) needles.add(line);
  }
  if (data.username !== undefined && data.password !== undefined) {
    const basic = Buffer.from(`${data.username}:${data.password}`).toString('base64');
    needles.add(basic);
    needles.add(`${data.username}:${data.password}`);
  }
  return [...needles];
}

/** Fails if `text` holds any needle, as is or JSON-escaped once or twice (payload JSON inside JSON). */
export function assertNoSecrets(text: string, needles: string[], where: string): void {
  for (const needle of needles) {
    const escaped = JSON.stringify(needle).slice(1, -1);
    const forms = [needle, escaped, JSON.stringify(escaped).slice(1, -1)];
    if (forms.some((f) => text.includes(f))) {
      throw new Error(`${where} contains secret material (${needle.length} characters starting ${JSON.stringify(needle.slice(0, 3))}…)`);
    }
  }
}
