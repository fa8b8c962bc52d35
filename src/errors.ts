/**
 * Typed errors. Each maps to a Kubernetes condition reason, and says whether
 * retrying the same input can help. Activities convert them into Temporal
 * ApplicationFailures whose `type` is the reason (see activities/failure.ts),
 * so the workflow can report the reason without parsing messages.
 */

export const ConditionReasons = [
  'InvalidSpec',
  'InvalidTargetPath',
  'AuthenticationFailed',
  'SecretNotFound',
  'FetchFailed',
  'ArtifactTooLarge',
  'UnsafeContent',
  'StorageFailed',
  'InvalidBundle',
  'VerificationFailed',
] as const;
export type FailureReason = (typeof ConditionReasons)[number];

export abstract class ArenaSourceError extends Error {
  abstract readonly reason: FailureReason;
  /** Whether the same call may succeed if retried (network blips: yes; bad input: no). */
  abstract readonly retryable: boolean;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The spec cannot work as written; it will not be retried until it changes. */
export class InvalidSpecError extends ArenaSourceError {
  readonly reason = 'InvalidSpec' as const;
  readonly retryable = false;
  constructor(
    message: string,
    /** Each problem as `field: message`, for a person to act on. */
    readonly problems: string[] = [message],
  ) {
    super(message);
  }
}

/** spec.targetPath (or a workspace path) would write or read outside the namespace's content directory. */
export class InvalidTargetPathError extends ArenaSourceError {
  readonly reason = 'InvalidTargetPath' as const;
  readonly retryable = false;
}

export class AuthenticationFailedError extends ArenaSourceError {
  readonly reason = 'AuthenticationFailed' as const;
  readonly retryable = false;
}

export class SecretNotFoundError extends ArenaSourceError {
  readonly reason = 'SecretNotFound' as const;
  readonly retryable = false;
}

/** The source could not be reached or read; usually transient. */
export class FetchFailedError extends ArenaSourceError {
  readonly reason = 'FetchFailed' as const;
  readonly retryable: boolean;
  constructor(message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super(message, options);
    this.retryable = options?.retryable ?? true;
  }
}

export class ArtifactTooLargeError extends ArenaSourceError {
  readonly reason = 'ArtifactTooLarge' as const;
  readonly retryable = false;
}

/** Content that could escape the bundle (links outside it, devices, absolute paths). */
export class UnsafeContentError extends ArenaSourceError {
  readonly reason = 'UnsafeContent' as const;
  readonly retryable = false;
}

export class StorageFailedError extends ArenaSourceError {
  readonly reason = 'StorageFailed' as const;
  readonly retryable = true;
}

/** The bundle fails validation and spec.validation is strict: the revision is not published. */
export class InvalidBundleError extends ArenaSourceError {
  readonly reason = 'InvalidBundle' as const;
  readonly retryable = false;
}

/**
 * The revision's signature is missing, bad, or by a key the source does not trust
 * (spec.git.verify / spec.oci.verify). The revision is never published; the workflow
 * does not fetch it again until a new revision appears (or the spec changes).
 */
export class VerificationFailedError extends ArenaSourceError {
  readonly reason = 'VerificationFailed' as const;
  readonly retryable = false;
}

/** The error class of each reason (a new reason without a class does not compile). */
const ERROR_CLASSES: { readonly [R in FailureReason]: new (message: string) => ArenaSourceError & { readonly reason: R } } = {
  InvalidSpec: InvalidSpecError,
  InvalidTargetPath: InvalidTargetPathError,
  AuthenticationFailed: AuthenticationFailedError,
  SecretNotFound: SecretNotFoundError,
  FetchFailed: FetchFailedError,
  ArtifactTooLarge: ArtifactTooLargeError,
  UnsafeContent: UnsafeContentError,
  StorageFailed: StorageFailedError,
  InvalidBundle: InvalidBundleError,
  VerificationFailed: VerificationFailedError,
};

/**
 * Reasons whose error class is not retryable by default, in ConditionReasons
 * order: the workflow's activity retry policy stops on them at once (an
 * activity can still mark a single FetchFailed non-retryable; see activities/failure.ts).
 */
export const NON_RETRYABLE_REASONS: readonly FailureReason[] = ConditionReasons.filter((r) => !new ERROR_CLASSES[r]('').retryable);

/** Failures that only a change of the spec can cure: the source stalls until then. */
export const SPEC_REASONS: readonly FailureReason[] = ['InvalidSpec', 'InvalidTargetPath'];

export function isFailureReason(value: unknown): value is FailureReason {
  return typeof value === 'string' && (ConditionReasons as readonly string[]).includes(value);
}

/** What went wrong connecting to Temporal; each names the setting that fixes it. */
export type TemporalConnectionProblem =
  | 'Config'
  | 'Unreachable'
  | 'TlsHandshake'
  | 'UnknownCA'
  | 'ServerName'
  | 'ClientCertificateRequired'
  | 'ClientCertificateRejected'
  | 'ApiKeyRejected';

/**
 * Connecting to Temporal failed (src/temporal/errors.ts classifies the SDK's
 * errors). Not an ArenaSourceError: no source is involved, so there is no
 * condition to report; the process stops with the message. Messages name files
 * and settings, never key material.
 */
export class TemporalConnectionError extends Error {
  constructor(
    readonly problem: TemporalConnectionProblem,
    message: string,
    /** The flags / environment variables / temporal.toml keys to fix. */
    readonly settings: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TemporalConnectionError';
  }
}
