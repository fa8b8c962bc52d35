/** ConfigMap sources in local mode: content-hash revisions, edits, bad keys and bad JSON. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { findCondition } from '../../src/api/status.js';
import { listArchive } from '../../src/bundle/pack.js';
import { startTestEnv, type TestEnv } from '../helpers/env.js';

const pack = (v: string) => JSON.stringify({ id: 'cm', version: v });
const hash = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;

describe('configmap sources', () => {
  let env: TestEnv;
  const put = (name: string, data: Record<string, string>) =>
    env.stack.resources.putConfigMap({ namespace: env.namespace, name, data, binaryData: {} });

  before(async () => {
    env = await startTestEnv('cm');
  });
  after(async () => env?.close());

  it('packs the key as a one-file bundle; revision is the content hash; an edit is a new revision', async () => {
    await put('prompts', { 'pack.json': pack('1'), other: 'ignored' });
    await env.apply('prompts', { type: 'configmap', interval: '1s', configMap: { name: 'prompts' } });
    const first = await env.waitFor('prompts', 'Ready', (s) => s.status?.phase === 'Ready');
    assert.equal(first.status!.artifact!.revision, hash(pack('1')));
    const dl = await env.download(first.status!.artifact!.url);
    const file = join(tmpdir(), `cm-${process.pid}.tar.gz`);
    await writeFile(file, dl.body);
    assert.deepEqual((await listArchive(file)).map((e) => e.path), ['pack.json']);
    await put('prompts', { 'pack.json': pack('2') });
    const second = await env.waitFor('prompts', 'new revision', (s) => s.status?.artifact?.revision === hash(pack('2')));
    assert.notEqual(second.status!.artifact!.checksum, first.status!.artifact!.checksum);
  });

  it('honours a custom key', async () => {
    await put('custom', { 'bundle.json': pack('c') });
    await env.apply('custom', { type: 'configmap', interval: '1m', configMap: { name: 'custom', key: 'bundle.json' } });
    const src = await env.waitFor('custom', 'Ready', (s) => s.status?.phase === 'Ready');
    assert.equal(src.status!.artifact!.revision, hash(pack('c')));
  });

  it('a missing key is an Error naming the key and the keys present', async () => {
    await put('nokey', { 'other.json': '{}' });
    await env.apply('nokey', { type: 'configmap', interval: '1m', configMap: { name: 'nokey' } });
    const src = await env.waitFor('nokey', 'Error', (s) => s.status?.phase === 'Error');
    const ready = findCondition(src.status!.conditions, 'Ready')!;
    assert.equal(ready.reason, 'FetchFailed');
    assert.match(ready.message, /ConfigMap t-[a-z0-9]+\/nokey has no key 'pack\.json' \(keys: other\.json\)/);
  });

  it('a missing ConfigMap and invalid JSON are clear errors', async () => {
    await env.apply('ghost', { type: 'configmap', interval: '1m', configMap: { name: 'ghost' } });
    const ghost = await env.waitFor('ghost', 'Error', (s) => s.status?.phase === 'Error');
    assert.match(findCondition(ghost.status!.conditions, 'Ready')!.message, /ConfigMap t-[a-z0-9]+\/ghost not found/);
    await put('broken', { 'pack.json': '{"id": ' });
    await env.apply('broken', { type: 'configmap', interval: '1m', configMap: { name: 'broken' } });
    const broken = await env.waitFor('broken', 'Error', (s) => s.status?.phase === 'Error');
    assert.match(findCondition(broken.status!.conditions, 'Ready')!.message, /key 'pack\.json' is not valid JSON/);
  });
});
