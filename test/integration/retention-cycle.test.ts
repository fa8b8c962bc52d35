/** Retention driven by the workflow: replaced artifacts go after their TTL, the current one never. */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bareRepoPath, commitFiles, seedRepo } from '../../src/dev/demo-git/repo.js';
import { startTestEnv, type TestEnv } from '../helpers/env.js';
import { waitFor } from '../helpers/wait.js';

describe('retention in the reconcile loop', () => {
  let env: TestEnv;
  before(async () => {
    env = await startTestEnv('keep', { retention: { keep: 1, ttlMs: 3_000 } });
  });
  after(async () => env?.close());

  it('keeps the current artifact, and deletes a replaced one once its TTL has passed', async () => {
    await seedRepo(env.gitRoot, 'r', { 'pack.json': '{"v":1}' });
    await env.apply('kept', { type: 'git', interval: '1s', git: { url: env.git.repoUrl('r') } });
    const first = await env.waitFor('kept', 'Ready', (s) => s.status?.phase === 'Ready');
    const sha = await commitFiles(bareRepoPath(env.gitRoot, 'r'), { 'pack.json': '{"v":2}' }, { branch: 'main', message: 'v2' });
    const second = await env.waitFor('kept', 'v2', (s) => s.status?.artifact?.revision === `main@sha1:${sha}`);
    const dir = join(env.stack.store.root, env.namespace, 'kept');
    const files = async () => (await readdir(dir)).filter((f) => f.endsWith('.tar.gz')).sort();
    // Right after the switch the old artifact is still downloadable (a consumer may be mid-download).
    assert.equal((await env.download(first.status!.artifact!.url)).status, 200);
    const name = (url: string) => url.split('/').pop()!;
    await waitFor('old artifact pruned after its TTL', files, (f) => f.length === 1, 20_000);
    assert.deepEqual(await files(), [name(second.status!.artifact!.url)]);
    assert.equal((await env.download(first.status!.artifact!.url)).status, 404);
    assert.equal((await env.download(second.status!.artifact!.url)).status, 200);
  });
});
