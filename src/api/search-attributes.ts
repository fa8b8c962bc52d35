/**
 * Typed search attributes, so the Temporal UI (and `temporal workflow list -q`) can
 * list and filter sources: `ArenaSourceNamespace = 'arena' AND ArenaSourcePhase = 'Error'`.
 * Pure (only @temporalio/common), shared by the workflow, the client and set-up code.
 */
import { defineSearchAttributeKey, SearchAttributeType, type SearchAttributePair } from '@temporalio/common';
import type { ArenaSourceSpec, ArenaSourceStatus } from './schema.js';

export const SA_NAME = defineSearchAttributeKey('ArenaSourceName', SearchAttributeType.KEYWORD);
export const SA_NAMESPACE = defineSearchAttributeKey('ArenaSourceNamespace', SearchAttributeType.KEYWORD);
export const SA_TYPE = defineSearchAttributeKey('ArenaSourceType', SearchAttributeType.KEYWORD);
export const SA_PHASE = defineSearchAttributeKey('ArenaSourcePhase', SearchAttributeType.KEYWORD);
export const SA_REVISION = defineSearchAttributeKey('ArenaSourceRevision', SearchAttributeType.KEYWORD);

export const SEARCH_ATTRIBUTES = [SA_NAME, SA_NAMESPACE, SA_TYPE, SA_PHASE, SA_REVISION] as const;

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
