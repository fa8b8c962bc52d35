/**
 * patched(), remembered across continue-as-new. patched() records a marker event
 * in every run that asks; with short runs that is a few more events (and markers)
 * per run. A run hands the patches it took to the next in its carried state, and
 * a run that inherits a patch uses it without asking: the run's input decides, so
 * replay stays deterministic. Runs started by older code inherit none and ask, as
 * that code did.
 */
import { patched } from '@temporalio/workflow';
import type { CarriedState } from './definitions.js';

export function adopted(carried: CarriedState, patchId: string): boolean {
  if (carried.patches?.includes(patchId)) return true;
  if (!patched(patchId)) return false;
  carried.patches = [...(carried.patches ?? []), patchId];
  return true;
}
