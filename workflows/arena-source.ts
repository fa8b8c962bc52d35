/**
 * One long-lived workflow per ArenaSource. Each cycle asks the source for its
 * current revision (cheap), skips the heavy work when the stored artifact is
 * current and intact, otherwise fetches, packs and uploads; then it waits for the
 * interval or a signal. Deterministic: only @temporalio/workflow and pure code.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  TimeoutFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  log,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type {
  ContentTarget,
  CycleReport,
  FetchSourceInput,
  FetchSourceResult,
  Here,
  HereActivities,
  PinnedActivities,
  SharedActivities,
  UnchangedStatus,
  UnchangedStatusByDigest,
  UploadArtifactResult,
} from '../activities/types.js';
import { formatMillis } from '../src/api/duration.js';
import type { Artifact, ArenaSourceStatus } from '../src/api/schema.js';
import { bundleValidationOf, contentIdentity, targetPathOf, type CheckedSpec } from '../src/api/spec-rules.js';
import { INVALID_BUNDLE, fetchingStatusOf, nextStatus, statusDigest, unchangedCycleStatus, type BundleReport, type ContentReport, type Outcome } from '../src/api/status.js';
import { NON_RETRYABLE_REASONS, SPEC_REASONS, isFailureReason, type FailureReason } from '../src/errors.js';
import { stateAttributes } from '../src/api/search-attributes.js';
import type { SourceEvent } from '../src/status/types.js';
import {
  countersQuery,
  deleteSignal,
  reconcileSignal,
  resumeSignal,
  sourceQuery,
  suspendSignal,
  updateSpecSignal,
  type CarriedState,
  type SourceWorkflowInput,
} from './definitions.js';
import { adopted, adoptedAsOne, taken } from './patches.js';
import { inPassScope } from './pass-scope.js';
import { SourceState } from './source-state.js';
import { CONTENT_REJECTIONS, backsOff, retryDelayMs } from './backoff.js';
import { WATCH_ATTRIBUTES_KEPT, keepWatchAttributes } from './watch-attributes.js';

const DEFAULT_MAX_HISTORY_EVENTS = 5_000;
/** Cycles per run (short runs); chosen from benchmark 4's replay and action figures (README). */
const DEFAULT_CYCLES_PER_RUN = 20;
const DEFAULT_PINNED_SCHEDULE_TO_START_MS = 30_000;
/** Activities heartbeat every 2 s; a worker silent this long is presumed dead and the attempt is retried. */
const DEFAULT_HEARTBEAT_TIMEOUT_MS = 15_000;
/** How often one cycle re-fetches on another worker after losing the one holding the checkout. */
const PIPELINE_ATTEMPTS = 3;

/**
 * Status writes and cleanup: short, retried a few times, independent of the source's timeout.
 * `local`: on the worker holding the workflow, inside its workflow task (LOCAL_ACTIVITIES).
 */
function bookkeeping(summary: string, local = false) {
  type Bookkeeping = Pick<SharedActivities, 'reportStatus' | 'removeSource' | 'pruneArtifacts'>;
  const options = {
    startToCloseTimeout: '30s',
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '10s', maximumAttempts: 5 },
    summary,
  } as const;
  return local ? proxyLocalActivities<Bookkeeping>(options) : proxyActivities<Bookkeeping>(options);
}

/** Stalled or suspended sources wake on every signal (before: suspend/resume were lost while stalled). */
const STALLED_SOURCE_HANDLES_EVERY_SIGNAL = 'stalled-source-handles-every-signal';
/** A reconcile request carried over continue-as-new wakes the new run (before: it waited a whole interval). */
const CARRIED_RECONCILE_WAKES = 'carried-reconcile-wakes';
/** An unchanged cycle's status is written by resolveRevision: one activity per unchanged cycle (before: two). */
const UNCHANGED_CYCLE_ONE_ACTIVITY = 'unchanged-cycle-one-activity';
/** packBundle validates the bundle (spec.validation): BundleValid, and strict refuses an invalid one (before: not validated). */
const BUNDLE_VALIDATION = 'bundle-validation';
/** A failed cycle is retried after an exponential backoff (workflows/backoff.ts), not a whole interval. */
const FAILURE_BACKOFF = 'failure-backoff';
/** A revision refused by signature verification is not fetched again until a new revision (or spec) appears. */
const VERIFICATION_FAILED_REJECTS_REVISION = 'verification-failed-rejects-revision';
/** A run continues as new every few cycles, carrying its state (before: only near 5,000 events). */
const SHORT_RUNS = 'short-runs';
/**
 * Fewer activities where there is work: resolveRevision writes the Fetching status (as it writes an
 * unchanged cycle's), a new source writes no Pending before it, and a first artifact (or the same
 * bytes again) is not followed by a prune with nothing to remove. A new source's first cycle is five
 * activities instead of eight (before: Pending, resolve, Fetching, fetch, pack, upload, Ready, prune).
 */
