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

/**
 * Every patch in `patchIds` for one marker: a run that takes `setId` takes them all without asking
 * each. Each patched() is a marker and an upsert of TemporalChangeVersion (the core does that for
 * every patch), and the core keeps both for as long as the run is cached: eleven of them cost a new
 * source 22 history events and ≈ 75 KiB of worker memory (README, benchmark 11). Ask it at the very
 * start of a run, before any other patched() and any local activity. A run that older code started
 * never asked it: on replay the answer is false, and that run goes on asking patch by patch, as it
 * did. A later patch is asked on its own (`adopted`), or goes into a new set asked before this one.
 */
export function adoptedAsOne(carried: CarriedState, setId: string, patchIds: readonly string[]): boolean {
  if (carried.patches?.includes(setId)) return true;
  if (!patched(setId)) return false;
  carried.patches = [...new Set([...(carried.patches ?? []), setId, ...patchIds])];
  return true;
}

/**
 * A patch that comes only with a set (adoptedAsOne): true where this run or an earlier one took
 * the set. Never asks patched(), so it records nothing and can be read anywhere in a cycle (a patch
 * asked lazily could land after a local activity's marker in the same task: see EVERY_PATCH).
 */
export function taken(carried: CarriedState, patchId: string): boolean {
  return carried.patches?.includes(patchId) ?? false;
}
