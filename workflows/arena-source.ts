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
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { ContentTarget, CycleReport, PinnedActivities, SharedActivities } from '../activities/types.js';
import { canonicalJson } from '../src/api/canonical.js';
import { formatMillis } from '../src/api/duration.js';
import { API_VERSION, KIND } from '../src/api/group-version.js';
import type { Artifact, ArenaSource, ArenaSourceStatus } from '../src/api/schema.js';
import { checkSpec, contentIdentity, targetPathOf, targetPathOfContentPath, type CheckedSpec } from '../src/api/spec-rules.js';
import { nextStatus, type ContentReport, type Outcome } from '../src/api/status.js';
import { SPEC_REASONS, isFailureReason, type FailureReason } from '../src/errors.js';
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

/** Errors that retrying the same input cannot fix. */
const NON_RETRYABLE = ['InvalidSpec', 'InvalidTargetPath', 'AuthenticationFailed', 'SecretNotFound', 'ArtifactTooLarge', 'UnsafeContent'];
const DEFAULT_MAX_HISTORY_EVENTS = 5_000;
const DEFAULT_PINNED_SCHEDULE_TO_START_MS = 30_000;
/** Activities heartbeat every 2 s; a worker silent this long is presumed dead and the attempt is retried. */
const DEFAULT_HEARTBEAT_TIMEOUT_MS = 15_000;
/** Failures decided by the content of a revision: retrying the same revision cannot succeed. */
const CONTENT_REJECTIONS = ['UnsafeContent', 'ArtifactTooLarge'];
/** How often one cycle re-fetches on another worker after losing the one holding the checkout. */
const PIPELINE_ATTEMPTS = 3;

/** Status writes and cleanup: short, retried a few times, independent of the source's timeout. */
function bookkeeping(summary: string) {
  return proxyActivities<Pick<SharedActivities, 'reportStatus' | 'removeSource' | 'pruneArtifacts'>>({
    startToCloseTimeout: '30s',
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '10s', maximumAttempts: 5 },
    summary,
  });
}

