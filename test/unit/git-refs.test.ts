/**
 * Which commit a git spec means (src/sources/git/refs.ts): the precedence
 * commit > tag > branch > default branch, pinned commits, ls-remote output, and
 * the commit a fetch asks for by id (carried as `id`, or read back from the
 * revision string when a caller passes only that).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gitRevision } from '../../src/api/revision.js';
import { fetchTargetOf, parseLsRemote, pinnedCommit, refKind, resolveGitRef, seenCommit } from '../../src/sources/git/refs.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const C256 = 'c'.repeat(64);
const url = 'https://git.example.invalid/r.git';

describe('ref precedence', () => {
  it('a commit wins over tag and branch, and keeps their name for the revision string', () => {
    assert.deepEqual(fetchTargetOf({ url, ref: { commit: A, tag: 'v1', branch: 'main' } }), { refName: 'v1', sha: A, fetchRef: A });
    assert.deepEqual(fetchTargetOf({ url, ref: { commit: A, branch: 'main' } }), { refName: 'main', sha: A, fetchRef: A });
    assert.deepEqual(fetchTargetOf({ url, ref: { commit: A } }), { refName: undefined, sha: A, fetchRef: A });
  });

  it('a tag wins over a branch; a branch alone is a branch', () => {
    assert.deepEqual(fetchTargetOf({ url, ref: { tag: 'v1', branch: 'main' } }), { refName: 'v1', fetchRef: 'refs/tags/v1' });
    assert.deepEqual(fetchTargetOf({ url, ref: { branch: 'dev' } }), { refName: 'dev', fetchRef: 'refs/heads/dev' });
  });

  it('no ref (or an empty one) is the default branch, which only the remote knows', () => {
    assert.equal(fetchTargetOf({ url }), undefined);
    assert.equal(fetchTargetOf({ url, ref: {} }), undefined);
  });

  it('names the kind of each target; only a commit is pinned', () => {
    const targets = [{ commit: A }, { tag: 'v1' }, { branch: 'main' }].map((ref) => fetchTargetOf({ url, ref })!);
    assert.deepEqual(targets.map(refKind), ['commit', 'tag', 'branch']);
    assert.deepEqual(targets.map(pinnedCommit), [A, undefined, undefined]);
    // A branch whose commit ls-remote learned is still a branch, fetched by name if need be.
    assert.equal(pinnedCommit({ refName: 'main', fetchRef: 'refs/heads/main', sha: A }), undefined);
  });

  it('a pinned commit resolves without the network', async () => {
    // The URL does not resolve: any git process would fail.
    const resolved = await resolveGitRef({ url, ref: { commit: A, branch: 'main' } }, { timeoutMs: 1000 });
    assert.deepEqual(resolved, { refName: 'main', sha: A, fetchRef: A });
  });
});

describe('ls-remote output', () => {
  it('maps ref names to ids, SHA-1 and SHA-256, skipping anything else', () => {
    const out = [`ref: refs/heads/main\tHEAD`, `${A}\tHEAD`, `${B}\trefs/tags/v1`, `${A}\trefs/tags/v1^{}`, `${C256}\trefs/heads/x`, 'garbage', ''].join('\n');
    const refs = parseLsRemote(out);
    assert.deepEqual([...refs], [['HEAD', A], ['refs/tags/v1', B], ['refs/tags/v1^{}', A], ['refs/heads/x', C256]]);
  });
});

describe('the commit a fetch asks for by id', () => {
  const branch = fetchTargetOf({ url, ref: { branch: 'main' } })!;
  const pinned = fetchTargetOf({ url, ref: { commit: A, branch: 'main' } })!;

  it('is the id resolveRevision carried', () => {
    assert.equal(seenCommit(branch, { id: B, revision: gitRevision('main', B) }), B);
    assert.equal(seenCommit(branch, { id: C256 }), C256);
  });

  it('the id wins over the revision string', () => {
    assert.equal(seenCommit(branch, { id: B, revision: gitRevision('main', A) }), B);
  });

  it('without an id, is read back from a revision of the same ref', () => {
    assert.equal(seenCommit(branch, { revision: gitRevision('main', A) }), A);
    assert.equal(seenCommit(branch, { revision: gitRevision('other', A) }), undefined, 'another branch: the spec changed');
    assert.equal(seenCommit(branch, { revision: gitRevision(undefined, A) }), undefined);
    assert.equal(seenCommit(branch, {}), undefined);
    assert.equal(seenCommit(branch, { revision: 'main@sha1:xyz' }), undefined);
  });

  it('never differs from a pinned commit, and is never anything but a commit id', () => {
    assert.equal(seenCommit(pinned, { id: A }), A);
    assert.equal(seenCommit(pinned, { id: B }), undefined);
    assert.equal(seenCommit(pinned, { revision: gitRevision('main', B) }), undefined);
    assert.equal(seenCommit(branch, { id: '--upload-pack=touch /tmp/x' }), undefined);
    assert.equal(seenCommit(branch, { id: A.toUpperCase() }), undefined);
  });
});
