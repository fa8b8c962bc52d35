/**
 * Registers the typed search attributes in a Temporal namespace (idempotent), and
 * tells whether they are there. Workflows only upsert them when they are, since
 * upserting an unknown attribute would fail every workflow task. The base set and
 * the push-webhook set (ArenaSourceRepository, ArenaSourceRef) are judged apart:
 * a namespace registered before the webhook ones existed keeps its base attributes.
 */
import type { Client } from '@temporalio/client';
import { BASE_SEARCH_ATTRIBUTES, SEARCH_ATTRIBUTES } from './api/search-attributes.js';

const known = new WeakMap<Client, { at: number; names: Promise<Set<string>> }>();
/** An incomplete answer is asked again after this long: attributes registered later are taken up without a restart. */
const RECHECK_MS = 60_000;

async function registeredNames(client: Client): Promise<Set<string>> {
  const cached = known.get(client);
  if (cached && (Date.now() - cached.at < RECHECK_MS || complete(await cached.names))) return cached.names;
  const names = client.connection.operatorService
    .listSearchAttributes({ namespace: client.options.namespace })
    .then((res) => new Set(Object.keys(res.customAttributes ?? {})))
    .catch(() => new Set<string>());
  known.set(client, { at: Date.now(), names });
  return names;
}

function complete(names: Set<string>): boolean {
  return SEARCH_ATTRIBUTES.every((k) => names.has(k.name));
}

/** The base attributes (name, namespace, type, phase, revision) exist. */
export async function searchAttributesRegistered(client: Client): Promise<boolean> {
  const names = await registeredNames(client);
  return BASE_SEARCH_ATTRIBUTES.every((k) => names.has(k.name));
}

/** The push-webhook attributes (repository, ref) exist too. */
export async function watchAttributesRegistered(client: Client): Promise<boolean> {
  return complete(await registeredNames(client));
}

/** Adds whichever of the attributes are missing; returns the names added. */
export async function registerSearchAttributes(client: Client): Promise<string[]> {
  const res = await client.connection.operatorService.listSearchAttributes({ namespace: client.options.namespace });
  const missing = SEARCH_ATTRIBUTES.filter((k) => !(k.name in (res.customAttributes ?? {})));
  if (missing.length > 0) {
    await client.connection.operatorService.addSearchAttributes({
      namespace: client.options.namespace,
      // IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD = 2
      searchAttributes: Object.fromEntries(missing.map((k) => [k.name, 2])),
    });
  }
  known.delete(client);
  return missing.map((k) => k.name);
}
