/**
 * The contract between the workflow and the activities: inputs and outputs only.
 * Everything here lands in workflow history, so it holds names, revisions,
 * digests and paths, never a credential or file contents.
 */
import type { Artifact, ArenaSourceSpec, ArenaSourceStatus } from '../src/api/schema.js';
import type { SourceRef } from '../src/api/source-ref.js';
import type { BundleValidationRequest } from '../src/api/spec-rules.js';
import type { BundleReport, StatusContext } from '../src/api/status.js';
import type { StatusReport } from '../src/status/types.js';

export type { SourceRef } from '../src/api/source-ref.js';
export type { CycleReport } from '../src/status/types.js';

/** Where the source's versions go on the content volume (used by workers that have one). */
export interface ContentTarget {
  /** Normalised spec.targetPath (default arena/{name}). */
  targetPath: string;
  /** spec.createVersionOnSync: keep a history of versions, or only the current one. */
  history: boolean;
}

export interface ResolveRevisionInput {
  source: SourceRef;
  spec: ArenaSourceSpec;
  /** The stored artifact, when it was built from this spec: verified in the same call if still current. */
  current?: { revision: string; checksum: string; version?: string };
  target?: ContentTarget;
  /**
   * When nothing moved: the status to write, computed here by the same pure function the
   * workflow uses, so an unchanged cycle is one activity (and one Temporal action) instead of two.
   */
  ifUnchanged?: UnchangedStatus | UnchangedStatusByDigest;
  /**
   * When there is work (a new revision, or a stored artifact that no longer verifies): the
   * Fetching status to write, so the progressive status costs no activity of its own. Not
   * written for `unlessRevision` (a revision refused before: the workflow fails the cycle).
   */
  ifChanged?: {
    /** The status to write (a remote resolve, or a cycle without `ifUnchanged`). */
    status?: ArenaSourceStatus;
    /** Instead of `status` (a local resolve with `ifUnchanged`): fetchingStatusOf(ifUnchanged, at). */
    at?: string;
    unlessRevision?: string;
  };
  /**
   * A scheduled poll of a source that has an artifact: a git listing another source of the same
   * repository and credentials got a moment ago will do (src/sources/git/shared-listings.ts).
   * Unset for a reconcile, a spec change, a webhook and a first cycle: those always ask the host.
   */
  poll?: boolean;
}

export interface UnchangedStatus {
  /** The status before this cycle (its artifact is the current one). */
  previous: ArenaSourceStatus;
  context: Omit<StatusContext, 'now'>;
  /** For the cycle metric: when the cycle started (epoch ms) and the source type. */
  startedAt: number;
  type: string;
}
/**
 * UnchangedStatus as a local resolve is sent it: the fingerprint (statusDigest) of `previous`, which this
 * worker wrote (src/status/last-statuses.ts), instead of the status.
 */
export type UnchangedStatusByDigest = Omit<UnchangedStatus, 'previous'> & { previousDigest: string };

export interface ResolveRevisionResult {
  /** The revision the source points at now, formatted as the specification says. */
  revision: string;
  /** The commit (git) or manifest digest (oci) `revision` names, for fetchSource's `id`. */
  id?: string;
  /**
   * Set when `current` was given and its revision is still the source's: whether the stored
   * bytes verify (and, with a content volume, whether HEAD names its version).
   */
  currentValid?: boolean;
  /** With a content volume: how many versions the source has there now. */
  content?: { versionCount: number };
  /**
   * When the status of an unchanged cycle (`ifUnchanged`) was written; absent when it could not be.
   * The workflow derives what was written (unchangedCycleStatus of its own `ifUnchanged`, this time and
   * `content`), so each unchanged cycle's marker holds a timestamp, not the whole status (≈ 2.4 KiB).
   */
  writtenAt?: string;
  /** What older code returned instead of `writtenAt`: the whole status written (histories of those runs). */
  written?: ArenaSourceStatus;
  /** True when the Fetching status of `ifChanged` was written (absent: the workflow writes it). */
  changedWritten?: boolean;
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
  /**
   * resolveRevision's `id` for that revision: the commit or digest to fetch. Without it,
   * the fetch reads it back from `revision`.
   */
  id?: string;
}
export interface FetchSourceResult {
  /** The task queue of the worker holding the checkout: pack and upload must run there. */
  workerQueue: string;
  workDir: string;
  /** Directory (inside workDir) whose contents become the bundle. */
  bundleDir: string;
  revision: string;
  /** The commit (git) or manifest digest (oci) fetched. */
  id?: string;
  /** Set when spec.*.verify checked the revision's signature: what was verified (for SourceVerified). */
  verified?: string;
}

