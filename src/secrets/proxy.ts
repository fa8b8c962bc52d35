/**
 * An HTTP(S) proxy from the Secret named by `proxySecretRef` (Flux's keys):
 * `address` (http://host:port or https://host:port, required), and optionally
 * `username` and `password`. The credentials go into the proxy URL handed to
 * git (config from the environment) or oras (HTTPS_PROXY of its process only),
 * never into argv or messages.
 */
import { AuthenticationFailedError } from '../errors.js';
import type { SecretObject } from '../resources/types.js';
import { requireSecretKey, secretValue } from './secret-ref.js';

export const PROXY_SECRET_KEYS = { address: 'address', username: 'username', password: 'password' } as const;

export interface ProxySetting {
  /** The proxy URL with the credentials in it: never log it. */
  url: string;
  /** scheme://host:port, for messages. */
  display: string;
  /** Where it came from, e.g. "Secret ns/name", for messages. */
  source: string;
  /** Strings to scrub from any message (the password, the URL with it). */
  secrets: string[];
}

export function proxyFromSecret(secret: SecretObject, field: string): ProxySetting {
  const source = `Secret ${secret.namespace}/${secret.name}`;
  const address = requireSecretKey(secret, PROXY_SECRET_KEYS.address, `the proxy of ${field}`).trim();
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    throw new AuthenticationFailedError(`${source}: key '${PROXY_SECRET_KEYS.address}' is not a URL; write it as http://host:port`);
  }
  if (!['http:', 'https:'].includes(url.protocol) || url.hostname === '') {
    throw new AuthenticationFailedError(`${source}: key '${PROXY_SECRET_KEYS.address}' must be an http:// or https:// URL with a host (http://host:port)`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new AuthenticationFailedError(
      `${source}: key '${PROXY_SECRET_KEYS.address}' must not hold credentials; put them in keys '${PROXY_SECRET_KEYS.username}' and '${PROXY_SECRET_KEYS.password}'`,
    );
  }
  const display = `${url.protocol}//${url.host}`;
  const username = secretValue(secret, PROXY_SECRET_KEYS.username) ?? '';
  const password = secretValue(secret, PROXY_SECRET_KEYS.password) ?? '';
  if (password !== '' && username === '') {
    throw new AuthenticationFailedError(`${source}: key '${PROXY_SECRET_KEYS.password}' is set without '${PROXY_SECRET_KEYS.username}'`);
  }
  if (username !== '') url.username = encodeURIComponent(username);
  if (password !== '') url.password = encodeURIComponent(password);
  const full = url.toString().replace(/\/$/, '');
  return { url: full, display, source, secrets: [full, ...(password ? [password, encodeURIComponent(password)] : [])] };
}
