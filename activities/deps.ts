import type { PackLimits } from '../src/bundle/pack.js';
import type { ContentVolume } from '../src/content/content-volume.js';
import type { OrasOptions } from '../src/oci/oras.js';
import type { ResourceReader } from '../src/resources/types.js';
import type { StatusSink } from '../src/status/types.js';
import type { ArtifactStore } from '../src/store/artifact-store.js';
import type { RetentionPolicy } from '../src/store/retention.js';

/** What activities need from the worker process; built once in src/worker.ts. */
export interface ActivityDeps {
  store: ArtifactStore;
  /** Base URL of the artifact server; status.artifact.url = `${artifactBaseUrl}/${key}`. */
  artifactBaseUrl: string;
  statusSink: StatusSink;
  /** ConfigMaps and Secrets (local files or the API server). */
  resources: ResourceReader;
  /** This worker's scratch space; each fetch gets its own directory below it. */
  workRoot: string;
  /** This worker's own task queue, where pack and upload for its checkouts run. */
  workerQueue: string;
  /** Whether a workflow's fetch may run here as a local activity (false on a `--role workflows` worker: it fetches nothing). */
  fetchesHere?: boolean;
  packLimits: PackLimits;
  gitBinary?: string;
  /** OCI sources: the oras binary and an extra registry CA file (else $ORAS_PATH / $ARENA_SOURCE_OCI_CA_FILE). */
  oras?: Pick<OrasOptions, 'binary' | 'caFile'>;
  /** Artifacts kept per source and how long a replaced one survives (default: 2, 1h). */
  retention?: Partial<RetentionPolicy>;
  retentionTimeoutMs?: number;
  /** The workspace content volume, when this worker writes one (--content-root). */
  content?: ContentVolume;
  /** How stale the resource's fetch times may get when nothing else changes (default 10 min; src/status/coalesce.ts). */
  statusTimesMaxAgeMs?: number;
}
