/**
 * Keeps ArenaSourceRepository and ArenaSourceRef (what push webhooks look sources
 * up by) matching the spec. Called at the start of a run and after every spec
 * update: the spec changes nowhere else. A workflow started before the attributes
 * were registered learns they exist from the next updateSpec (the controller
 * re-applies every source at each resync), and remembers it across continue-as-new
 * through its input.
 */
import { upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { ArenaSourceSpec } from '../src/api/schema.js';
import { watchAttributes } from '../src/api/search-attributes.js';
import type { CarriedState, SourceWorkflowInput, SpecUpdate } from './definitions.js';
import { adopted } from './patches.js';

/** Before: the workflow did not know these attributes. */
export const WATCH_ATTRIBUTES_KEPT = 'watch-attributes-kept';

export function keepWatchAttributes(input: SourceWorkflowInput, carried: CarriedState, spec: ArenaSourceSpec, update?: SpecUpdate): void {
  if (update?.watchAttributes) input.watchAttributes = true;
  if (!input.watchAttributes || !adopted(carried, WATCH_ATTRIBUTES_KEPT)) return;
  const current = workflowInfo().typedSearchAttributes;
  // Upserted only on change: each upsert is a history event.
  const changed = watchAttributes(spec).filter((pair) => current.get(pair.key) !== pair.value);
  if (changed.length > 0) upsertSearchAttributes(changed);
}
