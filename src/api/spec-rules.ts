/**
 * The rules a spec must satisfy beyond its shape: type/section pairing, durations,
 * safe paths and refs, URLs without embedded credentials. Pure and dependency-free
 * (only duration parsing), because the workflow runs these too: a spec that reaches
 * a workflow without passing an edge (e.g. a CR Omnia's looser CRD admitted) must
 * still end in a clear InvalidSpec status, not in an activity crash.
 */
import { canonicalJson } from './canonical.js';
import { durationToMillis, parseGoDuration } from './duration.js';
import type { ArenaSourceSpec, SourceType, ValidationMode } from './schema.js';

export const MIN_INTERVAL_MS = 1_000;
export const MAX_TIMEOUT_MS = 60 * 60 * 1_000;
export const DEFAULT_TIMEOUT = '60s';
export const DEFAULT_CONFIGMAP_KEY = 'pack.json';
export const DEFAULT_VALIDATION: ValidationMode = 'warn';

/** What the rest of the system works from once a spec is known to be sound. */
export interface CheckedSpec {
  type: SourceType;
  intervalMs: number;
  timeoutMs: number;
}

/**
 * `reason` is the condition reason: InvalidTargetPath when the target path is all
 * that is wrong (Omnia's reason for it), InvalidSpec otherwise.
 */
export type SpecCheck =
  | { ok: true; checked: CheckedSpec }
  | { ok: false; problems: string[]; reason: 'InvalidSpec' | 'InvalidTargetPath' };

type Section = 'git' | 'oci' | 'configMap' | 'workspace';
const SECTION: Record<SourceType, Section> = { git: 'git', oci: 'oci', configmap: 'configMap', workspace: 'workspace' };
const SECTIONS = Object.values(SECTION);
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const CONFIGMAP_KEY = /^[-._a-zA-Z0-9]+$/;
const FULL_SHA = /^([0-9a-f]{40}|[0-9a-f]{64})$/;

export function checkSpec(spec: ArenaSourceSpec): SpecCheck {
  const problems: string[] = [];
  const type = spec?.type;
  if (!(type in SECTION)) {
    problems.push(`spec.type: must be one of ${Object.keys(SECTION).join(', ')} (got ${JSON.stringify(type)})`);
  } else {
    const wanted = SECTION[type];
    if (spec[wanted] === undefined || spec[wanted] === null) {
      problems.push(`spec.${wanted}: required when type is "${type}"`);
    }
    for (const other of SECTIONS) {
      if (other !== wanted && spec[other] !== undefined && spec[other] !== null) {
        problems.push(`spec.${other}: must not be set when type is "${type}" (set spec.${wanted} instead)`);
      }
    }
  }

  const intervalMs = checkDuration('spec.interval', spec?.interval, problems, { min: MIN_INTERVAL_MS });
  const timeoutMs = checkDuration('spec.timeout', spec?.timeout ?? DEFAULT_TIMEOUT, problems, {
    min: 1,
    max: MAX_TIMEOUT_MS,
  });

  if (type === 'git' && spec.git) checkGit(spec.git, problems);
  if (type === 'oci' && spec.oci) checkOci(spec.oci, problems);
  if (type === 'configmap' && spec.configMap) checkConfigMap(spec.configMap, problems);
  if (type === 'workspace' && spec.workspace) checkContentPath('spec.workspace.path', spec.workspace.path, problems);
  const targetProblems: string[] = [];
  if (spec?.targetPath !== undefined) checkContentPath('spec.targetPath', spec.targetPath, targetProblems);

  if (problems.length > 0 || targetProblems.length > 0 || intervalMs === undefined || timeoutMs === undefined || type === undefined) {
    return {
      ok: false,
      problems: [...problems, ...targetProblems],
      reason: problems.length === 0 && targetProblems.length > 0 ? 'InvalidTargetPath' : 'InvalidSpec',
    };
  }
  return { ok: true, checked: { type, intervalMs, timeoutMs } };
}

