/**
 * The fetch and the pinned steps (pack, upload, discard) as local activities: HereActivities in ./types.ts.
 * A module of its own, with nothing to load: the benchmarks' stub worker uses it too.
 */
import type { FetchSourceInput, FetchSourceResult, HeldBy, Here, HereActivities, PinnedActivities } from './types.js';

/**
 * The pinned steps as local activities for the worker whose own queue is `ownQueue`: each runs `pinned`'s
 * step only for a checkout that queue holds (the workers' and the benchmarks' stub worker's alike). The
 * fetch runs here when this worker fetches (`fetch` given), and its checkout is then this worker's.
 */
export function hereActivities(
  ownQueue: string,
  { packBundle, uploadArtifact, discardWorkDir }: PinnedActivities,
  fetch?: (input: FetchSourceInput) => Promise<FetchSourceResult>,
): HereActivities {
  const here = async <I, T>({ workerQueue, ...input }: I & HeldBy, step: (input: I) => Promise<T>): Promise<Here<T>> =>
    workerQueue === ownQueue ? { here: true, result: await step(input as I) } : { here: false };
  return {
    fetchSourceHere: async (input) => (fetch ? { here: true, result: await fetch(input) } : { here: false }),
    packBundleHere: (input) => here(input, packBundle),
    uploadArtifactHere: (input) => here(input, uploadArtifact),
    discardWorkDirHere: (input) => here(input, discardWorkDir),
  };
}
