import type { ArenaSourceStatus } from '../api/schema.js';
import type { SourceRef } from '../api/source-ref.js';

/** A Kubernetes-style event about a source (FetchStarted, FetchSucceeded, FetchFailed; InvalidBundle: published, but not valid). */
export interface SourceEvent {
  type: 'Normal' | 'Warning';
  reason: 'FetchStarted' | 'FetchSucceeded' | 'FetchFailed' | 'InvalidBundle';
  message: string;
}

/** Where reportStatus writes: a local JSON store, or the CR's status subresource. */
export interface StatusSink {
  write(source: SourceRef, status: ArenaSourceStatus): Promise<void>;
  remove(source: SourceRef): Promise<void>;
  /** Records an event about the source; best effort (an event lost is not an error). */
  record(source: SourceRef, event: SourceEvent): Promise<void>;
}

/**
 * One status write as the workflow asks for it (the reportStatus activity's
 * input, so it lands in history: the CLI's cycle history reads it back).
 */
export interface StatusReport {
  source: SourceRef;
  status: ArenaSourceStatus;
  /** An event to record with this status (the workflow decides, so events follow state changes only). */
  event?: SourceEvent;
  /** Set on the status that ends a cycle: what the cycle did and how long it took (for metrics). */
  cycle?: CycleReport;
}

export interface CycleReport {
  result: 'fetched' | 'noop' | 'failed';
  type: string;
  durationMs: number;
}
