/**
 * Resolving a secretRef inside an activity. Errors name the Secret and the key,
 * never a value: they end up in status messages and workflow history.
 */
import type { SecretRef } from '../api/schema.js';
import { SecretNotFoundError } from '../errors.js';
import type { ResourceReader, SecretObject } from '../resources/types.js';

export async function loadSecret(reader: Pick<ResourceReader, 'getSecret'>, namespace: string, ref: SecretRef): Promise<SecretObject> {
  const secret = await reader.getSecret(namespace, ref.name);
  if (!secret) throw new SecretNotFoundError(`Secret ${namespace}/${ref.name} not found`);
  return secret;
}

/** The value of `key`, or undefined when absent. */
export function secretValue(secret: SecretObject, key: string): string | undefined {
  const value = secret.data[key];
  return value === undefined ? undefined : value.toString('utf8');
}

/** The value of `key`, or SecretNotFoundError naming the Secret, the key and what it is for. */
export function requireSecretKey(secret: SecretObject, key: string, purpose: string): string {
  const value = secretValue(secret, key);
  if (value === undefined || value === '') {
    throw new SecretNotFoundError(`Secret ${secret.namespace}/${secret.name} has no key '${key}' (needed for ${purpose})`);
  }
  return value;
}