const LEAN_CYCLE_WITH_WORK = 'lean-cycle-with-work';
/**
 * A scheduled poll of a source with an artifact tells resolveRevision so: the worker may answer it
 * from a git listing another source of the same repository got a moment ago (before: every poll
 * asked the git host). Signals (reconcile, spec, webhooks) and first cycles always ask the host.
 */
const SHARED_POLL_LISTINGS = 'shared-poll-listings';
/**
 * resolveRevision, reportStatus and pruneArtifacts run as local activities (before: remote ones). An
 * unchanged cycle is then one workflow task (timer fired, resolve, next timer) and one marker: 6
 * history events instead of 11, and no activity task through the server's queues; a cycle with work
 * ends in the workflow task that learns the upload finished. Results (the status written) stay in the
 * markers, readable in the Temporal UI and by `arena-source history`.
 */
const LOCAL_ACTIVITIES = 'local-activities';
/**
 * Every patch this workflow asks. A run that takes LOCAL_ACTIVITIES takes all of them at once, before
 * its first local activity: on replay the Temporal core cannot match a patch marker recorded after a
 * local activity's marker in the same workflow task (the workflow asks patched() only once the local
 * result is delivered, after the core has moved past the marker: a nondeterminism error).
 */
const EVERY_PATCH = [
  STALLED_SOURCE_HANDLES_EVERY_SIGNAL,
  CARRIED_RECONCILE_WAKES,
  UNCHANGED_CYCLE_ONE_ACTIVITY,
  BUNDLE_VALIDATION,
  FAILURE_BACKOFF,
  VERIFICATION_FAILED_REJECTS_REVISION,
  SHORT_RUNS,
  LEAN_CYCLE_WITH_WORK,
  SHARED_POLL_LISTINGS,
  WATCH_ATTRIBUTES_KEPT,
];
/**
 * LOCAL_ACTIVITIES and EVERY_PATCH for one marker, asked first in every run this code starts (a new
 * source, a continue-as-new): 2 history events instead of 22 (workflows/patches.ts, adoptedAsOne).
 */
const PATCHES_OF_2026_12 = 'patches-of-2026-12';
/**
 * Pack and upload as local activities on the worker running the workflow task when it holds the
 * checkout (HereActivities), else on the checkout's queue as before. A cycle with work is then two
 * workflow tasks and one activity task (the fetch) instead of four and three. Only with
 * PATCHES_OF_2026_12_B: a run of older code takes it at its next continue-as-new.
 */
const PINNED_STEPS_HERE = 'pinned-steps-here';
/** PATCHES_OF_2026_12 and PINNED_STEPS_HERE for one marker; asked before it (a run of older code answers false). */
const PATCHES_OF_2026_12_B = 'patches-of-2026-12-b';
/**
 * The fetch as a local activity too, on the worker running the workflow task where it fetches at all
 * (HereActivities.fetchSourceHere; a `--role workflows` worker answers no, and the fetch is a remote
 * activity as before). A cycle with work is then one workflow task: resolve, fetch, pack, upload and
 * the status are markers in it, no activity task goes through the server's queues. Only with
 * PATCHES_OF_2026_12_C: a run of older code takes it at its next continue-as-new.
 */
const FETCH_HERE = 'fetch-here';
/** PATCHES_OF_2026_12_B and FETCH_HERE for one marker; asked before both (runs of older code answer false). */
const PATCHES_OF_2026_12_C = 'patches-of-2026-12-c';
/**
 * A run continues as new right after a cycle that fetched. The Temporal core keeps every command of a
 * cached run until the run ends, with what its local activities returned (the fetch, pack and upload
 * results, the status written), and a new source's first run holds its patch marker and search-attribute
 * upserts too: ≈ 50 KiB per cached source (README, benchmark 11). The next run starts with none of it.
 * Costs one action per cycle with work (the run start; the timer moves to the new run). Only with
 * PATCHES_OF_2026_12_D: a run of older code takes it at its next continue-as-new.
 */
const FRESH_RUN_AFTER_WORK = 'fresh-run-after-work';
/** PATCHES_OF_2026_12_C and FRESH_RUN_AFTER_WORK for one marker; asked before them (runs of older code answer false). */
const PATCHES_OF_2026_12_D = 'patches-of-2026-12-d';
/**
 * Between cycles the workflow always waits on a timer, for 1 ms when the next cycle is already due
 * (before: it went straight on to the next cycle in the same workflow task). Whether it was due read
 * the workflow clock, and the core can show a first execution an older clock than the replay of the
 * same task: a query that replays an evicted workflow whose timer has fired, before the task for it
 * starts, runs the next cycle with the clock of the previous task. Its status write then moved the
 * clock past the due time, a second cycle ran in that task, the replay (with the task's own clock)
 * waited instead, and every later task of the run failed with a nondeterminism error. Found by the
 * workflow-cache test (test/e2e/worker-process.test.ts), which queries sources while a worker with a
 * small cache replays them. Only with PATCHES_OF_2026_12_E: a run of older code takes it at its next
 * continue-as-new.
 */
