/**
 * Registers the typed search attributes in a Temporal namespace (idempotent), and
 * tells whether they are there. Workflows only upsert them when they are, since
 * upserting an unknown attribute would fail every workflow task.
 */
import type { Client } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from './api/search-attributes.js';

const known = new WeakMap<Client, Promise<boolean>>();

export function searchAttributesRegistered(client: Client): Promise<boolean> {
  let answer = known.get(client);
  if (!answer) {
    answer = client.connection.operatorService
      .listSearchAttributes({ namespace: client.options.namespace })
      .then((res) => SEARCH_ATTRIBUTES.every((k) => k.name in (res.customAttributes ?? {})))
      .catch(() => false);
    known.set(client, answer);
  }
  return answer;
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
