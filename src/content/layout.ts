/**
 * Where a source's content lives on the workspace content volume, as Omnia's
 * consumers read it:
 *
 *   {root}/{workspace}/{namespace}/{targetPath}/.arena/HEAD            the current version (no newline)
 *   {root}/{workspace}/{namespace}/{targetPath}/.arena/versions/{v}/   one immutable directory per version
 *
 * `version` is the first 12 hex digits of the artifact's sha256, so the same
 * bundle is the same version. Pure; the filesystem work is in content-volume.ts.
 */
import path from 'node:path';
import { InvalidTargetPathError } from '../errors.js';
import { checksumHex, isValidNamespace } from '../store/artifact-store.js';

export const VERSION_HEX_DIGITS = 12;
export const ARENA_DIR = '.arena';

/** One source's place on the volume. `targetPath` is normalised (spec-rules targetPathOf). */
export interface ContentLocation {
  workspace: string;
  namespace: string;
  targetPath: string;
}

export function versionOf(checksum: string): string {
  return checksumHex(checksum).slice(0, VERSION_HEX_DIGITS);
}

/** status.artifact.contentPath: relative to {root}/{workspace}/{namespace}. */
export function contentPathOf(targetPath: string, version: string): string {
  return `${targetPath}/${ARENA_DIR}/versions/${version}`;
}

/**
 * The path components from the root down to the namespace's directory. Each
 * one is checked again on disk (content-volume.ts) so a symlink planted on the
 * volume cannot redirect a write.
 */
export function namespaceParts(loc: Pick<ContentLocation, 'workspace' | 'namespace'>): string[] {
  if (!isValidNamespace(loc.namespace)) throw new InvalidTargetPathError(`namespace "${loc.namespace}" is not a DNS-1123 label`);
  if (!isWorkspaceName(loc.workspace)) {
    throw new InvalidTargetPathError(
      `workspace "${loc.workspace}" (the namespace's omnia.altairalabs.ai/workspace label) is not a valid directory name: use letters, digits, '-', '_' or '.'`,
    );
  }
  return [loc.workspace, loc.namespace];
}

/** Components of a relative content path; rejects what spec-rules rejects, in case a spec slipped past it. */
export function relativeParts(rel: string, field: string): string[] {
  const parts = rel.split('/').filter((p) => p !== '' && p !== '.');
  if (rel.startsWith('/') || parts.length === 0 || parts.includes('..') || rel.includes('\\') || rel.includes('\0')) {
    throw new InvalidTargetPathError(`${field} "${rel}" must be a relative path below the workspace content root, without ".."`);
  }
  return parts;
}

export function locationParts(loc: ContentLocation): string[] {
  return [...namespaceParts(loc), ...relativeParts(loc.targetPath, 'spec.targetPath')];
}

export function arenaDir(root: string, loc: ContentLocation): string {
  return path.join(root, ...locationParts(loc), ARENA_DIR);
}

/** A label value used as a directory: one safe path component. */
function isWorkspaceName(name: string): boolean {
  return /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}$/.test(name) && name !== '.' && name !== '..';
}