const TIMER_BETWEEN_CYCLES = 'timer-between-cycles';
/** PATCHES_OF_2026_12_D and TIMER_BETWEEN_CYCLES for one marker; asked before them (runs of older code answer false). */
const PATCHES_OF_2026_12_E = 'patches-of-2026-12-e';

/**
 * The loop is the protocol (Temporal's sleep-for-days sample): wait until the next
 * cycle is due or a signal arrives, then do what the spec's mode says. State and
 * handlers live in SourceState; each cycle is resolve → decide → fetch/pack/upload →
 * publish → prune.
 */
export async function arenaSourceWorkflow(input: SourceWorkflowInput): Promise<void> {
  const source = input.source;
  const tuning = input.tuning ?? {};
  const state = new SourceState(input);
  const carried = state.carried;
  adoptedAsOne(carried, PATCHES_OF_2026_12_E, [TIMER_BETWEEN_CYCLES, FRESH_RUN_AFTER_WORK, FETCH_HERE, PINNED_STEPS_HERE, LOCAL_ACTIVITIES, ...EVERY_PATCH]) ||
    adoptedAsOne(carried, PATCHES_OF_2026_12_D, [FRESH_RUN_AFTER_WORK, FETCH_HERE, PINNED_STEPS_HERE, LOCAL_ACTIVITIES, ...EVERY_PATCH]) ||
    adoptedAsOne(carried, PATCHES_OF_2026_12_C, [FETCH_HERE, PINNED_STEPS_HERE, LOCAL_ACTIVITIES, ...EVERY_PATCH]) ||
    adoptedAsOne(carried, PATCHES_OF_2026_12_B, [PINNED_STEPS_HERE, LOCAL_ACTIVITIES, ...EVERY_PATCH]) ||
    adoptedAsOne(carried, PATCHES_OF_2026_12, [LOCAL_ACTIVITIES, ...EVERY_PATCH]);
  // Runs started by older code carry no key: their first publish upserts, as it did then.
  let lastSearchKey = carried.searchKey ?? '';
  let cyclesThisRun = 0;
  /** A cycle of this run fetched, and the run goes on as a fresh one (FRESH_RUN_AFTER_WORK). */
  let freshRunDue = false;

  setHandler(sourceQuery, () => state.asObject(new Date(workflowInfo().startTime)));
  setHandler(countersQuery, () => carried.counters);
  setHandler(updateSpecSignal, (update) => {
    state.updateSpec(update);
    keepWatchAttributes(input, carried, state.spec, update);
  });
  setHandler(suspendSignal, () => state.suspend());
  setHandler(resumeSignal, () => state.resume());
  setHandler(reconcileSignal, (request) => state.reconcile(request));
  setHandler(deleteSignal, () => state.delete());
  if (carried.reconcileRequested && adopted(carried, CARRIED_RECONCILE_WAKES)) state.wakeForCarriedRequest();
  keepWatchAttributes(input, carried, state.spec);

  if (carried.counters.runs === 1 && !carried.status.phase && !adopted(carried, LEAN_CYCLE_WITH_WORK)) await publish({ kind: 'pending' });

  const runIsOver = () => freshRunDue || shouldContinueAsNew(tuning.maxHistoryEvents) || runIsLong(carried, cyclesThisRun, tuning.cyclesPerRun);
  while (!state.deleting) {
    if (runIsOver()) {
      await condition(allHandlersFinished);
      return await continueAsNew<typeof arenaSourceWorkflow>({ ...input, spec: state.spec, carried });
    }
    // The wait and the cycle after it in one scope (one let go per cycle, not two: pass-scope.ts).
    await inPassScope(async () => {
      if (carried.nextCycleAt !== undefined) {
        const dueAt = carried.nextCycleAt;
        await untilDueOrWoken(dueAt);
        carried.nextCycleAt = undefined;
        // What the top of the loop asks between the wait and the cycle, in the same order.
        if (state.deleting || runIsOver()) return;
      }
      await pass();
    });
  }

  // Where it published content, and where the spec points now (in case a publish was cut short).
  const places = [...(carried.contentPlaces ?? []), { targetPath: contentTarget().targetPath }];
  await bookkeeping('remove artifacts and status').removeSource({ source, places });

  /** One pass: what the spec's mode says to do now (a cycle, a suspended or invalid status). */
  async function pass(): Promise<void> {
    const woken = state.startPass();
    const everySignal = adopted(carried, STALLED_SOURCE_HANDLES_EVERY_SIGNAL);
    const mode = state.mode(everySignal);
    switch (mode.kind) {
      case 'suspended':
        await publish({ kind: 'suspended' });
        await condition(() => state.wokenBy());
        break;
      case 'invalid':
        carried.counters.failures += 1;
        await publish({ kind: 'failed', reason: mode.reason, message: mode.message, stalled: true });
        await untilSpecChanges(everySignal);
        break;
      case 'active':
        await runCycle(mode.checked, !woken);
        break;
    }
  }

  /** LOCAL_ACTIVITIES, and with it every other patch (see EVERY_PATCH). */
  function usesLocalActivities(): boolean {
    if (!adopted(carried, LOCAL_ACTIVITIES)) return false;
    for (const patchId of EVERY_PATCH) adopted(carried, patchId);
    return true;
  }

  /** Between cycles: sleep until the interval is up, or a signal wakes us early. */
  async function untilDueOrWoken(dueAt: number): Promise<void> {
    if (state.wokenBy()) return;
    const remaining = dueAt - Date.now();
    // Due already: a timer all the same, so that no choice of commands hangs on the clock (TIMER_BETWEEN_CYCLES).
    if (remaining > 0) await condition(() => state.wokenBy(), remaining);
    else if (taken(carried, TIMER_BETWEEN_CYCLES)) await condition(() => state.wokenBy(), 1);
  }

  /** Stalled on the spec: nothing to retry until it changes, someone asks, or (now) any signal. */
  async function untilSpecChanges(everySignal: boolean): Promise<void> {
    await condition(() => (everySignal ? state.wokenBy() : state.wokenBy('spec', 'reconcile', 'delete')));
  }

  /** Where this source's versions go on the content volume (workers without one ignore it). */
  function contentTarget(): ContentTarget {
    return { targetPath: targetPathOf(state.spec, source.name), history: state.spec.createVersionOnSync !== false };
  }

  /** `scheduled`: the interval (or a retry's backoff) started this cycle, no signal did. */
  async function runCycle(checked: CheckedSpec, scheduled: boolean): Promise<void> {
    carried.counters.cycles += 1;
    cyclesThisRun += 1;
    const startedAt = Date.now();
    const lastFetchTime = now();
    let announced: Promise<void> | undefined;
    let done: { outcome: Outcome; result: CycleReport['result']; event?: SourceEvent };
    // The next cycle is due an interval (±5% jitter, deterministic in workflow code, so a thousand
    // sources do not poll in lockstep) after this one starts; known now, so resolveRevision can write
    // an unchanged cycle's whole status.
    const oneActivity = adopted(carried, UNCHANGED_CYCLE_ONE_ACTIVITY);
    if (oneActivity) carried.nextCycleAt = startedAt + jitteredInterval(checked);
    const lean = adopted(carried, LEAN_CYCLE_WITH_WORK);
    const previousChecksum = carried.status.artifact?.checksum;
    try {
      const ifUnchanged = oneActivity ? unchangedStatus(startedAt, lastFetchTime) : undefined;
      const fetchingAt = now();
      const ifChanged = lean ? fetchingStatus(lastFetchTime, fetchingAt) : undefined;
      const resolved = await resolve(checked, scheduled, ifUnchanged, ifChanged && { status: ifChanged, at: fetchingAt });
      // What resolveRevision wrote: derived from when it wrote it (older code returned the status itself).
      const written =
        resolved.written ?? (resolved.writtenAt && ifUnchanged ? unchangedCycleStatus(ifUnchanged, resolved.writtenAt, resolved.content) : undefined);
      if (isNoop(resolved) && written) {
        // Written by resolveRevision: keep the workflow's copy, the search attributes, and prune if due.
        carried.counters.noops += 1;
        carried.status = written;
        // A reconcile requested while resolveRevision ran is echoed by the next status, not lost.
        if (carried.pendingReconcileAt === ifUnchanged?.context.lastHandledReconcileAt) carried.pendingReconcileAt = undefined;
        carried.lastFailure = undefined;
        carried.failedCycles = undefined;
        upsertStateAttributes();
        await pruneIfDue(false, written.artifact!);
        return;
      }
      if (isNoop(resolved)) {
        carried.counters.noops += 1;
        done = { outcome: { kind: 'ready', artifact: resolved.current!, ...(resolved.content ? { content: resolved.content } : {}) }, result: 'noop' };
      } else {
        // Progressive status, as Flux does it: Fetching is written only when there is work,
        // so an unchanged source costs one status write per cycle, not two. resolveRevision wrote
        // it; if it could not, the write runs alongside the fetch (it only informs) and the final
        // write waits for it, so they land in order.
        if (resolved.changedWritten && ifChanged) {
          carried.status = ifChanged;
          upsertStateAttributes();
        } else {
          announced = publish({ kind: 'fetching' }, { lastFetchTime });
        }
        done = await fetchNew(checked, resolved);
      }
    } catch (err) {
      done = failed(err, checked);
    }
    const { outcome, result, event } = done;
    const stalled = outcome.kind === 'failed' && outcome.stalled;
    const dueAt = retryAt(outcome, checked) ?? (oneActivity ? carried.nextCycleAt! : Date.now() + jitteredInterval(checked));
    carried.nextCycleAt = dueAt;
    const nextFetchTime = stalled ? undefined : new Date(dueAt).toISOString();
    if (outcome.kind === 'ready') {
      carried.lastFailure = undefined;
      carried.failedCycles = undefined;
    }
    const cycle: CycleReport = { result, type: state.spec.type, durationMs: Date.now() - startedAt };
    await announced;
    await publish(outcome, { lastFetchTime, ...(nextFetchTime ? { nextFetchTime } : {}) }, event, cycle);
    if (outcome.kind === 'ready') {
      // Something to prune only once a second, different artifact exists (or a deferred prune is due).
      const replaced = result === 'fetched' && !(lean && (previousChecksum === undefined || previousChecksum === outcome.artifact.checksum));
      await pruneIfDue(replaced, outcome.artifact);
      if (result === 'fetched' && taken(carried, FRESH_RUN_AFTER_WORK)) freshRunDue = true;
    }
    if (stalled) await untilSpecChanges(adopted(carried, STALLED_SOURCE_HANDLES_EVERY_SIGNAL));
  }

  /** After a failure worth retrying, the next cycle is due after the backoff (the first success returns to the interval). */
  function retryAt(outcome: Outcome, checked: CheckedSpec): number | undefined {
    if (outcome.kind !== 'failed' || !backsOff(outcome.reason, outcome.stalled) || !adopted(carried, FAILURE_BACKOFF)) return undefined;
    carried.failedCycles = (carried.failedCycles ?? 0) + 1;
    return Date.now() + retryDelayMs(carried.failedCycles, checked.intervalMs, Math.random());
  }

  /** What an unchanged cycle's status is computed from (by nextStatus, in resolveRevision). */
  function unchangedStatus(startedAt: number, lastFetchTime: string): UnchangedStatus {
    return {
      previous: carried.status,
      context: {
        generation: carried.generation,
        lastFetchTime,
        nextFetchTime: new Date(carried.nextCycleAt!).toISOString(),
        ...(carried.pendingReconcileAt ? { lastHandledReconcileAt: carried.pendingReconcileAt } : {}),
      },
      startedAt,
      type: state.spec.type,
    };
  }

  /** The Fetching status of a cycle with work (written by resolveRevision, or by publish). */
  function fetchingStatus(lastFetchTime: string, at: string): ArenaSourceStatus {
    return fetchingStatusOf({ previous: carried.status, context: { generation: carried.generation, lastFetchTime } }, at);
  }

  /** Step 1: the source's revision now (one round trip); the stored artifact rides along to be re-verified. */
  async function resolve(checked: CheckedSpec, scheduled: boolean, ifUnchanged?: UnchangedStatus, ifChanged?: { status: ArenaSourceStatus; at: string }) {
    const current = carried.status.artifact;
    const identity = contentIdentity(state.spec);
    // Only an artifact built from this same content-relevant spec can make the cycle a no-op.
    const candidate =
      current?.checksum && carried.artifactIdentity === identity
        ? { revision: current.revision, checksum: current.checksum, ...(current.version ? { version: current.version } : {}) }
        : undefined;
    const rejected = carried.rejected;
    const refused = rejected && rejected.identity === identity ? { unlessRevision: rejected.revision } : {};
    const poll = scheduled && candidate !== undefined && state.spec.type === 'git' && adopted(carried, SHARED_POLL_LISTINGS);
    const summary = `resolve ${describeSource(state.spec)}`;
    const local = usesLocalActivities();
    const resolver = local ? resolveLocally(checked, summary) : sharedActivities(checked, summary, tuning.heartbeatTimeoutMs);
    // The core keeps every cycle's local input until the run ends, so a local resolve is sent no status:
    // the previous one by its fingerprint (this worker wrote it: src/status/last-statuses.ts), and the
    // Fetching one by its time (computed from the previous one, as here). Remotely the activity may run
    // on another, or an older, worker: both whole.
    const sendUnchanged = candidate !== undefined && ifUnchanged !== undefined;
    const byDigest = local && sendUnchanged;
    const fetching = ifChanged && (byDigest ? { at: ifChanged.at } : { status: ifChanged.status });
    const result = await resolver.resolveRevision({
      source,
      spec: state.spec,
      ...(candidate ? { current: candidate } : {}),
      target: contentTarget(),
      ...(sendUnchanged ? { ifUnchanged: byDigest ? withDigest(ifUnchanged) : ifUnchanged } : {}),
      ...(fetching ? { ifChanged: { ...fetching, ...refused } } : {}),
      ...(poll ? { poll } : {}),
    });
    if (rejected && rejected.revision === result.revision && rejected.identity === identity) {
      // The same content was refused before (unsafe or too large): do not download it again every interval.
      throw ApplicationFailure.create({
        type: rejected.reason,
        message: `${rejected.message} (revision '${result.revision}' was rejected; waiting for a new revision)`,
        nonRetryable: true,
      });
    }
    return { ...result, identity, current: candidate ? current : undefined };
  }

  /** UnchangedStatus with its previous status as a fingerprint (UnchangedStatusByDigest). */
  function withDigest({ previous, ...rest }: UnchangedStatus): UnchangedStatusByDigest {
    return { ...rest, previousDigest: statusDigest(previous) };
  }

  /** Step 2: nothing moved and the stored artifact (and content version) verified. */
  function isNoop(resolved: Awaited<ReturnType<typeof resolve>>): boolean {
    return resolved.current !== undefined && resolved.current.revision === resolved.revision && resolved.currentValid === true;
  }

  /** Step 3: fetch, pack and upload the revision resolve saw. */
  async function fetchNew(checked: CheckedSpec, resolved: Awaited<ReturnType<typeof resolve>>) {
    const { artifact, content, bundle, verified } = await fetchPackUpload(checked, resolved.revision, resolved.id).catch((err: unknown) => {
      const failure = describeFailure(err, checked);
      if (rejectsRevision(failure.reason)) carried.rejected = { revision: resolved.revision, identity: resolved.identity, ...failure };
      throw err;
    });
    carried.rejected = undefined;
    carried.artifactIdentity = resolved.identity;
    carried.counters.fetches += 1;
    const stored = `stored artifact for revision '${artifact.revision}' (${artifact.checksum ?? ''}, ${artifact.size ?? 0} bytes)`;
    const event: SourceEvent =
      bundle && !bundle.valid
        ? { type: 'Warning', reason: INVALID_BUNDLE, message: `${stored}, but the bundle is not valid (spec.validation: warn): ${bundle.message}` }
        : { type: 'Normal', reason: 'FetchSucceeded', message: stored };
    const outcome: Outcome = { kind: 'ready', artifact, ...(content ? { content } : {}), ...(bundle ? { bundle } : {}), verified: verified ?? false };
    return { outcome, result: 'fetched' as const, event };
  }

  /** Failures decided by the revision itself: the same revision is not fetched again. */
  function rejectsRevision(reason: string): boolean {
    if (CONTENT_REJECTIONS.includes(reason)) return true;
    // Asked only where a verification failed: histories without one never see the marker.
    return reason === 'VerificationFailed' && adopted(carried, VERIFICATION_FAILED_REJECTS_REVISION);
  }

  function failed(err: unknown, checked: CheckedSpec): { outcome: Outcome; result: 'failed'; event?: SourceEvent } {
    carried.counters.failures += 1;
    const failure = describeFailure(err, checked);
    // One event per distinct failure, not one per interval while a source stays down.
    const event: SourceEvent | undefined =
      carried.lastFailure !== failure.message ? { type: 'Warning', reason: 'FetchFailed', message: failure.message } : undefined;
    carried.lastFailure = failure.message;
    return {
      outcome: { kind: 'failed', ...failure, stalled: SPEC_REASONS.includes(failure.reason as FailureReason) },
      result: 'failed',
      ...(event ? { event } : {}),
    };
  }

  /** Step 4: every status change goes through nextStatus, then to the sink (and the search attributes). */
  async function publish(outcome: Outcome, extra: { lastFetchTime?: string; nextFetchTime?: string } = {}, event?: SourceEvent, cycle?: CycleReport) {
    const handledReconcile = outcome.kind === 'fetching' ? undefined : carried.pendingReconcileAt;
    carried.status = nextStatus(carried.status, outcome, {
      now: now(),
      generation: carried.generation,
      ...extra,
      ...(handledReconcile ? { lastHandledReconcileAt: handledReconcile } : {}),
    });
    if (handledReconcile) carried.pendingReconcileAt = undefined;
    upsertStateAttributes();
    try {
      await bookkeeping(`status ${carried.status.phase ?? ''}`, usesLocalActivities()).reportStatus({
        source,
        status: carried.status,
        ...(event ? { event } : {}),
        ...(cycle ? { cycle } : {}),
      });
    } catch (err) {
      // The workflow's own state (and its query) stays right; the sink catches up next time.
      log.warn('status could not be written', { error: String(err) });
    }
  }

  /** Phase and revision are searchable; upserted only on change (each upsert is a history event). */
  function upsertStateAttributes(): void {
    if (!input.searchAttributes) return;
    const key = `${carried.status.phase}|${carried.status.artifact?.revision ?? ''}`;
    if (key === lastSearchKey) return;
    upsertSearchAttributes(stateAttributes(carried.status));
    lastSearchKey = key;
    carried.searchKey = key;
  }

  /**
   * Step 5, retention: after a new artifact, and again once older ones have waited out their TTL.
   * Best effort — a failed prune never fails the cycle; the next one continues it.
   */
  async function pruneIfDue(published: boolean, artifact: Artifact): Promise<void> {
    const due = carried.pruneDueAt !== undefined && Date.parse(carried.pruneDueAt) <= Date.now();
    if (!published && !due) return;
    try {
      const result = await bookkeeping(`prune artifacts (keeping ${artifact.checksum ?? ''})`, usesLocalActivities()).pruneArtifacts({
        source,
        current: artifact.checksum ?? '',
        target: contentTarget(),
      });
      carried.pruneDueAt = result.nextDueAt;
    } catch (err) {
      log.warn('pruning artifacts failed; the next cycle retries', { error: String(err) });
    }
  }

  /**
   * Fetch on any worker, then pack and upload on the worker that holds the checkout: as local
   * activities when that is the worker running this workflow task (PINNED_STEPS_HERE), else on its queue.
   * `id` is the commit or digest resolveRevision saw (older histories have none: the revision is parsed).
   */
  async function fetchPackUpload(
    checked: CheckedSpec,
    resolved: string,
    id?: string,
  ): Promise<{ artifact: Artifact; content?: ContentReport; bundle?: BundleReport; verified?: string }> {
    const validation = adopted(carried, BUNDLE_VALIDATION) ? bundleValidationOf(state.spec) : undefined;
    const fetchInput = { source, spec: state.spec, revision: resolved, ...(id !== undefined ? { id } : {}) };
    for (let attempt = 1; ; attempt++) {
      const fetched = await fetchSource(checked, `fetch ${resolved}`, fetchInput);
      const heldBy = { workerQueue: fetched.workerQueue };
      // Once a local step hears the checkout is elsewhere, the rest of the cycle goes to its queue.
      let tryHere = taken(carried, PINNED_STEPS_HERE);
      async function step<T>(summary: string, here: (a: HereActivities) => Promise<Here<T>>, there: (a: PinnedActivities) => Promise<T>): Promise<T> {
        if (tryHere) {
          const answer = await here(hereActivities(checked, summary));
          if (answer.here) return answer.result;
          tryHere = false;
        }
        return await there(
          proxyActivities<PinnedActivities>({
            taskQueue: fetched.workerQueue,
            startToCloseTimeout: checked.timeoutMs,
            scheduleToStartTimeout: tuning.pinnedScheduleToStartMs ?? DEFAULT_PINNED_SCHEDULE_TO_START_MS,
            heartbeatTimeout: Math.min(tuning.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS, checked.timeoutMs),
            retry: retryPolicy(),
            summary,
          }),
        );
      }
      try {
        const packInput = { workDir: fetched.workDir, bundleDir: fetched.bundleDir, ...(validation ? { validation } : {}) };
        const packed = await step(
          `pack ${fetched.revision}`,
          (a) => a.packBundleHere({ ...packInput, ...heldBy }),
          (a) => a.packBundle(packInput),
        );
        const uploadInput = { source, workDir: fetched.workDir, archivePath: packed.archivePath, checksum: packed.checksum, target: contentTarget() };
        const uploaded = await step(
          `upload ${packed.checksum} (${packed.size} bytes, ${packed.files} entries)`,
          (a) => a.uploadArtifactHere({ ...uploadInput, ...heldBy }),
          (a) => a.uploadArtifact(uploadInput),
        );
        return {
          ...artifactOf(fetched.revision, uploaded),
          ...(packed.bundle ? { bundle: packed.bundle } : {}),
          ...(fetched.verified !== undefined ? { verified: fetched.verified } : {}),
        };
      } catch (err) {
        if (workerLost(err) && attempt < PIPELINE_ATTEMPTS) {
          log.warn('worker holding the checkout is gone; fetching again elsewhere', { attempt });
          continue;
        }
        if (!workerLost(err)) {
          const workDir = { workDir: fetched.workDir };
          await step('discard work directory', (a) => a.discardWorkDirHere({ ...workDir, ...heldBy }), (a) => a.discardWorkDir(workDir)).catch(() => undefined);
        }
        throw err;
      }
    }
  }

  /** The fetch: on this worker, inside the workflow task, where it fetches (FETCH_HERE); else on any worker's. */
  async function fetchSource(checked: CheckedSpec, summary: string, input: FetchSourceInput): Promise<FetchSourceResult> {
    if (taken(carried, FETCH_HERE)) {
      const answer = await hereActivities(checked, summary).fetchSourceHere(input);
      if (answer.here) return answer.result;
    }
    return await sharedActivities(checked, summary, tuning.heartbeatTimeoutMs).fetchSource(input);
  }

  /** The status artifact (and content report) for what uploadArtifact published. */
  function artifactOf(revision: string, uploaded: UploadArtifactResult): { artifact: Artifact; content?: ContentReport } {
    const previous = carried.status.artifact;
    // Same bytes as before (e.g. a commit outside `path`): keep URL and time, so consumers are not churned.
    const unchanged = previous?.checksum === uploaded.checksum && previous.url === uploaded.url;
    const version = uploaded.content;
    const targetPath = contentTarget().targetPath;
    if (version && !(carried.contentPlaces ?? []).some((p) => p.workspace === version.workspace && p.targetPath === targetPath)) {
      carried.contentPlaces = [...(carried.contentPlaces ?? []), { workspace: version.workspace, targetPath }];
    }
    const artifact: Artifact = {
      revision,
      url: uploaded.url,
      checksum: uploaded.checksum,
      size: uploaded.size,
      lastUpdateTime: unchanged && previous ? previous.lastUpdateTime : now(),
      ...(version ? { contentPath: version.contentPath, version: version.version } : {}),
    };
    return {
      artifact,
      ...(version ? { content: { versionCount: version.versionCount, ...(version.created ? { created: version.version } : {}) } } : {}),
    };
  }
}

