/**
 * Semver ranges over tag names (spec.git.ref.semver, spec.oci.ref.semver), with
 * npm's `semver` package read the way Flux reads Masterminds semver:
 *   - a comma means AND, as in Masterminds (">=1.0.0, <2.0.0"); npm writes a space;
 *   - tags may carry a leading "v" and may leave out minor or patch ("v1.2" is 1.2.0);
 *     tags that are no version at all are skipped;
 *   - prerelease tags count only when the range itself names a prerelease
 *     (">=1.0.0-0"); then every prerelease inside the range counts, as in
 *     Masterminds, not only those of the same x.y.z as npm alone would say.
 * Kept out of spec-rules.ts so that workflow code does not bundle `semver`.
 */
import semver from 'semver';

/** The range in npm's syntax, or undefined when it is not one. */
export function parseRange(range: string): semver.Range | undefined {
  try {
    return new semver.Range(range.replace(/,/g, ' '));
  } catch {
    return undefined;
  }
}

/** Why `range` is not a usable semver range (named by `field`), or undefined. */
export function rangeProblem(field: string, range: unknown): string | undefined {
  if (typeof range !== 'string' || range.trim() === '' || !parseRange(range)) {
    return `${field}: ${JSON.stringify(range)} is not a semver range; write e.g. ">=1.0.0 <2.0.0", "^1.2", "~1.2.3" or "1.x"`;
  }
  return undefined;
}

/** Why `filter` is not a regular expression, or undefined. */
export function filterProblem(field: string, filter: unknown): string | undefined {
  if (typeof filter !== 'string') return `${field}: must be a regular expression`;
  try {
    new RegExp(filter);
    return undefined;
  } catch (err) {
    return `${field}: ${JSON.stringify(filter)} is not a regular expression (${(err as Error).message})`;
  }
}

const LENIENT = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;

/** The version a tag names (Masterminds' NewVersion: "v" prefix, missing parts are 0), or undefined. */
export function tagVersion(tag: string): semver.SemVer | undefined {
  const m = LENIENT.exec(tag);
  if (!m) return undefined;
  const text = `${m[1]}.${m[2] ?? '0'}.${m[3] ?? '0'}${m[4] ?? ''}${m[5] ?? ''}`;
  return semver.parse(text) ?? undefined;
}

function allowsPrerelease(range: semver.Range): boolean {
  // An empty comparator ("*") holds a symbol, not a version: hence the optional chaining.
  return range.set.some((comparators) => comparators.some((c) => ((c.semver as semver.SemVer | undefined)?.prerelease?.length ?? 0) > 0));
}

/** Whether `tag` is a version inside `range` (and matches `filter`, a regular expression, when given). */
export function tagInRange(tag: string, range: string, filter?: string): boolean {
  const parsed = parseRange(range);
  const version = tagVersion(tag);
  if (!parsed || !version) return false;
  if (filter !== undefined && !new RegExp(filter).test(tag)) return false;
  return semver.satisfies(version, parsed, { includePrerelease: allowsPrerelease(parsed) });
}

/**
 * The tag with the highest version inside `range` (after `filter`), or undefined.
 * Several tags of one version (v1.0.0 and 1.0.0): the first in byte order, so the choice is stable.
 */
export function highestTag(tags: Iterable<string>, range: string, filter?: string): string | undefined {
  const parsed = parseRange(range);
  if (!parsed) return undefined;
  const re = filter !== undefined ? new RegExp(filter) : undefined;
  const options = { includePrerelease: allowsPrerelease(parsed) };
  let best: { tag: string; version: semver.SemVer } | undefined;
  for (const tag of tags) {
    if (re && !re.test(tag)) continue;
    const version = tagVersion(tag);
    if (!version || !semver.satisfies(version, parsed, options)) continue;
    const order = best ? semver.compare(version, best.version) : 1;
    if (order > 0 || (order === 0 && best && Buffer.compare(Buffer.from(tag), Buffer.from(best.tag)) < 0)) best = { tag, version };
  }
  return best?.tag;
}

/** The semver ranges and tag filters of a spec that would not parse (checkSpec leaves them out: it stays free of `semver`). */
export function rangeProblems(spec: { git?: { ref?: { semver?: string } }; oci?: { ref?: { semver?: string; semverFilter?: string } } }): string[] {
  const git = spec.git?.ref;
  const oci = spec.oci?.ref;
  return [
    git?.semver !== undefined ? rangeProblem('spec.git.ref.semver', git.semver) : undefined,
    oci?.semver !== undefined ? rangeProblem('spec.oci.ref.semver', oci.semver) : undefined,
    oci?.semverFilter !== undefined ? filterProblem('spec.oci.ref.semverFilter', oci.semverFilter) : undefined,
  ].filter((p): p is string => p !== undefined);
}
