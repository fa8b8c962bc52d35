/**
 * The activities of a workflow history, remote and local alike. A remote activity is
 * an ActivityTaskScheduled event (its input is recorded) followed by its completion;
 * a local activity runs inside a workflow task and leaves one MarkerRecorded event
 * (`core_local_activity`) holding its type, times and result, not its input.
 * `arena-source history`, the benchmarks and the tests read cycles through this.
 */
import type { temporal } from '@temporalio/proto';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
type Payload = temporal.api.common.v1.IPayload;

/** The marker name the Temporal core gives a local activity's result. */
export const LOCAL_ACTIVITY_MARKER = 'core_local_activity';

export interface ActivityCall {
  type: string;
  local: boolean;
  /** The scheduled event (remote) or the marker (local). */
  event: HistoryEvent;
  /** Remote only: the input, as recorded. */
  input?: Payload;
  /** Remote: the completed event's result (once it completed); local: the marker's result. */
  result?: Payload;
  /** When it was scheduled (local: the first attempt) and when it completed, in ms since the epoch. */
  scheduledMs?: number;
  completedMs?: number;
  /** The one-line summary the Temporal UI shows. */
  summary?: string;
}

/** Activity calls in history order (a remote one where it was scheduled, a local one at its marker). */
export function activityCalls(events: HistoryEvent[]): ActivityCall[] {
  const calls: ActivityCall[] = [];
  const remote = new Map<string, ActivityCall>();
  for (const event of events) {
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled) {
      const call: ActivityCall = {
        type: scheduled.activityType?.name ?? '',
        local: false,
        event,
        ...(scheduled.input?.payloads?.[0] ? { input: scheduled.input.payloads[0] } : {}),
        ...optional('scheduledMs', eventMs(event)),
        ...optional('summary', summaryOf(event)),
      };
      remote.set(String(event.eventId), call);
      calls.push(call);
      continue;
    }
    const completed = event.activityTaskCompletedEventAttributes;
    if (completed) {
      const call = remote.get(String(completed.scheduledEventId));
      if (call) {
        const result = completed.result?.payloads?.[0];
        if (result) call.result = result;
        const ms = eventMs(event);
        if (ms !== undefined) call.completedMs = ms;
      }
      continue;
    }
    const local = localActivityOf(event);
    if (local) calls.push(local);
  }
  return calls;
}

/** A local activity's marker read back; undefined for any other event (patch markers included). */
export function localActivityOf(event: HistoryEvent): ActivityCall | undefined {
  const marker = event.markerRecordedEventAttributes;
  if (!marker || marker.markerName !== LOCAL_ACTIVITY_MARKER) return undefined;
  const data = marker.details?.data?.payloads?.[0]?.data;
  if (!data) return undefined;
  // The core writes this metadata as JSON (so the UI can show it); field names are snake_case.
  const meta = JSON.parse(Buffer.from(data).toString('utf8')) as Record<string, unknown>;
  const result = marker.details?.result?.payloads?.[0];
  return {
    type: String(meta.activity_type ?? meta.activityType ?? ''),
    local: true,
    event,
    ...(result ? { result } : {}),
    ...optional('scheduledMs', timestampMs(meta.original_schedule_time ?? meta.originalScheduleTime)),
    ...optional('completedMs', timestampMs(meta.complete_time ?? meta.completeTime) ?? eventMs(event)),
    ...optional('summary', summaryOf(event)),
  };
}

export function eventMs(event: HistoryEvent): number | undefined {
  const ts = event.eventTime;
  if (!ts) return undefined;
  return Number(ts.seconds ?? 0) * 1000 + Math.floor((ts.nanos ?? 0) / 1e6);
}

function summaryOf(event: HistoryEvent): string | undefined {
  const data = event.userMetadata?.summary?.data;
  if (!data) return undefined;
  try {
    return JSON.parse(Buffer.from(data).toString('utf8')) as string;
  } catch {
    return undefined;
  }
}

/** A protobuf Timestamp as serde writes it: an RFC 3339 string, or { seconds, nanos }. */
function timestampMs(value: unknown): number | undefined {
  if (typeof value === 'string') {
    const ms = Date.parse(value);
    return Number.isFinite(ms) ? ms : undefined;
  }
  if (value && typeof value === 'object' && 'seconds' in value) {
    const { seconds, nanos } = value as { seconds: number | string; nanos?: number };
    return Number(seconds) * 1000 + Math.floor(Number(nanos ?? 0) / 1e6);
  }
  return undefined;
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}