const now = () => new Date(Date.now()).toISOString();

function jitteredInterval(checked: CheckedSpec): number {
  return Math.round(checked.intervalMs * (0.95 + Math.random() * 0.1));
}

/** Activities on the shared queue; `summary` is what the Temporal UI shows on the history row. */
function sharedActivities(checked: CheckedSpec, summary: string, heartbeatTimeoutMs = DEFAULT_HEARTBEAT_TIMEOUT_MS) {
  return proxyActivities<SharedActivities>({
    startToCloseTimeout: checked.timeoutMs,
    heartbeatTimeout: Math.min(heartbeatTimeoutMs, checked.timeoutMs),
    retry: retryPolicy(),
    summary,
  });
}

/**
 * resolveRevision as a local activity: it runs on the worker holding the workflow, inside the
 * workflow task, and its result is one marker event. No heartbeat: a worker that dies mid-call
 * loses the workflow task, and the next worker runs the call again.
 */
function resolveLocally(checked: CheckedSpec, summary: string) {
  return proxyLocalActivities<Pick<SharedActivities, 'resolveRevision'>>({ startToCloseTimeout: checked.timeoutMs, retry: retryPolicy(), summary });
}

/** The fetch and the pinned steps as local activities on this worker (HereActivities): the spec's timeout, the usual retries. */
function hereActivities(checked: CheckedSpec, summary: string) {
  return proxyLocalActivities<HereActivities>({ startToCloseTimeout: checked.timeoutMs, retry: retryPolicy(), summary });
}