export interface PackBundleInput {
  workDir: string;
  bundleDir: string;
  /** Validate the bundle while packing it (absent in histories from before validation: not validated). */
  validation?: BundleValidationRequest;
}
export interface PackBundleResult {
  archivePath: string;
  checksum: string;
  size: number;
  files: number;
  /** Set when `validation` was asked for (strict and invalid throws InvalidBundle instead). */
  bundle?: BundleReport;
}

export interface UploadArtifactInput {
  source: SourceRef;
  workDir: string;
  archivePath: string;
  checksum: string;
  /** Also publish the files as a version on the content volume (when this worker has one). */
  target?: ContentTarget;
}
export interface UploadArtifactResult {
  url: string;
  checksum: string;
  size: number;
  /** Set when the worker has a content volume. */
  content?: PublishedVersion;
}

export interface PublishedVersion {
  /** The workspace directory it went to (the namespace's label when published). */
  workspace: string;
  version: string;
  /** Relative to {content root}/{workspace}/{namespace}. */
  contentPath: string;
  /** False when the version existed already and only HEAD moved. */
  created: boolean;
  versionCount: number;
  /** When a replaced version becomes deletable (ISO), if one waits. */
  nextDueAt?: string;
}

/** Defined with the status sinks (src/status/types.ts): the CLI's cycle history reads it back from history. */
export type ReportStatusInput = StatusReport;

/** A place on the content volume a source published to. */
export interface ContentPlace {
  /** Resolved now from the namespace's label when absent. */
  workspace?: string;
  targetPath: string;
}

export interface PruneArtifactsInput {
  source: SourceRef;
  /** The artifact in status (its checksum "sha256:…", or its key); "" for none. Never deleted. */
  current: string;
  /** Content versions are pruned too, on workers with a content volume (HEAD is never deleted). */
  target?: ContentTarget;
}

export interface PruneArtifactsResult {
  /** Keys deleted now. */
  deleted: string[];
  /** How many older artifacts wait for their TTL. */
  deferred: number;
  /** When the first of them (or of the replaced content versions) becomes deletable (ISO time). */
  nextDueAt?: string;
  /** With a content volume: the versions left. */
  versionCount?: number;
}

export interface RemoveSourceInput {
  source: SourceRef;
  /** Every place the source published content to (a moved targetPath or workspace label leaves several). */
  places?: ContentPlace[];
}

/** Activities that run on any worker of the shared task queue. */
export interface SharedActivities {
  resolveRevision(input: ResolveRevisionInput): Promise<ResolveRevisionResult>;
  fetchSource(input: FetchSourceInput): Promise<FetchSourceResult>;
  /** Resolves to its input when it ran as a local activity (whose input history does not keep). */
  reportStatus(input: ReportStatusInput): Promise<ReportStatusInput | undefined>;
  removeSource(input: RemoveSourceInput): Promise<void>;
  pruneArtifacts(input: PruneArtifactsInput): Promise<PruneArtifactsResult>;
}

/** Activities that must run on the worker that holds the checkout (its own task queue). */
export interface PinnedActivities {
  packBundle(input: PackBundleInput): Promise<PackBundleResult>;
  uploadArtifact(input: UploadArtifactInput): Promise<UploadArtifactResult>;
  discardWorkDir(input: { workDir: string }): Promise<void>;
}

/** The checkout's worker queue (FetchSourceResult.workerQueue): a step runs here only if it is this worker's. */
export interface HeldBy {
  workerQueue: string;
}
/** A pinned step tried as a local activity: its result, or word that another worker holds the checkout. */
export type Here<T> = { here: true; result: T } | { here: false };

/**
 * The fetch and the pinned steps as local activities, on the worker running the workflow task. The
 * fetch runs wherever that worker fetches at all; the pinned steps' work is done
 * only where that worker is the one holding the checkout (the usual case: the fetch ran there, and the
 * workflow's next task comes back to it). Otherwise they answer `here: false` and the workflow
 * schedules the PinnedActivities on the checkout's queue.
 */
export interface HereActivities {
  /** The fetch itself, where this worker fetches (it runs activities: not a `--role workflows` worker). */
  fetchSourceHere(input: FetchSourceInput): Promise<Here<FetchSourceResult>>;
  packBundleHere(input: PackBundleInput & HeldBy): Promise<Here<PackBundleResult>>;
  uploadArtifactHere(input: UploadArtifactInput & HeldBy): Promise<Here<UploadArtifactResult>>;
  discardWorkDirHere(input: { workDir: string } & HeldBy): Promise<Here<void>>;
}
