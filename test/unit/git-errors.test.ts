/**
 * git's messages as typed errors (src/sources/git/errors.ts), beyond the
 * authentication cases in git-auth.test.ts: timeouts, missing repositories,
 * refs and commits, refused wants, and what a message may not contain.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AuthenticationFailedError, FetchFailedError } from '../../src/errors.js';
import { classifyGitError, isMissingCommit, isMissingRef, notFound, refusedCommitWant } from '../../src/sources/git/errors.js';

const url = 'https://bot:s3cret@git.example.invalid/acme/r.git';

describe('classifyGitError', () => {
  it('a deadline is a retryable FetchFailed saying the remote did not answer in time', () => {
    const err = classifyGitError(new Error('git fetch timed out after 500 ms'), url);
    assert.ok(err instanceof FetchFailedError);
    assert.equal(err.retryable, true);
    assert.match(err.message, /did not answer in time/);
  });

  it('a missing repository says so', () => {
    for (const raw of [
      "remote: Repository not found.\nfatal: repository 'https://git.example.invalid/acme/r.git/' not found",
      "fatal: 'origin' does not appear to be a git repository",
    ]) {
      const err = classifyGitError(new Error(raw), url);
      assert.ok(err instanceof FetchFailedError, raw);
      assert.match(err.message, /repository .* not found/);
    }
  });

  it('HTTP 403 is an authentication failure', () => {
    const err = classifyGitError(new Error("fatal: unable to access 'x': The requested URL returned error: 403"), url);
    assert.ok(err instanceof AuthenticationFailedError);
  });

  it('an object id that happens to contain 401 or 403 is not an HTTP status (seen on CI: a refused want read as bad credentials)', () => {
    const err = classifyGitError(new Error('error: Server does not allow request for unadvertised object aa3a9553bbc6a430f72dfb49f3401e87dae3b0ea'), url);
    assert.ok(err instanceof FetchFailedError && refusedCommitWant(err), String(err));
  });

  it('anything else is a retryable FetchFailed with git’s lines, hints dropped, joined on one line', () => {
    const err = classifyGitError(new Error('error: RPC failed; curl 56 Recv failure\nhint: try this\nfatal: early EOF\n'), url);
    assert.ok(err instanceof FetchFailedError);
    assert.equal(err.retryable, true);
    assert.match(err.message, /RPC failed; curl 56 Recv failure; fatal: early EOF$/);
    assert.ok(!err.message.includes('hint'));
  });

  it('never repeats credentials from a URL, neither ours nor one in git’s message', () => {
    const err = classifyGitError(new Error(`fatal: unable to access '${url}/': Could not resolve host`), url);
    assert.ok(!err.message.includes('s3cret'), err.message);
  });
});

describe('fetch outcomes', () => {
  const fetchFailed = (raw: string) => classifyGitError(new Error(raw), url);

  it('a commit refused by id (v0 server, or force-pushed away) is told apart', () => {
    assert.equal(refusedCommitWant(fetchFailed(`fatal: remote error: upload-pack: not our ref ${'a'.repeat(40)}`)), true);
    assert.equal(refusedCommitWant(fetchFailed('error: Server does not allow request for unadvertised object abc')), true);
    assert.equal(refusedCommitWant(fetchFailed('fatal: early EOF')), false);
    assert.equal(refusedCommitWant(new Error('not our ref')), false, 'only classified errors');
  });

  it('a missing ref and a missing commit are told apart from other failures', () => {
    assert.equal(isMissingRef(fetchFailed("fatal: couldn't find remote ref refs/heads/gone")), true);
    assert.equal(isMissingRef(fetchFailed('fatal: early EOF')), false);
    assert.equal(isMissingCommit(new Error(`fatal: reference is not a tree: ${'a'.repeat(40)}`)), true);
    assert.equal(isMissingCommit(new Error('error: unable to write file')), false);
  });

  it('not found is final (not retryable) and names the URL without credentials', () => {
    const err = notFound({ url }, "branch 'gone'", new Error('cause'));
    assert.equal(err.retryable, false);
    assert.equal(err.message, "branch 'gone' not found in https://bot:***@git.example.invalid/acme/r.git");
  });
});