function checkDuration(
  field: string,
  value: unknown,
  problems: string[],
  bounds: { min: number; max?: number },
): number | undefined {
  if (typeof value !== 'string') {
    problems.push(`${field}: required, a Go duration such as 5m, 1h or 5m30s`);
    return undefined;
  }
  let ms: number;
  try {
    const nanos = parseGoDuration(value);
    if (nanos <= 0n) {
      problems.push(`${field}: must be positive (got ${JSON.stringify(value)})`);
      return undefined;
    }
    ms = durationToMillis(nanos);
  } catch (err) {
    problems.push(`${field}: ${(err as Error).message}; use a Go duration such as 5m, 1h or 5m30s`);
    return undefined;
  }
  if (ms < bounds.min) {
    problems.push(`${field}: must be at least ${bounds.min}ms (got ${JSON.stringify(value)})`);
    return undefined;
  }
  if (bounds.max !== undefined && ms > bounds.max) {
    problems.push(`${field}: must be at most ${bounds.max / 60_000}m (got ${JSON.stringify(value)})`);
    return undefined;
  }
  return ms;
}

function checkGit(git: NonNullable<ArenaSourceSpec['git']>, problems: string[]): void {
  checkGitUrl(git.url, problems);
  const ref = git.ref ?? {};
  if (ref.commit !== undefined && !FULL_SHA.test(ref.commit)) {
    problems.push(
      `spec.git.ref.commit: must be a full commit SHA (40 hex characters, or 64 for SHA-256 repositories), got ${JSON.stringify(ref.commit)}`,
    );
  }
  const named = (['branch', 'tag', 'semver', 'name'] as const).filter((k) => ref[k] !== undefined);
  if (named.length > 1) {
    problems.push(
      `spec.git.ref: set at most one of branch, tag, semver or name (got ${named.join(' and ')}); a commit may accompany branch, tag or name to pin it`,
    );
  }
  if (ref.commit !== undefined && ref.semver !== undefined) {
    problems.push('spec.git.ref: semver cannot be combined with commit (a range picks among tags, a commit pins one revision)');
  }
  if (ref.branch !== undefined) checkRefName('spec.git.ref.branch', ref.branch, problems);
  if (ref.tag !== undefined) checkRefName('spec.git.ref.tag', ref.tag, problems);
  if (ref.name !== undefined) {
    if (typeof ref.name !== 'string' || !ref.name.startsWith('refs/')) {
      problems.push(`spec.git.ref.name: must be a full reference starting with "refs/", e.g. refs/pull/42/head (got ${JSON.stringify(ref.name)})`);
    } else checkRefName('spec.git.ref.name', ref.name, problems);
  }
  if (ref.semver !== undefined && (typeof ref.semver !== 'string' || ref.semver.trim() === '')) {
    problems.push('spec.git.ref.semver: must be a semver range such as ">=1.0.0 <2.0.0"');
  }
  if (git.path !== undefined) {
    const problem = bundlePathProblem(git.path);
    if (problem) problems.push(`spec.git.path: ${problem}`);
  }
  if (git.proxySecretRef && typeof git.url === 'string' && git.url.startsWith('ssh://')) {
    problems.push('spec.git.proxySecretRef: applies to https:// and http:// URLs only; ssh:// URLs connect directly');
  }
  const mode = git.verify?.mode ?? 'HEAD';
  if (git.verify && mode !== 'HEAD' && ref.tag === undefined && ref.semver === undefined) {
    problems.push(`spec.git.verify.mode: ${mode} verifies the annotated tag of spec.git.ref.tag or spec.git.ref.semver, neither of which is set (use mode HEAD for a branch, name or commit)`);
  }
}

function checkGitUrl(url: unknown, problems: string[]): void {
  if (typeof url !== 'string' || url === '') {
    problems.push('spec.git.url: required');
    return;
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    problems.push(`spec.git.url: not a valid URL: ${JSON.stringify(redactUrl(url))}`);
    return;
  }
  if (!['https:', 'http:', 'ssh:'].includes(parsed.protocol)) {
    problems.push(`spec.git.url: unsupported scheme "${parsed.protocol.replace(':', '')}"; use https://, http:// or ssh://`);
    return;
  }
  if (parsed.hostname === '') problems.push('spec.git.url: has no host');
  if (parsed.password !== '' || (parsed.protocol !== 'ssh:' && parsed.username !== '')) {
    problems.push(
      `spec.git.url: must not embed credentials (${redactUrl(url)}); put them in a Secret and name it in spec.git.secretRef`,
    );
  }
}

