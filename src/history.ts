/**
 * The last cycles of a source, read back from Temporal: every cycle ends with a
 * reportStatus activity whose input carries the cycle's result and duration, so
 * the history is the record — across continue-as-new runs too.
 */
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { SourceRef } from './api/source-ref.js';
import type { StatusReport } from './status/types.js';
import { workflowIdFor } from '../workflows/definitions.js';

export interface CycleRecord {
  /** When the cycle's final status was scheduled. */
  time: string;
  result: 'fetched' | 'noop' | 'failed';
  durationMs: number;
  phase: string;
  revision: string;
  message: string;
  runId: string;
}

/** Newest first, at most `limit`, following continue-as-new back through earlier runs (at most `maxRuns`). */
export async function cycleHistory(client: Client, ref: SourceRef, limit = 10, maxRuns = 5): Promise<CycleRecord[]> {
  const records: CycleRecord[] = [];
  let runId: string | undefined;
  for (let run = 0; run < maxRuns && records.length < limit; run++) {
    const handle = client.workflow.getHandle(workflowIdFor(ref), runId);
    const history = await handle.fetchHistory();
    const events = history.events ?? [];
    const currentRunId = runId ?? (await handle.describe()).runId;
    const found: CycleRecord[] = [];
    for (const event of events) {
      const attrs = event.activityTaskScheduledEventAttributes;
      if (attrs?.activityType?.name !== 'reportStatus') continue;
      const payload = attrs.input?.payloads?.[0];
      if (!payload) continue;
      const input = defaultPayloadConverter.fromPayload<StatusReport>(payload);
      if (!input.cycle) continue;
      const ready = input.status.conditions?.find((c) => c.type === 'Ready');
      found.push({
        time: event.eventTime ? timestampToIso(event.eventTime) : '',
        result: input.cycle.result,
        durationMs: input.cycle.durationMs,
        phase: input.status.phase ?? '',
        revision: input.status.artifact?.revision ?? '',
        message: ready?.message ?? '',
        runId: currentRunId,
      });
    }
    records.push(...found.reverse());
    const started = events[0]?.workflowExecutionStartedEventAttributes;
    runId = started?.continuedExecutionRunId ?? undefined;
    if (!runId) break;
  }
  return records.slice(0, limit);
}

function timestampToIso(ts: { seconds?: unknown; nanos?: number | null }): string {
  const seconds = Number(ts.seconds ?? 0);
  return new Date(seconds * 1000 + Math.floor((ts.nanos ?? 0) / 1e6)).toISOString();
}
