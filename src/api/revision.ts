/**
 * Revision strings, exactly as the specification formats them. Pure.
 *   git branch  main@sha1:<sha>        git tag  v1.0.0@sha1:<sha>    git commit only  sha1:<sha>
 *   git semver  <chosen tag>@sha1:<sha>                              git ref.name  refs/pull/42/head@sha1:<sha>
 *   oci tag     v1.0.0@sha256:<hex>    oci digest  @sha256:<hex>     configmap  <resourceVersion>
 *   oci semver  <chosen tag>@sha256:<hex>
 */

/** `sha1:` also for SHA-256 object-format repositories would lie; name the algorithm by length. */
export function gitRevision(refName: string | undefined, sha: string): string {
  const algo = sha.length === 64 ? 'sha256' : 'sha1';
  return refName ? `${refName}@${algo}:${sha}` : `${algo}:${sha}`;
}

export function ociRevision(tag: string | undefined, digest: string): string {
  return `${tag ?? ''}@${digest}`;
}

/** The commit or digest part of a revision (after the last '@', algorithm prefix kept). */
export function revisionDigest(revision: string): string {
  const at = revision.lastIndexOf('@');
  return at >= 0 ? revision.slice(at + 1) : revision;
}

/** Short form for tables: main@sha1:0123456789ab. */
export function shortRevision(revision: string | undefined, length = 12): string {
  if (!revision) return '';
  return revision.replace(/(sha1|sha256):([0-9a-f]+)/, (_m, algo: string, hex: string) => `${algo}:${hex.slice(0, length)}`);
}
