import type { ArenaSourceStatus } from '../api/schema.js';
import type { SourceRef } from '../../activities/types.js';

/** A Kubernetes-style event about a source (FetchStarted, FetchSucceeded, FetchFailed). */
export interface SourceEvent {
  type: 'Normal' | 'Warning';
  reason: 'FetchStarted' | 'FetchSucceeded' | 'FetchFailed';
  message: string;
}

/** Where reportStatus writes: a local JSON store, or the CR's status subresource. */
export interface StatusSink {
  write(source: SourceRef, status: ArenaSourceStatus): Promise<void>;
  remove(source: SourceRef): Promise<void>;
  /** Records an event about the source; best effort (an event lost is not an error). */
  record(source: SourceRef, event: SourceEvent): Promise<void>;
}
