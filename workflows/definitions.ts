/**
 * The workflow's public surface: its id, input, signals and queries. Clients
 * (CLI, controller, tests) import these, never the workflow body.
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { ArenaSource, ArenaSourceSpec, ArenaSourceStatus } from '../src/api/schema.js';
import type { SourceRef } from '../src/api/source-ref.js';

export const WORKFLOW_TYPE = 'arenaSourceWorkflow';

/** Stable per source, so starting twice finds the same workflow. */
export function workflowIdFor(source: SourceRef): string {
  return `arena-source/${source.namespace}/${source.name}`;
}

export interface SpecUpdate {
  spec: ArenaSourceSpec;
  /** metadata.generation when the caller has one (Kubernetes); otherwise the workflow counts. */
  generation?: number;
  /** ArenaSourceRepository/ArenaSourceRef exist in the namespace: keep them current (push webhooks find the source by them). */
  watchAttributes?: boolean;
}

export interface SourceMetadata {
  uid?: string;
  creationTimestamp?: string;
  labels?: Record<string, string>;
}

export interface SourceWorkflowInput {
  source: SourceRef;
  spec: ArenaSourceSpec;
  generation?: number;
  metadata?: SourceMetadata;
  /** State carried across continue-as-new. */
  carried?: CarriedState;
  /** Test and tuning knobs; defaults suit production. */
  tuning?: WorkflowTuning;
  /** The ArenaSource* search attributes exist in this Temporal namespace: keep them current. */
  searchAttributes?: boolean;
  /** ArenaSourceRepository/ArenaSourceRef exist too; also learnt from an updateSpec signal (workflows/watch-attributes.ts). */
  watchAttributes?: boolean;
}

export interface WorkflowTuning {
  /** Continue-as-new after this many history events even if the server does not suggest it yet. */
  maxHistoryEvents?: number;
  /** Continue-as-new after this many cycles (short runs: an evicted workflow replays at most this many). */
  cyclesPerRun?: number;
  /** How long a pinned activity may wait for its worker before the cycle re-fetches elsewhere. */
  pinnedScheduleToStartMs?: number;
  /** How long an activity may go without a heartbeat before its worker is presumed dead. */
  heartbeatTimeoutMs?: number;
}

export interface CycleCounters {
  /** Cycles run (not counting suspended or stalled waits). */
  cycles: number;
  /** Cycles that found the stored artifact current and skipped fetch/pack/upload. */
  noops: number;
  /** Cycles that fetched, packed and uploaded. */
  fetches: number;
  failures: number;
  /** Workflow runs so far (1 + continue-as-new count). */
  runs: number;
}

/**
 * Everything one run hands the next across continue-as-new: the run's input carries it, so
 * a new run (and a worker replaying it) starts from this object, not from the previous run's
 * history. Add a field here for any state that must outlive a run; make it optional, since
 * runs started by older code carry objects without it.
 */
export interface CarriedState {
  status: ArenaSourceStatus;
  generation: number;
  counters: CycleCounters;
  reconcileRequested: boolean;
  pendingReconcileAt?: string;
  /** When older artifacts waiting out their retention TTL may be deleted (ISO time). */
  pruneDueAt?: string;
  /** A revision whose content was refused (unsafe, too large): not fetched again until it changes. */
  rejected?: { revision: string; identity: string; reason: string; message: string };
  /** Message of the last failure, so a source that stays down records one event, not one per cycle. */
  lastFailure?: string;
  /** contentIdentity() of the spec the current artifact was built from. */
  artifactIdentity?: string;
  /** Failed cycles in a row: the backoff attempt (workflows/backoff.ts); cleared by a success. */
  failedCycles?: number;
  /** When the next cycle is due (epoch ms); carried so continue-as-new does not fetch early. */
  nextCycleAt?: number;
  /** Where content versions were published (workspace + targetPath), so deleting the source removes them all. */
  contentPlaces?: Array<{ workspace: string; targetPath: string }>;
  /**
   * Phase and revision last upserted as search attributes; continue-as-new keeps the
   * attributes, so a new run does not upsert them again (an action) unless they changed.
   */
  searchKey?: string;
  /** Patches this workflow took (patches.ts): later runs use them without recording markers again. */
  patches?: string[];
}

export interface ReconcileRequest {
  /** Echoed to status.lastHandledReconcileAt (e.g. the reconcile-requested-at annotation). */
  requestedAt?: string;
}

export const updateSpecSignal = defineSignal<[SpecUpdate]>('updateSpec');
export const suspendSignal = defineSignal('suspend');
export const resumeSignal = defineSignal('resume');
export const reconcileSignal = defineSignal<[ReconcileRequest?]>('reconcile');
/** Stop reconciling, remove the source's artifacts and status, and complete. */
export const deleteSignal = defineSignal('delete');

/** The source as an ArenaSource object, status included. */
export const sourceQuery = defineQuery<ArenaSource>('arenaSource');
export const countersQuery = defineQuery<CycleCounters>('counters');
