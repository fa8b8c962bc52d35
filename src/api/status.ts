/**
 * The one function through which every status change goes: phase and conditions
 * are computed together from what the cycle found, so they can never disagree.
 * Pure (time is passed in), because the workflow computes status itself and the
 * activities only write it down.
 */
import { SPEC_REASONS, type FailureReason } from '../errors.js';
import type { Artifact, ArenaSourceStatus, Condition, ConditionType, Phase } from './schema.js';
import { canonicalJson } from './canonical.js';

export type Outcome =
  /** Accepted, nothing fetched yet. */
  | { kind: 'pending' }
  /** A cycle started. Ready/ArtifactAvailable keep their values so consumers are not churned. */
  | { kind: 'fetching' }
  /**
   * The cycle ended with this artifact (new, or unchanged and re-verified); `bundle` when it was validated now.
   * `verified`: what spec.*.verify checked for a new artifact (SourceVerified True), false when a new artifact
   * was not verified (no SourceVerified), absent when unchanged (SourceVerified stays).
   */
  | { kind: 'ready'; artifact: Artifact; content?: ContentReport; bundle?: BundleReport; verified?: string | false }
  /** The cycle failed; `stalled` means it will not be retried until the spec changes. */
  | { kind: 'failed'; reason: string; message: string; stalled: boolean }
  | { kind: 'suspended' };

/** What the content volume holds for the source after a cycle (when workers have a content root). */
export interface ContentReport {
  /** Versions stored under {targetPath}/.arena/versions. */
  versionCount: number;
  /** Set when this cycle wrote a new version directory (not when it reused one). */
  created?: string;
}

/** Bundle validation's result (src/bundle/validation.ts), small enough for history and a condition. */
export interface BundleReport {
  valid: boolean;
  /** What was checked (valid), or the first problems, each naming its file and JSON path or field. */
  message: string;
}

/** The failure reason of a revision that strict validation refused. */
export const INVALID_BUNDLE = 'InvalidBundle';

export interface StatusContext {
  now: string;
  generation?: number;
  lastFetchTime?: string;
  nextFetchTime?: string;
  lastHandledReconcileAt?: string;
}

type ConditionInput = Pick<Condition, 'type' | 'status' | 'reason' | 'message'>;

/** The Ready condition's message for an artifact of this revision. */
export function readyMessage(revision: string): string {
  return `stored artifact for revision '${revision}'`;
}

/**
 * An unchanged cycle's status: the previous one, its artifact re-verified at `now` (the fetch times
 * move, and the content volume's version count when there is one). resolveRevision writes it, and
 * the workflow derives the same from the time it was written, so history keeps a timestamp per
 * unchanged cycle rather than the whole status. Undefined without an artifact.
 */
export function unchangedCycleStatus(
  unchanged: { previous: ArenaSourceStatus; context: Omit<StatusContext, 'now'> },
  now: string,
  content?: ContentReport,
): ArenaSourceStatus | undefined {
  const artifact = unchanged.previous.artifact;
  if (!artifact) return undefined;
  return nextStatus(unchanged.previous, { kind: 'ready', artifact, ...(content ? { content } : {}) }, { ...unchanged.context, now });
}

/**
 * The Fetching status a cycle with work writes first, from the status before the cycle. The workflow
 * and resolveRevision both compute it, so a local resolve is sent the time (`at`) instead of the whole
 * status (the Temporal core keeps each cycle's local-activity input until the run ends).
 */
export function fetchingStatusOf(from: { previous: ArenaSourceStatus; context: { generation?: number; lastFetchTime?: string } }, at: string): ArenaSourceStatus {
  return nextStatus(from.previous, { kind: 'fetching' }, { now: at, generation: from.context.generation, lastFetchTime: from.context.lastFetchTime });
}

/**
 * A fingerprint of a status (src/status/last-statuses.ts): two 53-bit cyrb53 hashes of its canonical
 * JSON. Written here because workflow code, which computes it too, has no node:crypto (and the SDK's
 * hash is internal); not a security boundary, only a check that worker and workflow mean one status.
 */
export function statusDigest(status: ArenaSourceStatus): string {
  const text = canonicalJson(status);
  return `${cyrb53(text, 1).toString(36)}.${cyrb53(text, 2).toString(36)}`;
}

