/** reportStatus and removeSource: the only writers of status and the only deleter of a source's artifacts. */
import type { ActivityDeps } from './deps.js';
import type { ReportStatusInput, SourceRef } from './types.js';

export function statusActivities(deps: ActivityDeps) {
  return {
    async reportStatus({ source, status, event }: ReportStatusInput): Promise<void> {
      await deps.statusSink.write(source, status);
      if (event) await deps.statusSink.record(source, event).catch(() => undefined);
    },
    async removeSource({ source }: { source: SourceRef }): Promise<void> {
      await deps.store.removeSource(source);
      await deps.statusSink.remove(source);
    },
  };
}
