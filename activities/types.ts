/**
 * The contract between the workflow and the activities: inputs and outputs only.
 * Everything here lands in workflow history, so it holds names, revisions,
 * digests and paths, never a credential or file contents.
 */
import type { Artifact, ArenaSourceSpec, ArenaSourceStatus } from '../src/api/schema.js';
import type { SourceEvent } from '../src/status/types.js';
import type { PruneArtifactsInput, PruneArtifactsResult } from './retention.js';

export interface SourceRef {
  namespace: string;
  name: string;
}

export interface ResolveRevisionInput {
  source: SourceRef;
  spec: ArenaSourceSpec;
  /** The stored artifact, when it was built from this spec: verified in the same call if still current. */
  current?: { revision: string; checksum: string };
}
export interface ResolveRevisionResult {
  /** The revision the source points at now, formatted as the specification says. */
  revision: string;
  /** Set when `current` was given and its revision is still the source's: whether the stored bytes verify. */
  currentValid?: boolean;
}

export interface VerifyArtifactInput {
  source: SourceRef;
  artifact: Artifact;
}

export interface FetchSourceInput {
  source: SourceRef;
  spec: ArenaSourceSpec;
  /** The revision resolveRevision saw; the fetch reports what it actually got. */
  revision: string;
}
export interface FetchSourceResult {
  /** The task queue of the worker holding the checkout: pack and upload must run there. */
  workerQueue: string;
  workDir: string;
  /** Directory (inside workDir) whose contents become the bundle. */
  bundleDir: string;
  revision: string;
}

export interface PackBundleInput {
  workDir: string;
  bundleDir: string;
}
export interface PackBundleResult {
  archivePath: string;
  checksum: string;
  size: number;
  files: number;
}

export interface UploadArtifactInput {
  source: SourceRef;
  workDir: string;
  archivePath: string;
  checksum: string;
}
export interface UploadArtifactResult {
  url: string;
  checksum: string;
  size: number;
}

export interface ReportStatusInput {
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

/** Activities that run on any worker of the shared task queue. */
export interface SharedActivities {
  resolveRevision(input: ResolveRevisionInput): Promise<ResolveRevisionResult>;
  fetchSource(input: FetchSourceInput): Promise<FetchSourceResult>;
  reportStatus(input: ReportStatusInput): Promise<void>;
  removeSource(input: { source: SourceRef }): Promise<void>;
  pruneArtifacts(input: PruneArtifactsInput): Promise<PruneArtifactsResult>;
}

/** Activities that must run on the worker that holds the checkout (its own task queue). */
export interface PinnedActivities {
  packBundle(input: PackBundleInput): Promise<PackBundleResult>;
  uploadArtifact(input: UploadArtifactInput): Promise<UploadArtifactResult>;
  discardWorkDir(input: { workDir: string }): Promise<void>;
}
