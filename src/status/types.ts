import type { ArenaSourceStatus } from '../api/schema.js';
import type { SourceRef } from '../../activities/types.js';

/** Where reportStatus writes: a local JSON store, or the CR's status subresource. */
export interface StatusSink {
  write(source: SourceRef, status: ArenaSourceStatus): Promise<void>;
  remove(source: SourceRef): Promise<void>;
}