/** One line naming what a cycle fetches (URLs come from the spec, which never holds credentials). */
function describeSource(spec: SourceWorkflowInput['spec']): string {
  if (spec.type === 'git' && spec.git) {
    const ref = spec.git.ref ?? {};
    const which = ref.commit
      ? `commit ${ref.commit}`
      : ref.name
        ? `ref ${ref.name}`
        : ref.semver
          ? `semver ${ref.semver}`
          : ref.tag
            ? `tag ${ref.tag}`
            : ref.branch
              ? `branch ${ref.branch}`
              : 'default branch';
    return `git ${spec.git.url} ${which}${spec.git.path ? ` path ${spec.git.path}` : ''}`;
  }
  if (spec.type === 'oci' && spec.oci) {
    const ref = spec.oci.ref;
    const which = ref?.digest ? ` digest ${ref.digest}` : ref?.semver ? ` semver ${ref.semver}` : ref?.tag ? ` tag ${ref.tag}` : '';
    return `oci ${spec.oci.url}${which}`;
  }
  if (spec.type === 'configmap' && spec.configMap) return `configmap ${spec.configMap.name} key ${spec.configMap.key ?? 'pack.json'}`;
  if (spec.type === 'workspace' && spec.workspace) return `workspace directory ${spec.workspace.path}`;
  return spec.type;
}

