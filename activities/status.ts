/** reportStatus and removeSource: the only writers of status and the only deleter of a source's artifacts. */
import { Context } from '@temporalio/activity';
import { forgetSource, recordCycle, recordPhase } from '../src/observability/metrics.js';
import { FetchTimeCoalescer } from '../src/status/coalesce.js';
import type { ArenaSourceStatus } from '../src/api/schema.js';
import type { ActivityDeps } from './deps.js';
import { contentPlaces } from './content.js';
import type { RemoveSourceInput, ReportStatusInput } from './types.js';

export function statusActivities(deps: ActivityDeps) {
  const places = contentPlaces(deps);
  const coalescer = new FetchTimeCoalescer(deps.statusTimesMaxAgeMs);
  const keyOf = (source: ReportStatusInput['source']) => `${source.namespace}/${source.name}`;

  async function report({ source, status, event, cycle }: ReportStatusInput, previous?: ArenaSourceStatus): Promise<void> {
    const key = keyOf(source);
    if (coalescer.shouldWrite(key, previous, status)) {
      await deps.statusSink.write(source, status);
      coalescer.written(key);
    }
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
    async removeSource({ source, places: published = [] }: RemoveSourceInput): Promise<void> {
      await deps.store.removeSource(source);
      if (deps.content) {
        for (const place of published) await deps.content.remove(await places.locate(source, place.targetPath, place.workspace));
      }
      await deps.statusSink.remove(source);
      coalescer.forget(keyOf(source));
      forgetSource(keyOf(source));
    },
  };
}
