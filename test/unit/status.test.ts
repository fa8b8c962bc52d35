import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { findCondition, nextStatus } from '../../src/api/status.js';
import type { Artifact, ArenaSourceStatus } from '../../src/api/schema.js';

const artifact: Artifact = {
  revision: 'main@sha1:abc',
  url: 'http://a/x.tar.gz',
  checksum: 'sha256:00',
  size: 1,
  lastUpdateTime: 't0',
};
const at = (now: string) => ({ now, generation: 3 });

describe('status: phase and conditions from one function', () => {
  it('starts Pending with Ready Unknown', () => {
    const s = nextStatus({}, { kind: 'pending' }, at('t0'));
    assert.equal(s.phase, 'Pending');
    assert.equal(findCondition(s.conditions, 'Ready')!.status, 'Unknown');
    assert.equal(findCondition(s.conditions, 'ArtifactAvailable')!.status, 'False');
    assert.deepEqual(s.conditions!.map((c) => c.type), ['Ready', 'Reconciling', 'Fetching', 'ArtifactAvailable', 'SourceValid']);
    assert.equal(findCondition(s.conditions, 'SourceValid')!.status, 'Unknown');
  });

  it('Initializing while the first fetch runs, Fetching once there is content (Omnia)', () => {
    const first = nextStatus(nextStatus({}, { kind: 'pending' }, at('t0')), { kind: 'fetching' }, at('t1'));
    assert.equal(first.phase, 'Initializing');
    const ready = nextStatus(first, { kind: 'ready', artifact }, at('t2'));
    assert.equal(nextStatus(ready, { kind: 'fetching' }, at('t3')).phase, 'Fetching');
  });

  it('SourceValid=False with the reason only when the spec or target path is at fault', () => {
    const bad = nextStatus({}, { kind: 'failed', reason: 'InvalidTargetPath', message: 'spec.targetPath: must not contain ".."', stalled: true }, at('t1'));
    assert.deepEqual(
      { status: findCondition(bad.conditions, 'SourceValid')!.status, reason: findCondition(bad.conditions, 'SourceValid')!.reason },
      { status: 'False', reason: 'InvalidTargetPath' },
    );
    const down = nextStatus({}, { kind: 'failed', reason: 'FetchFailed', message: 'down', stalled: false }, at('t1'));
    assert.equal(findCondition(down.conditions, 'SourceValid')!.status, 'True');
  });

  it('content fields follow the published version (Omnia names) and carry over otherwise', () => {
    const versioned = { ...artifact, version: '0123456789ab', contentPath: 'arena/x/.arena/versions/0123456789ab' };
    const s = nextStatus({}, { kind: 'ready', artifact: versioned, content: { versionCount: 1, created: '0123456789ab' } }, at('t1'));
    assert.deepEqual(
      { head: s.headVersion, count: s.versionCount, rev: s.lastSyncRevision, created: s.lastVersionCreated },
      { head: '0123456789ab', count: 1, rev: 'main@sha1:abc', created: '0123456789ab' },
    );
    // A later sync that reused a version: HEAD and revision move, lastVersionCreated stays.
    const reused = { ...versioned, revision: 'main@sha1:def', version: 'ba9876543210', contentPath: 'arena/x/.arena/versions/ba9876543210' };
    const t = nextStatus(s, { kind: 'ready', artifact: reused, content: { versionCount: 2 } }, at('t2'));
    assert.deepEqual(
      { head: t.headVersion, count: t.versionCount, rev: t.lastSyncRevision, created: t.lastVersionCreated },
      { head: 'ba9876543210', count: 2, rev: 'main@sha1:def', created: '0123456789ab' },
    );
    const failed = nextStatus(t, { kind: 'failed', reason: 'FetchFailed', message: 'down', stalled: false }, at('t3'));
    assert.equal(failed.headVersion, 'ba9876543210');
    assert.equal(failed.versionCount, 2);
  });

  it('Fetching does not churn Ready of a served artifact', () => {
    const ready = nextStatus({}, { kind: 'ready', artifact }, at('t1'));
    const fetching = nextStatus(ready, { kind: 'fetching' }, at('t2'));
    assert.equal(fetching.phase, 'Fetching');
    assert.deepEqual(findCondition(fetching.conditions, 'Ready'), findCondition(ready.conditions, 'Ready'));
    assert.equal(findCondition(fetching.conditions, 'Fetching')!.status, 'True');
  });

  it('moves lastTransitionTime only when a status flips', () => {
    const a = nextStatus({}, { kind: 'ready', artifact }, at('t1'));
    const b = nextStatus(a, { kind: 'ready', artifact: { ...artifact, revision: 'main@sha1:def' } }, at('t2'));
    assert.equal(findCondition(b.conditions, 'Ready')!.lastTransitionTime, 't1');
    const c = nextStatus(b, { kind: 'failed', reason: 'FetchFailed', message: 'down', stalled: false }, at('t3'));
    assert.equal(findCondition(c.conditions, 'Ready')!.lastTransitionTime, 't3');
  });

  it('an error keeps the artifact and says so; phase and Ready agree', () => {
    const ready = nextStatus({}, { kind: 'ready', artifact }, at('t1'));
    const failed = nextStatus(ready, { kind: 'failed', reason: 'AuthenticationFailed', message: 'bad creds', stalled: false }, at('t2'));
    assert.equal(failed.phase, 'Error');
    assert.deepEqual(failed.artifact, artifact);
    const readyCond = findCondition(failed.conditions, 'Ready')!;
    assert.equal(readyCond.status, 'False');
    assert.equal(readyCond.reason, 'AuthenticationFailed');
    assert.match(readyCond.message, /bad creds; still serving the last artifact \(revision 'main@sha1:abc'\)/);
    assert.equal(findCondition(failed.conditions, 'ArtifactAvailable')!.status, 'True');
    assert.equal(readyCond.observedGeneration, 3);
  });

  it('a first failure has no artifact to offer', () => {
    const failed = nextStatus({}, { kind: 'failed', reason: 'InvalidSpec', message: 'spec.git: required', stalled: true }, at('t1'));
    assert.equal(findCondition(failed.conditions, 'ArtifactAvailable')!.status, 'False');
    assert.match(findCondition(failed.conditions, 'Ready')!.message, /not retried until the spec changes/);
  });

  it('suspended: Ready=False reason Suspended, phase Pending, artifact kept', () => {
    const ready: ArenaSourceStatus = nextStatus({}, { kind: 'ready', artifact }, at('t1'));
    const s = nextStatus(ready, { kind: 'suspended' }, at('t2'));
    assert.equal(s.phase, 'Pending');
    assert.equal(findCondition(s.conditions, 'Ready')!.reason, 'Suspended');
    assert.equal(findCondition(s.conditions, 'Ready')!.status, 'False');
    assert.deepEqual(s.artifact, artifact);
  });

  it('BundleValid: set by a validated artifact or a strict refusal, kept by cycles that validated nothing', () => {
    const invalid = nextStatus({}, { kind: 'ready', artifact, bundle: { valid: false, message: '1 problem: pack.json /: x' } }, at('t1'));
    assert.equal(invalid.phase, 'Ready', 'warn: published and reported');
    assert.deepEqual(
      (({ status, reason, message }) => ({ status, reason, message }))(findCondition(invalid.conditions, 'BundleValid')!),
      { status: 'False', reason: 'InvalidBundle', message: '1 problem: pack.json /: x' },
    );
    assert.deepEqual(invalid.conditions!.map((c) => c.type), ['Ready', 'Fetching', 'ArtifactAvailable', 'SourceValid', 'BundleValid']);
    const noop = nextStatus(invalid, { kind: 'ready', artifact }, at('t2'));
    assert.equal(findCondition(noop.conditions, 'BundleValid')!.status, 'False', 'a no-op cycle keeps it');
    const valid = nextStatus(noop, { kind: 'ready', artifact, bundle: { valid: true, message: 'checked pack.json' } }, at('t3'));
    assert.equal(findCondition(valid.conditions, 'BundleValid')!.reason, 'Valid');
    const refused = nextStatus(valid, { kind: 'failed', reason: 'InvalidBundle', message: 'not valid: pack.json /id', stalled: false }, at('t4'));
    assert.equal(refused.phase, 'Error');
    assert.deepEqual(refused.artifact, artifact, 'strict: the last good artifact stays');
    assert.equal(findCondition(refused.conditions, 'BundleValid')!.status, 'False');
    assert.equal(findCondition(refused.conditions, 'SourceValid')!.status, 'True', 'the spec is fine');
    assert.equal(findCondition(refused.conditions, 'ArtifactAvailable')!.status, 'True');
    const down = nextStatus(refused, { kind: 'failed', reason: 'FetchFailed', message: 'down', stalled: false }, at('t5'));
    assert.equal(findCondition(down.conditions, 'BundleValid')!.message, 'not valid: pack.json /id', 'other failures leave it');
  });
});