/**
 * cyrb53 (public domain, bryc): a fast 53-bit string hash. `imul` is read from `Math` once per call, not
 * in the loop: in workflow code every global lookup is slow (the SDK's reused V8 context redefines the
 * global object's properties whenever it switches workflows), and `Math.imul` per character made this
 * ≈ 2 ms per status there, half of the workflow thread's own time (README, benchmark 4, session 16).
 */
function cyrb53(text: string, seed: number): number {
  const imul = Math.imul;
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = imul(h1 ^ ch, 2654435761);
    h2 = imul(h2 ^ ch, 1597334677);
  }
  h1 = imul(h1 ^ (h1 >>> 16), 2246822507) ^ imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = imul(h2 ^ (h2 >>> 16), 2246822507) ^ imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

export function nextStatus(prev: ArenaSourceStatus, outcome: Outcome, ctx: StatusContext): ArenaSourceStatus {
  const artifact = outcome.kind === 'ready' ? outcome.artifact : prev.artifact;
  const { phase, conditions } = derive(prev, outcome, artifact);
  conditions.push(sourceValid(outcome));
  const progress = progressConditions(prev, outcome, ctx);
  conditions.push(...progress.set);
  let merged = (prev.conditions ?? []).filter((c) => !progress.remove.includes(c.type as ConditionType));
  const bundle = bundleValid(outcome);
  if (bundle) conditions.push(bundle);
  const verified = sourceVerified(outcome);
  if (verified === 'remove') merged = merged.filter((c) => c.type !== 'SourceVerified');
  else if (verified) conditions.push(verified);
  for (const c of conditions) merged = setCondition(merged, c, ctx.now, ctx.generation);
  const observedGeneration = observesGeneration(outcome) ? ctx.generation : prev.observedGeneration;
  // A condition this cycle kept (e.g. BundleValid after a cycle that fetched nothing) still holds for the
  // generation just handled: kstatus reads a condition older than the object as "not yet answered".
  if (observesGeneration(outcome) && ctx.generation !== undefined) {
    merged = merged.map((c) => (c.observedGeneration === ctx.generation ? c : { ...c, observedGeneration: ctx.generation }));
  }
  const status: ArenaSourceStatus = {
    phase,
    conditions: merged,
    ...(artifact ? { artifact } : {}),
    ...(observedGeneration !== undefined ? { observedGeneration } : {}),
  };
  const lastFetchTime = ctx.lastFetchTime ?? prev.lastFetchTime;
  if (lastFetchTime) status.lastFetchTime = lastFetchTime;
  // A suspended or stalled source has no next fetch scheduled.
  if (ctx.nextFetchTime) status.nextFetchTime = ctx.nextFetchTime;
  const handled = ctx.lastHandledReconcileAt ?? prev.lastHandledReconcileAt;
  if (handled) status.lastHandledReconcileAt = handled;
  Object.assign(status, contentFields(prev, outcome, artifact));
  return status;
}

/** Omnia's top-level content fields: follow the artifact's version, carried over otherwise. */
function contentFields(prev: ArenaSourceStatus, outcome: Outcome, artifact: Artifact | undefined): Partial<ArenaSourceStatus> {
  const out: Partial<ArenaSourceStatus> = {};
  const synced = outcome.kind === 'ready' && artifact?.version !== undefined;
  const headVersion = synced ? artifact.version : prev.headVersion;
  const lastSyncRevision = synced ? artifact.revision : prev.lastSyncRevision;
  const versionCount = outcome.kind === 'ready' && outcome.content ? outcome.content.versionCount : prev.versionCount;
  const created = (outcome.kind === 'ready' ? outcome.content?.created : undefined) ?? prev.lastVersionCreated;
  if (headVersion !== undefined) out.headVersion = headVersion;
  if (versionCount !== undefined) out.versionCount = versionCount;
  if (lastSyncRevision !== undefined) out.lastSyncRevision = lastSyncRevision;
  if (created !== undefined) out.lastVersionCreated = created;
  return out;
}

