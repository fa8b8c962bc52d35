/**
 * The last cycles of a source, read back from Temporal, across continue-as-new
 * runs (a run lasts a few cycles: workflows/arena-source.ts, short runs). A cycle
 * that changed something ends with a reportStatus activity whose input carries the
 * cycle's result and duration; an unchanged cycle is one resolveRevision activity
 * that wrote the status itself (its result holds the status written).
 */
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { ResolveRevisionInput, ResolveRevisionResult } from '../activities/types.js';
import type { ArenaSourceStatus } from './api/schema.js';
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

type History = Awaited<ReturnType<ReturnType<Client['workflow']['getHandle']>['fetchHistory']>>;
type HistoryEvent = NonNullable<History['events']>[number];

/**
 * Newest first, at most `limit`, following continue-as-new back through earlier runs (at
 * most `maxRuns`; every run but the current one holds several cycles).
 */
export async function cycleHistory(client: Client, ref: SourceRef, limit = 10, maxRuns = limit + 5): Promise<CycleRecord[]> {
  const records: CycleRecord[] = [];
  let runId: string | undefined;
  for (let run = 0; run < maxRuns && records.length < limit; run++) {
    const handle = client.workflow.getHandle(workflowIdFor(ref), runId);
    const history = await handle.fetchHistory();
    const events = history.events ?? [];
    const currentRunId = runId ?? (await handle.describe()).runId;
    records.push(...cyclesOfRun(events, currentRunId).reverse());
    const started = events[0]?.workflowExecutionStartedEventAttributes;
    runId = started?.continuedExecutionRunId ?? undefined;
    if (!runId) break;
  }
  return records.slice(0, limit);
}

/** The cycles of one run, oldest first. */
function cyclesOfRun(events: HistoryEvent[], runId: string): CycleRecord[] {
  const found: CycleRecord[] = [];
  // resolveRevision calls that were asked to write an unchanged cycle's status, by scheduled event id.
  const unchanged = new Map<string, { time: string; startedAt: number }>();
  for (const event of events) {
    const scheduled = event.activityTaskScheduledEventAttributes;
    const payload = scheduled?.input?.payloads?.[0];
    if (scheduled && payload && scheduled.activityType?.name === 'reportStatus') {
      const input = defaultPayloadConverter.fromPayload<StatusReport>(payload);
      if (input.cycle) found.push(record(event, input.status, input.cycle.result, input.cycle.durationMs, runId));
    } else if (scheduled && payload && scheduled.activityType?.name === 'resolveRevision') {
      const input = defaultPayloadConverter.fromPayload<ResolveRevisionInput>(payload);
      if (input.ifUnchanged) unchanged.set(String(event.eventId), { time: timeOf(event), startedAt: input.ifUnchanged.startedAt });
    }
    const completed = event.activityTaskCompletedEventAttributes;
    const call = completed ? unchanged.get(String(completed.scheduledEventId)) : undefined;
    const result = completed?.result?.payloads?.[0];
    if (call && result) {
      const written = defaultPayloadConverter.fromPayload<ResolveRevisionResult>(result).written;
      const durationMs = Math.max(0, Date.parse(timeOf(event)) - call.startedAt);
      if (written) found.push({ ...record(event, written, 'noop', durationMs, runId), time: call.time });
    }
  }
  return found;
}

function record(event: HistoryEvent, status: ArenaSourceStatus, result: CycleRecord['result'], durationMs: number, runId: string): CycleRecord {
  const ready = status.conditions?.find((c) => c.type === 'Ready');
  return {
    time: timeOf(event),
    result,
    durationMs,
    phase: status.phase ?? '',
    revision: status.artifact?.revision ?? '',
    message: ready?.message ?? '',
    runId,
  };
}

function timeOf(event: HistoryEvent): string {
  const ts = event.eventTime;
  if (!ts) return '';
  const seconds = Number(ts.seconds ?? 0);
  return new Date(seconds * 1000 + Math.floor((ts.nanos ?? 0) / 1e6)).toISOString();
}
