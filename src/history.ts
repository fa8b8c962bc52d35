/**
 * The last cycles of a source, read back from Temporal, across continue-as-new
 * runs (a run lasts a few cycles: workflows/arena-source.ts, short runs). A cycle
 * that changed something ends with a reportStatus activity whose input (or, run as
 * a local activity, its result) carries the cycle's result and duration; an unchanged cycle is one resolveRevision activity
 * (a local one in runs of current code) that wrote the status itself (its result
 * holds when; older code's held the status written).
 */
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { ResolveRevisionInput, ResolveRevisionResult } from '../activities/types.js';
import type { ArenaSourceStatus } from './api/schema.js';
import { readyMessage } from './api/status.js';
import type { SourceRef } from './api/source-ref.js';
import type { StatusReport } from './status/types.js';
import { workflowIdFor } from '../workflows/definitions.js';
import { activityCalls, eventMs } from './temporal/history-activities.js';

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
  for (const call of activityCalls(events)) {
    if (call.type === 'reportStatus' && (call.input ?? call.result)) {
      // A remote call's input, or what a local one returned (what it wrote).
      const input = defaultPayloadConverter.fromPayload<StatusReport | undefined>((call.input ?? call.result)!);
      if (input?.cycle) found.push(record(call.event, input.status, input.cycle.result, input.cycle.durationMs, runId));
    } else if (call.type === 'resolveRevision' && call.result && call.completedMs !== undefined) {
      // An unchanged cycle: resolveRevision wrote its status (a remote call was asked to, in its
      // input; a local one's input is not recorded, and its result says whether it wrote).
      const asked = call.input ? defaultPayloadConverter.fromPayload<ResolveRevisionInput>(call.input).ifUnchanged : undefined;
      if (call.input && !asked) continue;
      const result = defaultPayloadConverter.fromPayload<ResolveRevisionResult>(call.result);
      const startedAt = asked?.startedAt ?? call.scheduledMs ?? call.completedMs;
      const time = new Date(call.scheduledMs ?? call.completedMs).toISOString();
      const durationMs = Math.max(0, call.completedMs - startedAt);
      // Current code records when it wrote (the status is the previous one, re-verified); older code the status.
      if (result.writtenAt) found.push({ time, result: 'noop', durationMs, phase: 'Ready', revision: result.revision, message: readyMessage(result.revision), runId });
      else if (result.written) found.push({ ...record(call.event, result.written, 'noop', durationMs, runId), time });
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
  const ms = eventMs(event);
  return ms === undefined ? '' : new Date(ms).toISOString();
}