function derive(
  prev: ArenaSourceStatus,
  outcome: Outcome,
  artifact: Artifact | undefined,
): { phase: Phase; conditions: ConditionInput[] } {
  const artifactCondition = (reasonIfNone: string, messageIfNone: string): ConditionInput =>
    artifact
      ? {
          type: 'ArtifactAvailable',
          status: 'True',
          reason: 'Succeeded',
          message: `artifact for revision '${artifact.revision}' is available at ${artifact.url}`,
        }
      : { type: 'ArtifactAvailable', status: 'False', reason: reasonIfNone, message: messageIfNone };

  switch (outcome.kind) {
    case 'pending':
      return {
        phase: 'Pending',
        conditions: [
          { type: 'Ready', status: 'Unknown', reason: 'Pending', message: 'waiting for the first fetch' },
          { type: 'Fetching', status: 'False', reason: 'Pending', message: 'waiting for the first fetch' },
          artifactCondition('NoArtifact', 'no artifact has been produced yet'),
        ],
      };
    case 'fetching': {
      const conditions: ConditionInput[] = [
        { type: 'Fetching', status: 'True', reason: 'Progressing', message: 'fetching the current revision' },
      ];
      if (!findCondition(prev.conditions, 'Ready')) {
        conditions.push({ type: 'Ready', status: 'Unknown', reason: 'Progressing', message: 'first fetch in progress' });
      }
      if (!findCondition(prev.conditions, 'ArtifactAvailable')) {
        conditions.push(artifactCondition('NoArtifact', 'no artifact has been produced yet'));
      }
      // Omnia's phases: Initializing until there is content, Fetching while the last one stays served.
      return { phase: artifact ? 'Fetching' : 'Initializing', conditions };
    }
    case 'ready': {
      const message = readyMessage(outcome.artifact.revision);
      return {
        phase: 'Ready',
        conditions: [
          { type: 'Ready', status: 'True', reason: 'Succeeded', message },
          { type: 'Fetching', status: 'False', reason: 'Succeeded', message },
          artifactCondition('NoArtifact', ''),
        ],
      };
    }
    case 'failed': {
      const served = artifact ? `; still serving the last artifact (revision '${artifact.revision}')` : '';
      const retry = outcome.stalled ? '; not retried until the spec changes' : '';
      const message = truncate(`${outcome.message}${retry}${served}`);
      return {
        phase: 'Error',
        conditions: [
          { type: 'Ready', status: 'False', reason: outcome.reason, message },
          { type: 'Fetching', status: 'False', reason: outcome.reason, message },
          artifactCondition(outcome.reason, 'no artifact has been produced yet'),
        ],
      };
    }
    case 'suspended': {
      const served = artifact ? `; the last artifact (revision '${artifact.revision}') is still served` : '';
      const message = `reconciliation is suspended${served}`;
      return {
        phase: 'Pending',
        conditions: [
          { type: 'Ready', status: 'False', reason: 'Suspended', message },
          { type: 'Fetching', status: 'False', reason: 'Suspended', message },
          artifactCondition('NoArtifact', 'no artifact has been produced yet'),
        ],
      };
    }
  }
}

/**
 * kstatus' abnormal-true conditions (sigs.k8s.io/cli-utils kstatus; Flux's conventions):
 * `Reconciling=True` while a cycle has work (a fetch under way, the first one pending) or retries
 * after a failure (reason ProgressingWithRetry), `Stalled=True` when only a spec change can help.
 * Each is removed, not set False, when it does not hold, and never both at once.
 */
function progressConditions(
  prev: ArenaSourceStatus,
  outcome: Outcome,
  ctx: StatusContext,
): { set: ConditionInput[]; remove: ConditionType[] } {
  const reconciling = (reason: 'Progressing' | 'ProgressingWithRetry', message: string) => ({
    set: [{ type: 'Reconciling' as const, status: 'True' as const, reason, message }],
    remove: ['Stalled' as const],
  });
  switch (outcome.kind) {
    case 'pending':
      return reconciling('Progressing', 'waiting for the first fetch');
    case 'fetching':
      // A fetch that follows a failed cycle is still the retry.
      return findCondition(prev.conditions, 'Reconciling')?.reason === 'ProgressingWithRetry'
        ? reconciling('ProgressingWithRetry', 'fetching the current revision again after a failure')
        : reconciling('Progressing', 'fetching the current revision');
    case 'failed':
      if (outcome.stalled) {
        return {
          set: [{ type: 'Stalled', status: 'True', reason: outcome.reason, message: truncate(`${outcome.message}; not retried until the spec changes`) }],
          remove: ['Reconciling'],
        };
      }
      return reconciling(
        'ProgressingWithRetry',
        truncate(`${outcome.reason}: ${outcome.message}; retrying${ctx.nextFetchTime ? ` at ${ctx.nextFetchTime}` : ''}`),
      );
    case 'ready':
    case 'suspended':
      return { set: [], remove: ['Reconciling', 'Stalled'] };
  }
}

