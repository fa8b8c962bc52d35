/**
 * Registry credentials from a Secret (or from push options): a
 * `kubernetes.io/dockerconfigjson` Secret (`.dockerconfigjson`), the legacy
 * `kubernetes.io/dockercfg` (`.dockercfg`), or plain `username`/`password` keys.
 *
 * Only the entry for the one registry is kept, as a username/password or a
 * token; everything else in a docker config (credsStore, credHelpers, other
 * registries) is dropped, so a Secret cannot make oras run a helper program.
 * Errors name the Secret, the key and the registry, never a value — not even a
 * JSON parser's message, which may quote the text it choked on.
 */
import type { SecretObject } from '../resources/types.js';
import { requireSecretKey, secretValue } from '../secrets/secret-ref.js';
import { SecretNotFoundError } from '../errors.js';
import { isDockerHub, type RegistryAuth } from './oras.js';

export const DOCKER_CONFIG_JSON_TYPE = 'kubernetes.io/dockerconfigjson';
export const DOCKER_CONFIG_JSON_KEY = '.dockerconfigjson';
export const DOCKERCFG_TYPE = 'kubernetes.io/dockercfg';
export const DOCKERCFG_KEY = '.dockercfg';

/** Credentials for `registry` from a Secret; SecretNotFoundError when they are not there. */
export function registryAuthFromSecret(secret: SecretObject, registry: string): RegistryAuth {
  const purpose = `credentials for registry ${registry}`;
  const name = `Secret ${secret.namespace}/${secret.name}`;
  if (secret.type === DOCKER_CONFIG_JSON_TYPE || secretValue(secret, DOCKER_CONFIG_JSON_KEY) !== undefined) {
    const json = requireSecretKey(secret, DOCKER_CONFIG_JSON_KEY, purpose);
    return pick(parseDockerConfig(json, `${name} key '${DOCKER_CONFIG_JSON_KEY}'`, 'auths'), registry, `${name} key '${DOCKER_CONFIG_JSON_KEY}'`);
  }
  if (secret.type === DOCKERCFG_TYPE || secretValue(secret, DOCKERCFG_KEY) !== undefined) {
    const json = requireSecretKey(secret, DOCKERCFG_KEY, purpose);
    return pick(parseDockerConfig(json, `${name} key '${DOCKERCFG_KEY}'`, 'top'), registry, `${name} key '${DOCKERCFG_KEY}'`);
  }
  const hint = `${purpose}; or use a ${DOCKER_CONFIG_JSON_TYPE} Secret with '${DOCKER_CONFIG_JSON_KEY}'`;
  const username = requireSecretKey(secret, 'username', hint);
  const password = requireSecretKey(secret, 'password', hint);
  return { username, password };
}

/** Credentials for `registry` from a docker config JSON text (e.g. `arena-source push --docker-config`). */
export function registryAuthFromDockerConfig(json: string, registry: string, what = 'the docker config'): RegistryAuth {
  return pick(parseDockerConfig(json, what, 'auths'), registry, what);
}

type AuthEntries = Map<string, Record<string, unknown>>;

function parseDockerConfig(json: string, what: string, layout: 'auths' | 'top'): AuthEntries {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    // Not the parser's message: it can quote the (secret) text.
    throw new SecretNotFoundError(`${what} is not valid JSON (expected {"auths": {"<registry>": {...}}})`);
  }
  const root = layout === 'auths' ? (isObject(parsed) ? parsed.auths : undefined) : parsed;
  if (!isObject(root)) {
    throw new SecretNotFoundError(
      layout === 'auths' ? `${what} has no "auths" object (expected {"auths": {"<registry>": {...}}})` : `${what} is not a JSON object`,
    );
  }
  const out: AuthEntries = new Map();
  for (const [key, value] of Object.entries(root)) {
    if (isObject(value)) out.set(key, value);
  }
  return out;
}

function pick(entries: AuthEntries, registry: string, what: string): RegistryAuth {
  const want = normalizeRegistry(registry);
  const hub = isDockerHub(want);
  let entry: Record<string, unknown> | undefined;
  for (const [key, value] of entries) {
    const k = normalizeRegistry(key);
    if (k === want || (hub && isDockerHub(k))) {
      entry = value;
      break;
    }
  }
  if (!entry) {
    const hosts = [...entries.keys()].map(normalizeRegistry);
    throw new SecretNotFoundError(
      `${what} has no entry for registry ${registry}${hosts.length ? ` (it has: ${hosts.join(', ')})` : ' (it has none)'}`,
    );
  }
  const str = (k: string) => (typeof entry[k] === 'string' && entry[k] !== '' ? (entry[k] as string) : undefined);
  const encoded = str('auth');
  if (encoded) {
    const decoded = Buffer.from(encoded, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) throw new SecretNotFoundError(`${what}: the "auth" of registry ${registry} is not base64("username:password")`);
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  const username = str('username');
  const password = str('password');
  if (username && password) return { username, password };
  const identityToken = str('identitytoken');
  if (identityToken) return { identityToken };
  const registryToken = str('registrytoken');
  if (registryToken) return { registryToken };
  throw new SecretNotFoundError(
    `${what}: the entry for registry ${registry} has no usable credentials (auth, username/password, identitytoken or registrytoken)`,
  );
}

/** `https://Host:5000/v1/` → `host:5000`. */
export function normalizeRegistry(key: string): string {
  return key
    .trim()
    .replace(/^[a-z][a-z0-9+.-]*:\/\//i, '')
    .replace(/\/.*$/, '')
    .toLowerCase();
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
