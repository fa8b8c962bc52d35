/** reportStatus and removeSource: the only writers of status and the only deleter of a source's artifacts. */
import { Context } from '@temporalio/activity';
import { forgetSource, recordCycle, recordPhase } from '../src/observability/metrics.js';
import { FetchTimeCoalescer } from '../src/status/coalesce.js';
import { LastStatuses } from '../src/status/last-statuses.js';
import type { ArenaSourceStatus } from '../src/api/schema.js';
import type { ActivityDeps } from './deps.js';
import { contentPlaces } from './content.js';
import type { RemoveSourceInput, ReportStatusInput, ResolveRevisionInput, UnchangedStatus } from './types.js';

export function statusActivities(deps: ActivityDeps) {
  const places = contentPlaces(deps);
  const coalescer = new FetchTimeCoalescer(deps.statusTimesMaxAgeMs);
  const lastWritten = new LastStatuses();
  const keyOf = (source: ReportStatusInput['source']) => `${source.namespace}/${source.name}`;

  async function report({ source, status, event, cycle }: ReportStatusInput, previous?: ArenaSourceStatus): Promise<void> {
    const key = keyOf(source);
    if (coalescer.shouldWrite(key, previous, status)) {
      await deps.statusSink.write(source, status);
      coalescer.written(key);
    }
    // What the workflow now holds as the source's status (a coalesced write included): the next cycle's previous.
    lastWritten.remember(key, status);
    if (event) await deps.statusSink.record(source, event).catch(() => undefined);
    recordPhase(key, status.phase);
    if (cycle) {
      recordCycle(cycle.result, cycle.type, cycle.durationMs / 1000);
      Context.current().log.info('cycle finished', { result: cycle.result, durationMs: cycle.durationMs, phase: status.phase, revision: status.artifact?.revision });
    }
  }

  return {
    async reportStatus(input: ReportStatusInput): Promise<ReportStatusInput | undefined> {
      await report(input);
      // A local activity's input is not in the history: its result carries what was written
      // (the Temporal UI shows it; `arena-source history` reads it). A remote one's input is there.
      return Context.current().info.isLocal ? input : undefined;
    },
    /**
     * An unchanged cycle's status (from resolveRevision): not sent when only its fetch times
     * moved since `previous`, the status the workflow last wrote (src/status/coalesce.ts).
     */
    reportUnchanged: (input: ReportStatusInput, previous: ArenaSourceStatus): Promise<void> => report(input, previous),
    /** The status this worker last wrote for `source`, if `digest` is its fingerprint (UnchangedStatusByDigest). */
    lastWritten: (source: ReportStatusInput['source'], digest: string): ArenaSourceStatus | undefined => lastWritten.recall(keyOf(source), digest),
    async removeSource({ source, places: published = [] }: RemoveSourceInput): Promise<void> {
      await deps.store.removeSource(source);
      if (deps.content) {
        for (const place of published) await deps.content.remove(await places.locate(source, place.targetPath, place.workspace));
      }
      await deps.statusSink.remove(source);
      coalescer.forget(keyOf(source));
      lastWritten.forget(keyOf(source));
      forgetSource(keyOf(source));
    },
  };
}

/**
 * ifUnchanged with its previous status: sent whole, or found by its fingerprint among the statuses this
 * worker wrote (`recall`). Undefined on a miss: the workflow then writes the cycle's status itself.
 */
export function unchangedWithPrevious(
  asked: ResolveRevisionInput['ifUnchanged'],
  recall: (digest: string) => ArenaSourceStatus | undefined,
): UnchangedStatus | undefined {
  if (!asked || 'previous' in asked) return asked;
  const { previousDigest, ...rest } = asked;
  const previous = recall(previousDigest);
  return previous ? { ...rest, previous } : undefined;
}