/** A loose git check-ref-format: also rejects leading '-', which git would read as an option. */
function checkRefName(field: string, name: string, problems: string[]): void {
  const bad =
    name.startsWith('-') ||
    name.startsWith('/') ||
    name.endsWith('/') ||
    name.endsWith('.') ||
    name.endsWith('.lock') ||
    name.includes('..') ||
    name.includes('//') ||
    name.includes('@{') ||
    // eslint-disable-next-line no-control-regex
    /[\x00-\x20\x7f~^:?*[\\]/.test(name);
  if (bad) problems.push(`${field}: ${JSON.stringify(name)} is not a valid git ref name`);
}

/** Returns why a bundle path is unsafe, or undefined when it stays inside the source. */
export function bundlePathProblem(path: string): string | undefined {
  if (path.startsWith('/')) return `must be relative to the repository root (got ${JSON.stringify(path)})`;
  if (path.includes('\\') || path.includes('\0')) return `must be a POSIX path (got ${JSON.stringify(path)})`;
  if (path.split('/').includes('..')) return `must not contain ".." (got ${JSON.stringify(path)})`;
  return undefined;
}

/**
 * targetPath and workspace.path: relative paths on the content volume. Stricter than a
 * bundle path (which only reads inside a checkout): these name where we write, so they
 * must also name a directory below the namespace's root, not the root itself.
 */
function checkContentPath(field: string, value: unknown, problems: string[]): void {
  if (typeof value !== 'string' || value.trim() === '') {
    problems.push(`${field}: must be a non-empty relative path`);
    return;
  }
  const problem = bundlePathProblem(value);
  if (problem) problems.push(`${field}: ${problem.replace('the repository root', 'the workspace content root')}`);
  else if (normalizeBundlePath(value) === '') problems.push(`${field}: must name a directory below the workspace content root (got ${JSON.stringify(value)})`);
  else if (normalizeBundlePath(value).split('/').some((p) => p.startsWith('.arena'))) {
    problems.push(`${field}: must not name a ".arena" directory, where versions are kept (got ${JSON.stringify(value)})`);
  }
}

/** Where a source's versions go: spec.targetPath, else Omnia's default `arena/{name}`; normalised. */
export function targetPathOf(spec: Pick<ArenaSourceSpec, 'targetPath'>, sourceName: string): string {
  return normalizeBundlePath(spec.targetPath ?? `arena/${sourceName}`);
}

/** `./a//b/` → `a/b`; '' for the root. Call only on paths bundlePathProblem accepted. */
export function normalizeBundlePath(path: string | undefined): string {
  return (path ?? '')
    .split('/')
    .filter((part) => part !== '' && part !== '.')
    .join('/');
}

/**
 * What determines an artifact's content besides the revision: the same revision
 * under another path (or key, or URL) is a different artifact. Polling settings,
 * suspension and credentials are left out: changing them must not re-fetch.
 */
export function contentIdentity(spec: ArenaSourceSpec): string {
  const parts: Record<string, unknown> = { type: spec.type };
  // verify is content-relevant: an artifact published unverified must be re-fetched (and verified) once asked.
  if (spec.git) parts.git = { url: spec.git.url, ref: spec.git.ref ?? {}, path: normalizeBundlePath(spec.git.path), ...(spec.git.verify ? { verify: spec.git.verify } : {}) };
  if (spec.oci) parts.oci = { url: spec.oci.url, ...(spec.oci.ref ? { ref: spec.oci.ref } : {}), ...(spec.oci.verify ? { verify: spec.oci.verify } : {}) };
  // Only when set, so that sources without it keep the identity their artifacts were stored under.
  if (spec.ignore !== undefined) parts.ignore = spec.ignore;
  if (spec.configMap) parts.configMap = { name: spec.configMap.name, key: spec.configMap.key ?? DEFAULT_CONFIGMAP_KEY };
  if (spec.workspace) parts.workspace = { path: normalizeBundlePath(spec.workspace.path) };
  // Strict validation decides whether a revision is published, so switching it re-judges the
  // current one (and lifts a rejection). Left out for warn, so existing sources keep their identity.
  if (spec.validation === 'strict') parts.validation = 'strict';
  return canonicalJson(parts);
}

/** What packBundle checks, and how strictly (see src/bundle/validation.ts). */
export interface BundleValidationRequest {
  mode: ValidationMode;
  /** Files (relative to the bundle root) that are PromptPacks whatever their name; `*.pack.json` always are. */
  packFiles: string[];
}

/** The bundle's pack.json; for a ConfigMap, its key when that is a `.json` (the ConfigMap's bundle is that one file). */
export function bundleValidationOf(spec: ArenaSourceSpec): BundleValidationRequest {
  const key = spec.configMap?.key ?? DEFAULT_CONFIGMAP_KEY;
  const packFiles = spec.type === 'configmap' ? (key.endsWith('.json') ? [key] : []) : ['pack.json'];
  return { mode: spec.validation ?? DEFAULT_VALIDATION, packFiles };
}

export interface OciReference {
  registry: string;
  repository: string;
  tag?: string;
  digest?: string;
}

const OCI_REF = /^oci:\/\/([^/]+)\/([a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)(?::([A-Za-z0-9_][A-Za-z0-9._-]{0,127}))?(?:@(sha256:[0-9a-f]{64}))?$/;

export function parseOciUrl(url: string): OciReference | undefined {
  const m = OCI_REF.exec(url);
  if (!m) return undefined;
  const [, registry, repository, tag, digest] = m;
  if (!registry || !repository) return undefined;
  return { registry, repository, tag: tag ?? (digest ? undefined : 'latest'), digest };
}

function checkOci(oci: NonNullable<ArenaSourceSpec['oci']>, problems: string[]): void {
  const url: unknown = oci.url;
  if (oci.ref !== undefined && oci.ref !== null) checkOciRef(oci.ref, typeof url === 'string' ? url : '', problems);
  if (typeof url !== 'string' || !parseOciUrl(url)) {
    problems.push(
      `spec.oci.url: ${JSON.stringify(typeof url === 'string' ? redactUrl(url) : url)} is not oci://registry/repository:tag or oci://registry/repository@sha256:<digest>`,
    );
  } else if (/^oci:\/\/[^/]*@/.test(url)) {
    problems.push('spec.oci.url: must not embed credentials; use spec.oci.secretRef');
  }
}

const OCI_TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/** spec.oci.ref: exactly one of tag, semver or digest, and a URL that names neither. */
function checkOciRef(ref: NonNullable<NonNullable<ArenaSourceSpec['oci']>['ref']>, url: string, problems: string[]): void {
  const set = (['tag', 'semver', 'digest'] as const).filter((k) => ref[k] !== undefined);
  if (set.length !== 1) {
    problems.push(`spec.oci.ref: set exactly one of tag, semver or digest${set.length > 1 ? ` (got ${set.join(' and ')})` : ''}`);
  }
  if (ref.semverFilter !== undefined && ref.semver === undefined) problems.push('spec.oci.ref.semverFilter: only works with spec.oci.ref.semver');
  if (ref.tag !== undefined && !OCI_TAG.test(ref.tag)) problems.push(`spec.oci.ref.tag: ${JSON.stringify(ref.tag)} is not a valid tag`);
  if (ref.digest !== undefined && !/^sha256:[0-9a-f]{64}$/.test(ref.digest)) {
    problems.push(`spec.oci.ref.digest: ${JSON.stringify(ref.digest)} is not sha256:<64 hex digits>`);
  }
  if (ociUrlNamesReference(url)) {
    problems.push('spec.oci.url: must not name a tag or digest when spec.oci.ref is set (use one or the other)');
  }
}

/** True when the URL carries its own tag or digest (oci://host[:port]/repo:tag or …@sha256:…). */
export function ociUrlNamesReference(url: string): boolean {
  return url.includes('@') || /^oci:\/\/[^/]+\/.*:[^/]*$/.test(url);
}

function checkConfigMap(cm: NonNullable<ArenaSourceSpec['configMap']>, problems: string[]): void {
  if (typeof cm.name !== 'string' || !DNS_SUBDOMAIN.test(cm.name)) {
    problems.push(`spec.configMap.name: ${JSON.stringify(cm.name)} is not a valid ConfigMap name`);
  }
  if (cm.key !== undefined && !CONFIGMAP_KEY.test(cm.key)) {
    problems.push(`spec.configMap.key: ${JSON.stringify(cm.key)} is not a valid ConfigMap key`);
  }
}

/** Hides a password (and a token-like username) in a URL, for every message we show. */
export function redactUrl(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)([^/@\s]+)@/gi, (_all, scheme: string, userinfo: string) => {
    const user = userinfo.split(':')[0];
    return userinfo.includes(':') ? `${scheme}${user}:***@` : `${scheme}${user === 'git' ? 'git' : '***'}@`;
  });
}
