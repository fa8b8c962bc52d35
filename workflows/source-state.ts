/**
 * A source's state and what its signals and queries do to it, as a plain class
 * (Temporal's safe-message-handlers sample): the workflow wires the handlers to
 * these methods and keeps only the loop. Pure: no @temporalio/workflow import.
 */
import { canonicalJson } from '../src/api/canonical.js';
import { API_VERSION, KIND } from '../src/api/group-version.js';
import type { ArenaSource, ArenaSourceSpec } from '../src/api/schema.js';
import { checkSpec, type CheckedSpec } from '../src/api/spec-rules.js';
import type { CarriedState, ReconcileRequest, SourceWorkflowInput, SpecUpdate } from './definitions.js';

/** Why the loop should run before its timer is due. */
export type WakeReason = 'spec' | 'suspend' | 'resume' | 'reconcile' | 'delete';

/** What the source does on this pass of the loop, from its spec alone. */
export type Mode =
  | { kind: 'suspended' }
  /** The spec cannot work as written: stall until it changes (or someone asks). */
  | { kind: 'invalid'; reason: 'InvalidSpec' | 'InvalidTargetPath'; message: string }
  | { kind: 'active'; checked: CheckedSpec };

export class SourceState {
  spec: ArenaSourceSpec;
  readonly carried: CarriedState;
  deleting = false;
  /** Reasons to run now, collected since the current pass of the loop started. */
  private readonly reasons = new Set<WakeReason>();

  constructor(private readonly input: SourceWorkflowInput) {
    this.spec = input.spec;
    this.carried = input.carried ?? {
      status: {},
      generation: input.generation ?? 1,
      counters: { cycles: 0, noops: 0, fetches: 0, failures: 0, runs: 0 },
      reconcileRequested: false,
    };
    this.carried.counters.runs += 1;
  }

  /**
   * Suspension first: a suspended source is not reconciled, so its spec is not judged either.
   * `suspendFirst` is false only when replaying histories of the code before that fix, which
   * judged the spec first.
   */
  mode(suspendFirst = true): Mode {
    if (suspendFirst && this.spec.suspend) return { kind: 'suspended' };
    const check = checkSpec(this.spec);
    if (!check.ok) return { kind: 'invalid', reason: check.reason, message: check.problems.join('; ') };
    if (this.spec.suspend) return { kind: 'suspended' };
    return { kind: 'active', checked: check.checked };
  }

  // ---- signals ----

  updateSpec({ spec, generation }: SpecUpdate): void {
    if (canonicalJson(spec) === canonicalJson(this.spec)) {
      // Same spec re-applied: nothing to do (a newer generation number is still recorded).
      if (generation !== undefined && generation > this.carried.generation) this.carried.generation = generation;
      return;
    }
    this.spec = spec;
    this.carried.generation = generation ?? this.carried.generation + 1;
    this.reasons.add('spec');
  }

  suspend(): void {
    this.setSuspended(true, 'suspend');
  }

  resume(): void {
    this.setSuspended(false, 'resume');
  }

  reconcile(request?: ReconcileRequest): void {
    this.carried.reconcileRequested = true;
    if (request?.requestedAt) this.carried.pendingReconcileAt = request.requestedAt;
    this.reasons.add('reconcile');
  }

  delete(): void {
    this.deleting = true;
    this.reasons.add('delete');
  }

  // ---- the loop's view ----

  /** Woken by any of `reasons` (any reason at all when none is given). */
  wokenBy(...reasons: WakeReason[]): boolean {
    return reasons.length === 0 ? this.reasons.size > 0 : reasons.some((r) => this.reasons.has(r));
  }

  /** A pass of the loop starts: what woke it is being handled now. True when a signal woke it. */
  startPass(): boolean {
    const woken = this.reasons.size > 0;
    this.reasons.clear();
    this.carried.reconcileRequested = false;
    return woken;
  }

  /** A reconcile request carried over continue-as-new still wakes the new run. */
  wakeForCarriedRequest(): void {
    if (this.carried.reconcileRequested) this.reasons.add('reconcile');
  }

  // ---- queries ----

  asObject(startTime: Date): ArenaSource {
    const { source, metadata } = this.input;
    return {
      apiVersion: API_VERSION,
      kind: KIND,
      metadata: {
        name: source.name,
        namespace: source.namespace,
        generation: this.carried.generation,
        ...(metadata?.uid ? { uid: metadata.uid } : {}),
        ...(metadata?.labels ? { labels: metadata.labels } : {}),
        creationTimestamp: metadata?.creationTimestamp ?? startTime.toISOString(),
      },
      spec: this.spec,
      status: this.carried.status,
    };
  }

  private setSuspended(suspend: boolean, reason: WakeReason): void {
    if ((this.spec.suspend ?? false) === suspend) return;
    this.spec = { ...this.spec, suspend };
    this.carried.generation += 1;
    this.reasons.add(reason);
  }
}
