/** Reading activity calls back from a recorded history: remote ones and local ones (markers) alike. */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { defaultPayloadConverter } from '@temporalio/common';
import proto from '@temporalio/proto';
import type { ReportStatusInput, ResolveRevisionResult } from '../../activities/types.js';
import { activityCalls, localActivityOf } from '../../src/temporal/history-activities.js';

const FIXTURES = join(process.cwd(), 'test', 'fixtures', 'histories');
const load = async (name: string) => proto.temporal.api.history.v1.History.decode(await readFile(join(FIXTURES, name))).events ?? [];

describe('activity calls in a history', () => {
  it('reads local resolveRevision calls from their markers: type, times, summary and result', async () => {
    const events = await load('lifecycle-2026-12-06-local-activities.pb');
    const calls = activityCalls(events);
    const resolves = calls.filter((c) => c.type === 'resolveRevision');
    assert.ok(resolves.length >= 3, `${resolves.length} resolves`);
    for (const call of resolves) {
      assert.equal(call.local, true);
      assert.equal(call.input, undefined, 'a local activity has no recorded input');
      assert.ok(call.scheduledMs! > Date.parse('2026-01-01') && call.completedMs! >= call.scheduledMs!, 'times from the marker');
      assert.match(call.summary ?? '', /^resolve /);
      const result = defaultPayloadConverter.fromPayload<ResolveRevisionResult>(call.result!);
      assert.equal(typeof result.revision, 'string');
    }
    // The rest of a cycle stays remote, with its input recorded; patch markers are not activities.
    const remote = calls.filter((c) => !c.local);
    assert.ok(remote.some((c) => c.type === 'fetchSource' && c.input && c.result), 'fetchSource is remote, with input and result');
    const patches = events.filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_patch');
    assert.ok(patches.length > 0 && patches.every((e) => localActivityOf(e) === undefined));
  });

  it('reads local status writes and prunes: the status written is the result', async () => {
    const calls = activityCalls(await load('lifecycle-2026-12-06-local-activities.pb'));
    const writes = calls.filter((c) => c.type === 'reportStatus');
    assert.ok(writes.length >= 3 && writes.every((c) => c.local && c.result));
    const phases = writes.map((c) => defaultPayloadConverter.fromPayload<ReportStatusInput>(c.result!).status.phase);
    assert.ok(phases.includes('Ready'), phases.join(','));
    assert.ok(calls.some((c) => c.type === 'pruneArtifacts' && c.local));
    assert.ok(calls.filter((c) => ['fetchSource', 'packBundle', 'uploadArtifact'].includes(c.type)).every((c) => !c.local));
  });

  it('reads histories of older code (every activity remote)', async () => {
    const calls = activityCalls(await load('lifecycle-2026-11-25.pb'));
    assert.ok(calls.length > 0 && calls.every((c) => !c.local && c.input !== undefined && c.scheduledMs !== undefined));
    assert.ok(calls.some((c) => c.type === 'resolveRevision'));
  });
});
