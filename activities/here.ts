/**
 * The pinned steps (pack, upload, discard) as local activities: HereActivities in ./types.ts.
 * A module of its own, with nothing to load: the benchmarks' stub worker uses it too.
 */
import type { HeldBy, Here, HereActivities, PinnedActivities } from './types.js';

/**
 * The pinned steps as local activities for the worker whose own queue is `ownQueue`: each runs `pinned`'s
 * step only for a checkout that queue holds (the workers' and the benchmarks' stub worker's alike).
 */
export function hereActivities(ownQueue: string, { packBundle, uploadArtifact, discardWorkDir }: PinnedActivities): HereActivities {
  const here = async <I, T>({ workerQueue, ...input }: I & HeldBy, step: (input: I) => Promise<T>): Promise<Here<T>> =>
    workerQueue === ownQueue ? { here: true, result: await step(input as I) } : { here: false };
  return {
    packBundleHere: (input) => here(input, packBundle),
    uploadArtifactHere: (input) => here(input, uploadArtifact),
    discardWorkDirHere: (input) => here(input, discardWorkDir),
  };
}
