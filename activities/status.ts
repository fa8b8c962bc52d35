/** reportStatus and removeSource: the only writers of status and the only deleter of a source's artifacts. */
import { Context } from '@temporalio/activity';
import { forgetSource, recordCycle, recordPhase } from '../src/observability/metrics.js';
import type { ActivityDeps } from './deps.js';
import { contentPlaces } from './content.js';
import type { RemoveSourceInput, ReportStatusInput } from './types.js';

export function statusActivities(deps: ActivityDeps) {
  const places = contentPlaces(deps);
  return {
    async reportStatus({ source, status, event, cycle }: ReportStatusInput): Promise<void> {
      await deps.statusSink.write(source, status);
      if (event) await deps.statusSink.record(source, event).catch(() => undefined);
      recordPhase(`${source.namespace}/${source.name}`, status.phase);
      if (cycle) {
        recordCycle(cycle.result, cycle.type, cycle.durationMs / 1000);
        Context.current().log.info('cycle finished', { result: cycle.result, durationMs: cycle.durationMs, phase: status.phase, revision: status.artifact?.revision });
      }
    },
    async removeSource({ source, places: published = [] }: RemoveSourceInput): Promise<void> {
      await deps.store.removeSource(source);
      if (deps.content) {
        for (const place of published) await deps.content.remove(await places.locate(source, place.targetPath, place.workspace));
      }
      await deps.statusSink.remove(source);
      forgetSource(`${source.namespace}/${source.name}`);
    },
  };
}
