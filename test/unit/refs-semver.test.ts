/**
 * spec.git.ref.semver / name and spec.oci.ref: the range reading (npm semver read
 * the way Flux reads Masterminds semver), the targets a fetch takes from the
 * revision resolveRevision reported, and the combinations `apply` refuses.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { highestTag, rangeProblems, tagInRange, tagVersion } from '../../src/api/semver-range.js';
import { API_VERSION, KIND } from '../../src/api/schema.js';
import { contentIdentity } from '../../src/api/spec-rules.js';
import { parseArenaSource } from '../../src/api/validate.js';
import { InvalidSpecError } from '../../src/errors.js';
import { fetchTargetOf, refKind, resolveSemver, semverTargetOf } from '../../src/sources/git/refs.js';
import { ociPickOf, ociRevisionFor, ociSelectorOf } from '../../src/sources/oci.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const D = `sha256:${'d'.repeat(64)}`;
const url = 'https://git.example/acme/prompts.git';

function problems(spec: Record<string, unknown>): string[] {
  try {
    parseArenaSource({ apiVersion: API_VERSION, kind: KIND, metadata: { name: 'x' }, spec: { interval: '5m', ...spec } });
    return [];
  } catch (err) {
    assert.ok(err instanceof InvalidSpecError);
    return (err as InvalidSpecError).message.split('; ');
  }
}

describe('semver ranges over tags', () => {
  const tags = ['v1.0.0', 'v1.2.0', 'v1.10.0', 'v2.0.0', 'v2.1.0-rc.1', 'latest', 'v1.11', 'release-3'];

  it('picks the highest matching tag, reading tags as Masterminds does (v prefix, missing parts)', () => {
    assert.equal(highestTag(tags, '>=1.0.0 <2.0.0'), 'v1.11');
    assert.equal(highestTag(tags, '>=1.0.0, <2.0.0'), 'v1.11', 'a comma is AND, as in Masterminds');
    assert.equal(highestTag(tags, '~1.2'), 'v1.2.0');
    assert.equal(highestTag(tags, '*'), 'v2.0.0');
    assert.equal(highestTag(tags, '>=3'), undefined);
    assert.equal(tagVersion('v1.11')?.version, '1.11.0');
    assert.equal(tagVersion('release-3'), undefined);
  });

  it('considers prereleases only when the range names one, then all of them in range (as Masterminds)', () => {
    assert.equal(highestTag(tags, '>=2.0.0'), 'v2.0.0');
    assert.equal(highestTag(tags, '>=1.0.0-0'), 'v2.1.0-rc.1', 'npm alone would only allow 1.0.0 prereleases');
    assert.equal(tagInRange('v2.1.0-rc.1', '>=2.0.0'), false);
  });

  it('applies the OCI semverFilter before the range', () => {
    assert.equal(highestTag(['1.0.0', '1.1.0-rc.1', '1.2.0-rc.1', '1.3.0'], '>=1.0.0-0', '.*-rc.*'), '1.2.0-rc.1');
    assert.equal(tagInRange('1.3.0', '>=1.0.0', '^1\\.2'), false);
  });

  it('reads annotated tags at their peeled commit and says when no tag matches', () => {
    const refs = new Map([
      ['refs/heads/main', A],
      ['refs/tags/v1.0.0', A],
      ['refs/tags/v1.1.0', 'c'.repeat(40)],
      ['refs/tags/v1.1.0^{}', B],
    ]);
    assert.deepEqual(resolveSemver({ url }, '^1', refs), { refName: 'v1.1.0', fetchRef: 'refs/tags/v1.1.0', sha: B });
    assert.throws(() => resolveSemver({ url }, '^2', refs), /no tag matching semver range '\^2' in https:\/\/git\.example\/acme\/prompts\.git \(2 tags listed\)/);
    assert.throws(() => resolveSemver({ url }, 'not a range', refs), InvalidSpecError);
  });
});

describe('git ref targets', () => {
  it('precedence commit > name > semver > tag > branch', () => {
    assert.deepEqual(fetchTargetOf({ url, ref: { commit: A, name: 'refs/pull/1/head' } }), { refName: 'refs/pull/1/head', sha: A, fetchRef: A });
    assert.deepEqual(fetchTargetOf({ url, ref: { name: 'refs/pull/42/head' } }), { refName: 'refs/pull/42/head', fetchRef: 'refs/pull/42/head' });
    assert.equal(fetchTargetOf({ url, ref: { semver: '^1' } }), undefined, 'a range takes a listing');
    assert.equal(refKind(fetchTargetOf({ url, ref: { name: 'refs/pull/42/head' } })!), 'ref');
    assert.equal(refKind(fetchTargetOf({ url, ref: { name: 'refs/tags/v1' } })!), 'tag');
  });

  it('a semver fetch takes its tag from the revision resolveRevision reported, if still in range', () => {
    const git = { url, ref: { semver: '^1.2' } };
    assert.deepEqual(semverTargetOf(git, `v1.4.0@sha1:${A}`), { refName: 'v1.4.0', fetchRef: 'refs/tags/v1.4.0' });
    assert.equal(semverTargetOf(git, `v2.0.0@sha1:${A}`), undefined);
    assert.equal(semverTargetOf(git, `main@sha1:${A}`), undefined);
  });
});

describe('OCI refs', () => {
  it('selects from spec.oci.ref or the URL', () => {
    assert.deepEqual(ociSelectorOf({ url: 'oci://r/a', ref: { semver: '^1', semverFilter: 'x' } }), { kind: 'semver', range: '^1', filter: 'x' });
    assert.deepEqual(ociSelectorOf({ url: 'oci://r/a', ref: { tag: 'v1' } }), { kind: 'tag', tag: 'v1' });
    assert.deepEqual(ociSelectorOf({ url: 'oci://r/a', ref: { digest: D } }), { kind: 'digest', digest: D });
    assert.deepEqual(ociSelectorOf({ url: 'oci://r/a' }), { kind: 'tag', tag: 'latest' });
    assert.equal(ociRevisionFor({ url: 'oci://r/a', ref: { tag: 'v1' } }, D), `v1@${D}`);
    assert.equal(ociRevisionFor({ url: 'oci://r/a', ref: { digest: D } }, D), `@${D}`);
  });

  it('a fetch pulls what resolveRevision saw while it still answers the spec', () => {
    const semver = { url: 'oci://r/a', ref: { semver: '>=1.0.0' } };
    assert.deepEqual(ociPickOf(semver, `1.3.0@${D}`, D), { revision: `1.3.0@${D}`, digest: D });
    assert.equal(ociPickOf(semver, `0.9.0@${D}`, D), undefined);
    assert.equal(ociPickOf({ url: 'oci://r/a', ref: { tag: 'v2' } }, `v1@${D}`), undefined);
    assert.deepEqual(ociPickOf({ url: 'oci://r/a:v1' }, `v1@${D}`), { revision: `v1@${D}`, digest: D });
  });
});

describe('apply validation of refs and ignore', () => {
  const git = (ref: Record<string, unknown>) => ({ type: 'git', git: { url, ref } });
  const oci = (o: Record<string, unknown>) => ({ type: 'oci', oci: o });

  it('accepts each ref kind, and a commit naming its branch, tag or ref', () => {
    for (const ref of [{ semver: '>=1.0.0 <2' }, { name: 'refs/pull/42/head' }, { commit: A, name: 'refs/pull/42/head' }, { commit: A, tag: 'v1' }]) {
      assert.deepEqual(problems(git(ref)), [], JSON.stringify(ref));
    }
    assert.deepEqual(problems({ ...git({ branch: 'main' }), ignore: '*.tmp\n/drafts/\n' }), []);
    assert.deepEqual(problems(oci({ url: 'oci://ghcr.io/acme/prompts', ref: { semver: '^1', semverFilter: '.*-rc.*' } })), []);
    assert.deepEqual(problems(oci({ url: 'oci://localhost:5000/acme/prompts', ref: { digest: D } })), []);
  });

  it('refuses contradicting refs with messages naming the fields', () => {
    assert.match(problems(git({ semver: '^1', tag: 'v1' })).join('\n'), /spec\.git\.ref: set at most one of branch, tag, semver or name \(got tag and semver\)/);
    assert.match(problems(git({ name: 'refs/pull/1/head', branch: 'main' })).join('\n'), /set at most one of branch, tag, semver or name \(got branch and name\)/);
    assert.match(problems(git({ semver: '^1', commit: A })).join('\n'), /spec\.git\.ref: semver cannot be combined with commit/);
    assert.match(problems(git({ name: 'pull/42/head' })).join('\n'), /spec\.git\.ref\.name: must be a full reference starting with "refs\/"/);
    assert.match(problems(git({ semver: 'one point two' })).join('\n'), /spec\.git\.ref\.semver: "one point two" is not a semver range/);
  });

  it('refuses an OCI ref together with a tag or digest in the URL, and half-set refs', () => {
    assert.match(problems(oci({ url: 'oci://ghcr.io/acme/prompts:v1', ref: { tag: 'v2' } })).join('\n'), /spec\.oci\.url: must not name a tag or digest when spec\.oci\.ref is set/);
    assert.match(problems(oci({ url: `oci://ghcr.io/acme/prompts@${D}`, ref: { semver: '^1' } })).join('\n'), /must not name a tag or digest/);
    assert.match(problems(oci({ url: 'oci://ghcr.io/acme/prompts', ref: { tag: 'v1', semver: '^1' } })).join('\n'), /spec\.oci\.ref: set exactly one of tag, semver or digest \(got tag and semver\)/);
    assert.match(problems(oci({ url: 'oci://ghcr.io/acme/prompts', ref: { semverFilter: 'x' } })).join('\n'), /semverFilter: only works with spec\.oci\.ref\.semver/);
    assert.match(problems(oci({ url: 'oci://ghcr.io/acme/prompts', ref: { semver: '^1', semverFilter: '(' } })).join('\n'), /spec\.oci\.ref\.semverFilter: "\(" is not a regular expression/);
    assert.deepEqual(rangeProblems({ oci: { ref: { semver: '^1' } } }), []);
  });

  it('keys content identity on ignore and the OCI ref, leaving older specs unchanged', () => {
    const base = { type: 'git' as const, interval: '1m', git: { url } };
    assert.equal(contentIdentity(base), contentIdentity({ ...base }));
    assert.notEqual(contentIdentity({ ...base, ignore: '*.md' }), contentIdentity(base));
    assert.ok(!contentIdentity(base).includes('ignore'));
    const o = { type: 'oci' as const, interval: '1m', oci: { url: 'oci://r/a' } };
    assert.notEqual(contentIdentity({ ...o, oci: { ...o.oci, ref: { semver: '^1' } } }), contentIdentity(o));
    assert.equal(contentIdentity(o), '{"oci":{"url":"oci://r/a"},"type":"oci"}');
  });
});
