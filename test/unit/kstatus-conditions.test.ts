/**
 * Reconciling, Stalled and observedGeneration as kstatus reads them, and the
 * status conventions Flux's controllers are held to (fluxcd/pkg
 * runtime/conditions/check: FAIL0002-0011, WARN0003-0005), on every outcome
 * nextStatus can produce. The real kstatus and `kubectl wait` read them in
 * test/integration/kstatus.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { findCondition, nextStatus, type Outcome } from '../../src/api/status.js';
import type { Artifact, ArenaSourceStatus } from '../../src/api/schema.js';

const artifact: Artifact = { revision: 'main@sha1:abc', url: 'http://a/x.tar.gz', checksum: 'sha256:00', size: 1, lastUpdateTime: 't0' };
const OUTCOMES: Record<string, Outcome> = {
  pending: { kind: 'pending' },
  fetching: { kind: 'fetching' },
  ready: { kind: 'ready', artifact },
  retrying: { kind: 'failed', reason: 'FetchFailed', message: 'git server unreachable', stalled: false },
  stalled: { kind: 'failed', reason: 'InvalidSpec', message: 'spec.git.ref.branch: "a..b" is not a valid git ref name', stalled: true },
  suspended: { kind: 'suspended' },
};
/** Outcomes that end a cycle ("full reconciliation" in Flux's checks); pending/fetching are mid-cycle. */
const FINAL = new Set(['ready', 'retrying', 'stalled', 'suspended']);

const cond = (s: ArenaSourceStatus, type: string) => s.conditions?.find((c) => c.type === type);
const isTrue = (s: ArenaSourceStatus, type: string) => cond(s, type)?.status === 'True';

/** Flux's condition checks for an object at `generation` with this status; returns the violations. */
function fluxChecks(s: ArenaSourceStatus, generation: number, final: boolean): string[] {
  const problems: string[] = [];
  const og = s.observedGeneration ?? 0;
  const ready = cond(s, 'Ready');
  if (!ready) problems.push('FAIL0002 Ready must be present');
  if (final && isTrue(s, 'Reconciling') && ready?.status !== 'False') problems.push('FAIL0003 Ready False when Reconciling');
  if (isTrue(s, 'Stalled') && ready?.status !== 'False') problems.push('FAIL0004 Ready False when Stalled');
  if (cond(s, 'Reconciling') && cond(s, 'Stalled')) problems.push('FAIL0005 only one of Reconciling and Stalled');
  if (og > generation) problems.push('FAIL0006 observedGeneration <= generation');
  if (final && og < generation && ready?.status === 'True') problems.push('FAIL0007 Ready not True with an old observedGeneration');
  if (final && ready?.status === 'True') {
    for (const c of s.conditions ?? []) {
      if ((c.observedGeneration ?? 0) < generation) problems.push(`FAIL0008 ${c.type} observedGeneration behind`);
      if (c.observedGeneration !== og) problems.push(`FAIL0009 ${c.type} observedGeneration != status.observedGeneration`);
    }
  }
  if (ready?.status === 'Unknown' && !isTrue(s, 'Reconciling')) problems.push('FAIL0011 Reconciling=True when Ready=Unknown');
  for (const t of ['Reconciling', 'Stalled']) if (cond(s, t)?.status === 'False') problems.push(`WARN ${t}=False should be removed`);
  for (const c of s.conditions ?? []) if ((c.observedGeneration ?? 0) < 1) problems.push(`WARN0005 ${c.type} has no observedGeneration`);
  return problems;
}

/** kstatus' rules for a custom resource (sigs.k8s.io/cli-utils pkg/kstatus/status Compute), for quick checks. */
function kstatus(s: ArenaSourceStatus, generation: number): string {
  if (s.observedGeneration !== undefined && s.observedGeneration !== generation) return 'InProgress';
  for (const c of s.conditions ?? []) {
    if (c.type === 'Reconciling' && c.status === 'True') return 'InProgress';
    if (c.type === 'Stalled' && c.status === 'True') return 'Failed';
  }
  const ready = cond(s, 'Ready');
  if (ready) return ready.status === 'True' ? 'Current' : 'InProgress';
  return 'Current';
}