export async function arenaSourceWorkflow(input: SourceWorkflowInput): Promise<void> {
  const source = input.source;
  const tuning = input.tuning ?? {};
  let spec = input.spec;
  const state: CarriedState = input.carried ?? {
    status: {},
    generation: input.generation ?? 1,
    counters: { cycles: 0, noops: 0, fetches: 0, failures: 0, runs: 0 },
    reconcileRequested: false,
  };
  state.counters.runs += 1;
  let lastSearchKey = '';
  let wake = false;
  let specChanged = false;
  let deleting = false;

  setHandler(sourceQuery, (): ArenaSource => ({
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: {
      name: source.name,
      namespace: source.namespace,
      generation: state.generation,
      ...(input.metadata?.uid ? { uid: input.metadata.uid } : {}),
      ...(input.metadata?.labels ? { labels: input.metadata.labels } : {}),
      creationTimestamp: input.metadata?.creationTimestamp ?? new Date(workflowInfo().startTime).toISOString(),
    },
    spec,
    status: state.status,
  }));
  setHandler(countersQuery, () => state.counters);
  setHandler(updateSpecSignal, ({ spec: next, generation }) => {
    if (canonicalJson(next) === canonicalJson(spec)) {
      // Same spec re-applied: nothing to do (a newer generation number is still recorded).
      if (generation !== undefined && generation > state.generation) state.generation = generation;
      return;
    }
    spec = next;
    state.generation = generation ?? state.generation + 1;
    specChanged = true;
    wake = true;
  });
  setHandler(suspendSignal, () => {
    if (spec.suspend) return;
    spec = { ...spec, suspend: true };
    state.generation += 1;
    wake = true;
  });
  setHandler(resumeSignal, () => {
    if (!spec.suspend) return;
    spec = { ...spec, suspend: false };
    state.generation += 1;
    wake = true;
  });
  setHandler(reconcileSignal, (request) => {
    state.reconcileRequested = true;
    if (request?.requestedAt) state.pendingReconcileAt = request.requestedAt;
    wake = true;
  });
  setHandler(deleteSignal, () => {
    deleting = true;
    wake = true;
  });

  const now = () => new Date(Date.now()).toISOString();

  async function publish(
    outcome: Outcome,
    extra: { lastFetchTime?: string; nextFetchTime?: string } = {},
    event?: SourceEvent,
    cycle?: CycleReport,
  ) {
    const handledReconcile = outcome.kind === 'fetching' ? undefined : state.pendingReconcileAt;
    state.status = nextStatus(state.status, outcome, {
      now: now(),
      generation: state.generation,
      ...extra,
      ...(handledReconcile ? { lastHandledReconcileAt: handledReconcile } : {}),
    });
    if (handledReconcile) state.pendingReconcileAt = undefined;
    // Phase and revision are searchable; upsert only on change (each upsert is a history event).
    if (input.searchAttributes) {
      const key = `${state.status.phase}|${state.status.artifact?.revision ?? ''}`;
      if (key !== lastSearchKey) {
        upsertSearchAttributes(stateAttributes(state.status));
        lastSearchKey = key;
      }
    }
    try {
      await bookkeeping(`status ${state.status.phase ?? ''}`).reportStatus({ source, status: state.status, ...(event ? { event } : {}), ...(cycle ? { cycle } : {}) });
    } catch (err) {
      // The workflow's own state (and its query) stays right; the sink catches up next time.
      log.warn('status could not be written', { error: String(err) });
    }
  }

  if (state.counters.runs === 1 && !state.status.phase) await publish({ kind: 'pending' });

  while (!deleting) {
    if (shouldContinueAsNew(tuning.maxHistoryEvents)) {
      await condition(allHandlersFinished);
      return await continueAsNew<typeof arenaSourceWorkflow>({ ...input, spec, carried: state });
    }
    if (state.nextCycleAt !== undefined) {
      // Between cycles: sleep until the interval is up, or a signal wakes us early.
      const remaining = state.nextCycleAt - Date.now();
      if (remaining > 0 && !wake) await condition(() => wake, remaining);
      state.nextCycleAt = undefined;
      continue;
    }
    wake = false;
    specChanged = false;
    state.reconcileRequested = false;

    const check = checkSpec(spec);
    if (!check.ok) {
      state.counters.failures += 1;
      await publish({ kind: 'failed', reason: check.reason, message: check.problems.join('; '), stalled: true });
      await condition(() => specChanged || deleting || state.reconcileRequested);
      continue;
    }
    if (spec.suspend) {
      await publish({ kind: 'suspended' });
      await condition(() => wake);
      continue;
    }
    await runCycle(check.checked);
  }

  const lastContentPath = state.status.artifact?.contentPath;
  const targetPaths = [contentTarget().targetPath, ...(lastContentPath ? [targetPathOfContentPath(lastContentPath) ?? ''] : [])];
  await bookkeeping('remove artifacts and status').removeSource({ source, targetPaths: [...new Set(targetPaths.filter(Boolean))] });

  /** Where this source's versions go on the content volume (workers without one ignore it). */
  function contentTarget(): ContentTarget {
    return { targetPath: targetPathOf(spec, source.name), history: spec.createVersionOnSync !== false };
  }

  async function runCycle(checked: CheckedSpec): Promise<void> {
    state.counters.cycles += 1;
    const startedAt = Date.now();
    let result: CycleReport['result'] = 'failed';
    const lastFetchTime = now();
    let announced: Promise<void> | undefined;
    let outcome: Outcome;
    let event: SourceEvent | undefined;
    try {
      const current = state.status.artifact;
      const identity = contentIdentity(spec);
      // Only an artifact built from this same content-relevant spec can make the cycle a no-op.
      const candidate =
        current?.checksum && state.artifactIdentity === identity
          ? { revision: current.revision, checksum: current.checksum, ...(current.version ? { version: current.version } : {}) }
          : undefined;
      const { revision, currentValid, content } = await sharedActivities(checked, `resolve ${describeSource(spec)}`, tuning.heartbeatTimeoutMs).resolveRevision({
        source,
        spec,
        ...(candidate ? { current: candidate } : {}),
        target: contentTarget(),
      });
      const rejected = state.rejected;
      if (rejected && rejected.revision === revision && rejected.identity === identity) {
        // The same content was refused before (unsafe or too large): do not download it again every interval.
        throw ApplicationFailure.create({
          type: rejected.reason,
          message: `${rejected.message} (revision '${revision}' was rejected; waiting for a new revision)`,
          nonRetryable: true,
        });
      }
      if (current && candidate && candidate.revision === revision && currentValid === true) {
        state.counters.noops += 1;
        outcome = { kind: 'ready', artifact: current, ...(content ? { content } : {}) };
        result = 'noop';
      } else {
        // Progressive status, as Flux does it: Fetching is written only when there is work,
        // so an unchanged source costs one status write per cycle, not two. The write runs
        // alongside the fetch (it only informs); the final write waits for it, so they land in order.
        announced = publish({ kind: 'fetching' }, { lastFetchTime });
        const { artifact, content } = await fetchPackUpload(checked, revision).catch((err: unknown) => {
          const failure = describeFailure(err, checked);
          if (CONTENT_REJECTIONS.includes(failure.reason)) state.rejected = { revision, identity, ...failure };
          throw err;
        });
        state.rejected = undefined;
        state.artifactIdentity = identity;
        state.counters.fetches += 1;
        outcome = { kind: 'ready', artifact, ...(content ? { content } : {}) };
        result = 'fetched';
        event = {
          type: 'Normal',
          reason: 'FetchSucceeded',
          message: `stored artifact for revision '${artifact.revision}' (${artifact.checksum ?? ''}, ${artifact.size ?? 0} bytes)`,
        };
      }
    } catch (err) {
      state.counters.failures += 1;
      const failure = describeFailure(err, checked);
      outcome = { kind: 'failed', ...failure, stalled: SPEC_REASONS.includes(failure.reason as FailureReason) };
      // One event per distinct failure, not one per interval while a source stays down.
      if (state.lastFailure !== failure.message) event = { type: 'Warning', reason: 'FetchFailed', message: failure.message };
      state.lastFailure = failure.message;
    }
    const stalled = outcome.kind === 'failed' && outcome.stalled;
    // ±5% jitter (deterministic in workflow code) so a thousand sources do not poll in lockstep.
    state.nextCycleAt = Date.now() + Math.round(checked.intervalMs * (0.95 + Math.random() * 0.1));
    const nextFetchTime = stalled ? undefined : new Date(state.nextCycleAt).toISOString();
    if (outcome.kind === 'ready') state.lastFailure = undefined;
    const cycle: CycleReport = { result, type: spec.type, durationMs: Date.now() - startedAt };
    await announced;
    await publish(outcome, { lastFetchTime, ...(nextFetchTime ? { nextFetchTime } : {}) }, event, cycle);
    if (outcome.kind === 'ready') await pruneIfDue(result === 'fetched', outcome.artifact);
    // Stalled: nothing to retry until the spec changes (or someone asks explicitly).
    if (stalled) await condition(() => specChanged || deleting || state.reconcileRequested);
  }

  /**
   * Retention: after a new artifact, and again once older ones have waited out their TTL.
   * Best effort — a failed prune never fails the cycle; the next one continues it.
   */
  async function pruneIfDue(published: boolean, artifact: Artifact): Promise<void> {
    const due = state.pruneDueAt !== undefined && Date.parse(state.pruneDueAt) <= Date.now();
    if (!published && !due) return;
    try {
      const result = await bookkeeping(`prune artifacts (keeping ${artifact.checksum ?? ''})`).pruneArtifacts({
        source,
        current: artifact.checksum ?? '',
        target: contentTarget(),
      });
      state.pruneDueAt = result.nextDueAt;
    } catch (err) {
      log.warn('pruning artifacts failed; the next cycle retries', { error: String(err) });
    }
  }

  /** Fetch on any worker, then pack and upload on the worker that holds the checkout. */
  async function fetchPackUpload(checked: CheckedSpec, resolved: string): Promise<{ artifact: Artifact; content?: ContentReport }> {
    for (let attempt = 1; ; attempt++) {
      const fetched = await sharedActivities(checked, `fetch ${resolved}`, tuning.heartbeatTimeoutMs).fetchSource({ source, spec, revision: resolved });
      const pinned = (summary: string) =>
        proxyActivities<PinnedActivities>({
          taskQueue: fetched.workerQueue,
          startToCloseTimeout: checked.timeoutMs,
          scheduleToStartTimeout: tuning.pinnedScheduleToStartMs ?? DEFAULT_PINNED_SCHEDULE_TO_START_MS,
          heartbeatTimeout: Math.min(tuning.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS, checked.timeoutMs),
          retry: retryPolicy(),
          summary,
        });
      try {
        const packed = await pinned(`pack ${fetched.revision}`).packBundle({ workDir: fetched.workDir, bundleDir: fetched.bundleDir });
        const uploaded = await pinned(`upload ${packed.checksum} (${packed.size} bytes, ${packed.files} entries)`).uploadArtifact({
          source,
          workDir: fetched.workDir,
          archivePath: packed.archivePath,
          checksum: packed.checksum,
          target: contentTarget(),
        });
        const previous = state.status.artifact;
        // Same bytes as before (e.g. a commit outside `path`): keep URL and time, so consumers are not churned.
        const unchanged = previous?.checksum === uploaded.checksum && previous.url === uploaded.url;
        const version = uploaded.content;
        const artifact: Artifact = {
          revision: fetched.revision,
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
      } catch (err) {
        if (workerLost(err) && attempt < PIPELINE_ATTEMPTS) {
          log.warn('worker holding the checkout is gone; fetching again elsewhere', { attempt });
          continue;
        }
        if (!workerLost(err)) await pinned('discard work directory').discardWorkDir({ workDir: fetched.workDir }).catch(() => undefined);
        throw err;
      }
    }
  }
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

/** One line naming what a cycle fetches (URLs come from the spec, which never holds credentials). */
function describeSource(spec: SourceWorkflowInput['spec']): string {
  if (spec.type === 'git' && spec.git) {
    const ref = spec.git.ref ?? {};
    const which = ref.commit ? `commit ${ref.commit}` : ref.tag ? `tag ${ref.tag}` : ref.branch ? `branch ${ref.branch}` : 'default branch';
    return `git ${spec.git.url} ${which}${spec.git.path ? ` path ${spec.git.path}` : ''}`;
  }
  if (spec.type === 'oci' && spec.oci) return `oci ${spec.oci.url}`;
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
    nonRetryableErrorTypes: NON_RETRYABLE,
  };
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
  if (cause instanceof TimeoutFailure) {
    return {
      reason: 'FetchFailed',
      message: `timed out after ${formatMillis(checked.timeoutMs)} (spec.timeout); the source is slow or unreachable`,
    };
  }
  return { reason: 'FetchFailed', message: cause instanceof Error ? cause.message : String(cause) };
}

export type { ArenaSourceStatus };