function retryPolicy() {
  return {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumInterval: '30s',
    maximumAttempts: 3,
    nonRetryableErrorTypes: [...NON_RETRYABLE_REASONS],
  };
}

/**
 * Short runs: after `cyclesPerRun` cycles the run continues as new (between cycles, before
 * the wait), so a workflow evicted from a worker's cache replays at most that many cycles.
 * patched() is asked only once the count is reached: histories of older code replay as before.
 */
function runIsLong(carried: CarriedState, cyclesThisRun: number, cyclesPerRun = DEFAULT_CYCLES_PER_RUN): boolean {
  return cyclesThisRun >= cyclesPerRun && adopted(carried, SHORT_RUNS);
}

function shouldContinueAsNew(maxHistoryEvents = DEFAULT_MAX_HISTORY_EVENTS): boolean {
  const info = workflowInfo();
  return info.continueAsNewSuggested || info.historyLength >= maxHistoryEvents;
}

function workerLost(err: unknown): boolean {
  return (
    err instanceof ActivityFailure &&
    err.cause instanceof TimeoutFailure &&
    err.cause.timeoutType === 'SCHEDULE_TO_START'
  );
}

/** Maps an activity failure to a condition reason and a message a person can act on. */
function describeFailure(err: unknown, checked: CheckedSpec): { reason: string; message: string } {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure) {
    return { reason: isFailureReason(cause.type) ? cause.type : 'FetchFailed', message: cause.message };
  }
  if (cause instanceof TimeoutFailure && cause.timeoutType === 'HEARTBEAT') {
    // Not the source's fault: the worker running the step went silent (killed, or starved of CPU).
    return { reason: 'FetchFailed', message: 'the worker running this step stopped responding (no heartbeat) on every attempt; the next cycle tries again' };
  }
  if (cause instanceof TimeoutFailure) {
    return {
      reason: 'FetchFailed',
      message: `timed out after ${formatMillis(checked.timeoutMs)} (spec.timeout); the source is slow or unreachable`,
    };
  }
  return { reason: 'FetchFailed', message: cause instanceof Error ? cause.message : String(cause) };
}

export type { ArenaSourceStatus };