describe('kstatus conditions', () => {
  it('every outcome after every other keeps Flux conventions', () => {
    for (const [firstName, first] of Object.entries(OUTCOMES)) {
      for (const [name, outcome] of Object.entries(OUTCOMES)) {
        // The first status at generation 1, the next one after a spec change to generation 2.
        const before = nextStatus({}, first, { now: 't1', generation: 1, nextFetchTime: 't9' });
        const after = nextStatus(before, outcome, { now: 't2', generation: 2, nextFetchTime: 't9' });
        assert.deepEqual(fluxChecks(before, 1, FINAL.has(firstName)), [], `${firstName}`);
        assert.deepEqual(fluxChecks(after, 2, FINAL.has(name)), [], `${firstName} → ${name}`);
      }
    }
  });

  it('kstatus: Current when Ready, InProgress while working or retrying, Failed when stalled', () => {
    const at = (generation: number) => ({ now: 't', generation, nextFetchTime: 't9' });
    const pending = nextStatus({}, OUTCOMES.pending!, at(1));
    assert.equal(kstatus(pending, 1), 'InProgress');
    const fetching = nextStatus(pending, OUTCOMES.fetching!, at(1));
    assert.equal(kstatus(fetching, 1), 'InProgress');
    const ready = nextStatus(fetching, OUTCOMES.ready!, at(1));
    assert.equal(kstatus(ready, 1), 'Current');
    assert.equal(kstatus(ready, 2), 'InProgress', 'a new generation not yet seen');
    const refetching = nextStatus(ready, OUTCOMES.fetching!, at(1));
    assert.equal(kstatus(refetching, 1), 'InProgress');
    assert.equal(cond(refetching, 'Ready')!.status, 'True', 'Ready is not churned by a fetch');
    const retrying = nextStatus(refetching, OUTCOMES.retrying!, at(1));
    assert.equal(kstatus(retrying, 1), 'InProgress');
    const stalled = nextStatus(retrying, OUTCOMES.stalled!, at(2));
    assert.equal(kstatus(stalled, 2), 'Failed');
    assert.equal(kstatus(nextStatus(stalled, OUTCOMES.ready!, at(3)), 3), 'Current');
  });

  it('Reconciling: Progressing while a cycle has work, ProgressingWithRetry after a failure (and while retrying)', () => {
    const ready = nextStatus({}, OUTCOMES.ready!, { now: 't1', generation: 1 });
    assert.equal(findCondition(ready.conditions, 'Reconciling'), undefined);
    const fetching = nextStatus(ready, OUTCOMES.fetching!, { now: 't2', generation: 1 });
    assert.deepEqual(pick(findCondition(fetching.conditions, 'Reconciling')), { status: 'True', reason: 'Progressing' });
    const failed = nextStatus(fetching, OUTCOMES.retrying!, { now: 't3', generation: 1, nextFetchTime: '2030-01-01T00:00:05Z' });
    const reconciling = findCondition(failed.conditions, 'Reconciling')!;
    assert.deepEqual(pick(reconciling), { status: 'True', reason: 'ProgressingWithRetry' });
    assert.match(reconciling.message, /^FetchFailed: git server unreachable; retrying at 2030-01-01T00:00:05Z$/);
    assert.equal(reconciling.lastTransitionTime, 't2', 'still True since the fetch began');
    const retry = nextStatus(failed, OUTCOMES.fetching!, { now: 't4', generation: 1 });
    assert.equal(findCondition(retry.conditions, 'Reconciling')!.reason, 'ProgressingWithRetry');
    const recovered = nextStatus(retry, OUTCOMES.ready!, { now: 't5', generation: 1 });
    assert.equal(findCondition(recovered.conditions, 'Reconciling'), undefined);
    assert.equal(findCondition(nextStatus(recovered, OUTCOMES.fetching!, { now: 't6', generation: 1 }).conditions, 'Reconciling')!.reason, 'Progressing');
  });

  it('Stalled only when a spec change is needed, with the reason; removed once the spec works', () => {
    const stalled = nextStatus({}, OUTCOMES.stalled!, { now: 't1', generation: 4 });
    assert.deepEqual(pick(findCondition(stalled.conditions, 'Stalled')), { status: 'True', reason: 'InvalidSpec' });
    assert.match(findCondition(stalled.conditions, 'Stalled')!.message, /not a valid git ref name; not retried until the spec changes/);
    assert.equal(findCondition(stalled.conditions, 'Reconciling'), undefined);
    for (const reason of ['AuthenticationFailed', 'SecretNotFound', 'UnsafeContent', 'ArtifactTooLarge', 'StorageFailed']) {
      const s = nextStatus({}, { kind: 'failed', reason, message: 'x', stalled: false }, { now: 't1', generation: 1 });
      assert.equal(findCondition(s.conditions, 'Stalled'), undefined, reason);
    }
    const fixed = nextStatus(stalled, OUTCOMES.fetching!, { now: 't2', generation: 5 });
    assert.equal(findCondition(fixed.conditions, 'Stalled'), undefined);
  });

  it('status.observedGeneration moves when a generation is handled to the end, not while it is worked on or retried', () => {
    const ready = nextStatus({}, OUTCOMES.ready!, { now: 't1', generation: 1 });
    assert.equal(ready.observedGeneration, 1);
    const fetching = nextStatus(ready, OUTCOMES.fetching!, { now: 't2', generation: 2 });
    assert.equal(fetching.observedGeneration, 1);
    assert.equal(findCondition(fetching.conditions, 'Ready')!.observedGeneration, 1, 'Ready was set for generation 1');
    assert.equal(findCondition(fetching.conditions, 'Reconciling')!.observedGeneration, 2);
    const retrying = nextStatus(fetching, OUTCOMES.retrying!, { now: 't3', generation: 2 });
    assert.equal(retrying.observedGeneration, 1);
    assert.equal(findCondition(retrying.conditions, 'Ready')!.observedGeneration, 2, 'Ready=False is about generation 2');
    assert.equal(nextStatus(retrying, OUTCOMES.ready!, { now: 't4', generation: 2 }).observedGeneration, 2);
    assert.equal(nextStatus(retrying, OUTCOMES.stalled!, { now: 't4', generation: 3 }).observedGeneration, 3);
    assert.equal(nextStatus(retrying, OUTCOMES.suspended!, { now: 't4', generation: 3 }).observedGeneration, 3);
    assert.equal(nextStatus({}, OUTCOMES.pending!, { now: 't0', generation: 1 }).observedGeneration, undefined);
  });
});

function pick(c: { status: string; reason: string } | undefined) {
  return c && { status: c.status, reason: c.reason };
}