/**
 * status.observedGeneration advances only when the generation has been handled to the end: Ready,
 * stalled on it, or suspended by it. While a cycle runs or retries it stays behind, so kstatus reports
 * InProgress (and `kubectl wait` keeps waiting) until the new spec's outcome is known.
 */
function observesGeneration(outcome: Outcome): boolean {
  return outcome.kind === 'ready' || outcome.kind === 'suspended' || (outcome.kind === 'failed' && outcome.stalled);
}

/**
 * SourceVerified (only for sources with spec.*.verify): True with what was verified for a
 * new artifact, False when a revision was refused (VerificationFailed); other outcomes leave it.
 */
function sourceVerified(outcome: Outcome): ConditionInput | 'remove' | undefined {
  if (outcome.kind === 'ready' && typeof outcome.verified === 'string') {
    return { type: 'SourceVerified', status: 'True', reason: 'Succeeded', message: truncate(outcome.verified) };
  }
  if (outcome.kind === 'ready' && outcome.verified === false) return 'remove';
  if (outcome.kind === 'failed' && outcome.reason === 'VerificationFailed') {
    return { type: 'SourceVerified', status: 'False', reason: 'VerificationFailed', message: truncate(outcome.message) };
  }
  return undefined;
}

/** SourceValid: False only when the spec (or its target path) is what stops the source. */
function sourceValid(outcome: Outcome): ConditionInput {
  if (outcome.kind === 'failed' && SPEC_REASONS.includes(outcome.reason as FailureReason)) {
    return { type: 'SourceValid', status: 'False', reason: outcome.reason, message: truncate(outcome.message) };
  }
  if (outcome.kind === 'pending') return { type: 'SourceValid', status: 'Unknown', reason: 'Pending', message: 'not checked yet' };
  return { type: 'SourceValid', status: 'True', reason: 'Valid', message: 'the spec is valid' };
}

/**
 * BundleValid: set when a bundle was validated (a fetched revision, or one strict validation
 * refused); otherwise it keeps what it said about the artifact before.
 */
function bundleValid(outcome: Outcome): ConditionInput | undefined {
  if (outcome.kind === 'ready' && outcome.bundle) {
    const { valid, message } = outcome.bundle;
    return { type: 'BundleValid', status: valid ? 'True' : 'False', reason: valid ? 'Valid' : INVALID_BUNDLE, message: truncate(message) };
  }
  if (outcome.kind === 'failed' && outcome.reason === INVALID_BUNDLE) {
    return { type: 'BundleValid', status: 'False', reason: INVALID_BUNDLE, message: truncate(outcome.message) };
  }
  return undefined;
}

/** Upserts a condition; lastTransitionTime moves only when the status flips (Kubernetes convention). */
export function setCondition(
  conditions: Condition[],
  input: ConditionInput,
  now: string,
  generation?: number,
): Condition[] {
  const existing = conditions.find((c) => c.type === input.type);
  const next: Condition = {
    type: input.type,
    status: input.status,
    reason: input.reason,
    message: input.message,
    lastTransitionTime: existing && existing.status === input.status ? existing.lastTransitionTime : now,
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
  };
  const others = conditions.filter((c) => c.type !== input.type);
  return sortConditions([...others, next]);
}

const ORDER: ConditionType[] = ['Ready', 'Reconciling', 'Stalled', 'Fetching', 'ArtifactAvailable', 'SourceValid', 'SourceVerified', 'BundleValid'];
function sortConditions(conditions: Condition[]): Condition[] {
  const rank = (t: string) => {
    const i = ORDER.indexOf(t as ConditionType);
    return i < 0 ? ORDER.length : i;
  };
  return [...conditions].sort((a, b) => rank(a.type) - rank(b.type) || a.type.localeCompare(b.type));
}

export function findCondition(conditions: Condition[] | undefined, type: ConditionType): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

function truncate(message: string): string {
  return message.length > 32_000 ? `${message.slice(0, 32_000)}…` : message;
}
