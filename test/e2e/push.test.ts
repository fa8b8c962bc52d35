/** `arena-source push` to a real registry, then an ArenaSource pulling what was pushed. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { startTestEnv, type TestEnv } from '../helpers/env.js';
import { BIN } from '../helpers/processes.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const run = promisify(execFile);

describe('arena-source push', () => {
  let registry: TestRegistry;
  let env: TestEnv;
  before(async () => {
    registry = await startRegistry();
    env = await startTestEnv('push');
  });
  after(async () => {
    await env?.close();
    await registry?.close();
  });

  it('publishes a bundle directory that an oci source then serves byte-identically, with the annotations', async () => {
    const url = `oci://${registry.host}/packs/support:v1`;
    const args = [BIN, 'push', 'examples/repos/prompt-library/customer-support', url, '--insecure', '--source', 'https://example.com/prompts.git', '--revision', 'main@sha1:0123'];
    const { stdout } = await run('node', args);
    const digest = /digest: +(sha256:[0-9a-f]{64})/.exec(stdout)?.[1];
    const checksum = /content: +(sha256:[0-9a-f]{64})/.exec(stdout)?.[1];
    assert.ok(digest && checksum, stdout);
    // Same content, same annotations ⇒ same digest (reproducible pushes).
    assert.match((await run('node', args)).stdout, new RegExp(digest));

    await env.apply('pushed', { type: 'oci', interval: '1h', oci: { url, insecure: true } });
    const src = await env.waitFor('pushed', 'Ready', (s) => s.status?.phase === 'Ready', 60_000);
    assert.equal(src.status!.artifact!.revision, `v1@${digest}`);
    assert.equal(src.status!.artifact!.checksum, checksum, 'the served artifact is the pushed layer, byte for byte');

    const manifest = await (await fetch(`http://${registry.host}/v2/packs/support/manifests/${digest}`, {
      headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' },
    })).json() as { annotations?: Record<string, string> };
    assert.equal(manifest.annotations?.['org.opencontainers.image.source'], 'https://example.com/prompts.git');
    assert.equal(manifest.annotations?.['org.opencontainers.image.revision'], 'main@sha1:0123');
  });
});
