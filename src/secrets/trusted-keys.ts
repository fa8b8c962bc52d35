/**
 * Trusted public keys from the Secret named by a `verify.secretRef`, by the
 * suffix of each key (as Flux does): `*.asc` OpenPGP public keys (ASCII armored),
 * `*.sshpub` SSH public keys (authorized_keys lines), `*.pub` cosign public keys
 * (PEM). A private key is refused: it does not belong in a Secret the worker reads.
 * A Secret without usable keys is SecretNotFound, not VerificationFailed: fixing the
 * Secret is retried every interval, while a refused revision waits for a new one.
 */
import { SecretNotFoundError } from '../errors.js';
import type { SecretObject } from '../resources/types.js';

export interface TrustedKey {
  /** The Secret key it came from, e.g. `release.asc`. */
  name: string;
  text: string;
}

export function trustedKeys(secret: SecretObject, suffixes: readonly string[]): TrustedKey[] {
  const keys: TrustedKey[] = [];
  for (const [name, value] of Object.entries(secret.data).sort(([a], [b]) => a.localeCompare(b))) {
    if (!suffixes.some((s) => name.endsWith(s))) continue;
    const text = value.toString('utf8');
    if (/PRIVATE KEY/.test(text)) {
      throw new SecretNotFoundError(`Secret ${secret.namespace}/${secret.name}: key '${name}' holds a private key; give only the public key`);
    }
    if (text.trim() !== '') keys.push({ name, text });
  }
  if (keys.length === 0) {
    throw new SecretNotFoundError(
      `Secret ${secret.namespace}/${secret.name} has no trusted public keys: add keys ending in ${suffixes.map((s) => `'${s}'`).join(' or ')}`,
    );
  }
  return keys;
}
