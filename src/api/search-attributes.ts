/**
 * Typed search attributes, so the Temporal UI (and `temporal workflow list -q`) can
 * list and filter sources: `ArenaSourceNamespace = 'arena' AND ArenaSourcePhase = 'Error'`.
 * Pure (only @temporalio/common), shared by the workflow, the client and set-up code.
 */
import { defineSearchAttributeKey, SearchAttributeType, type SearchAttributePair } from '@temporalio/common';
import type { ArenaSourceSpec, ArenaSourceStatus } from './schema.js';
import { watchKeys } from './repository-key.js';

export const SA_NAME = defineSearchAttributeKey('ArenaSourceName', SearchAttributeType.KEYWORD);
export const SA_NAMESPACE = defineSearchAttributeKey('ArenaSourceNamespace', SearchAttributeType.KEYWORD);
export const SA_TYPE = defineSearchAttributeKey('ArenaSourceType', SearchAttributeType.KEYWORD);
export const SA_PHASE = defineSearchAttributeKey('ArenaSourcePhase', SearchAttributeType.KEYWORD);
export const SA_REVISION = defineSearchAttributeKey('ArenaSourceRevision', SearchAttributeType.KEYWORD);

/** What push webhooks look sources up by: the normalised repository (repository-key.ts) and the ref followed. */
export const SA_REPOSITORY = defineSearchAttributeKey('ArenaSourceRepository', SearchAttributeType.KEYWORD);
export const SA_REF = defineSearchAttributeKey('ArenaSourceRef', SearchAttributeType.KEYWORD);

/** Present since the first release; workflows upsert them when `input.searchAttributes`. */
export const BASE_SEARCH_ATTRIBUTES = [SA_NAME, SA_NAMESPACE, SA_TYPE, SA_PHASE, SA_REVISION] as const;
/** Added for push webhooks; registered separately, so a namespace with only the base ones keeps working. */
export const WATCH_SEARCH_ATTRIBUTES = [SA_REPOSITORY, SA_REF] as const;
export const SEARCH_ATTRIBUTES = [...BASE_SEARCH_ATTRIBUTES, ...WATCH_SEARCH_ATTRIBUTES] as const;

export function identityAttributes(source: { namespace: string; name: string }, spec: ArenaSourceSpec): SearchAttributePair[] {
  return [
    { key: SA_NAME, value: source.name },
    { key: SA_NAMESPACE, value: source.namespace },
    { key: SA_TYPE, value: String(spec.type) },
  ];
}

export function stateAttributes(status: ArenaSourceStatus): SearchAttributePair[] {
  return [
    { key: SA_PHASE, value: status.phase ?? 'Pending' },
    { key: SA_REVISION, value: status.artifact?.revision ?? '' },
  ];
}

export function watchAttributes(spec: ArenaSourceSpec): SearchAttributePair[] {
  const { repository, ref } = watchKeys(spec);
  return [
    { key: SA_REPOSITORY, value: repository },
    { key: SA_REF, value: ref },
  ];
}
