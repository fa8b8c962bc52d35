/** jemalloc, preloaded by the image into node, is not handed on to git, ssh and the other children. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { keepJemallocToThisProcess } from '../../src/cli/preload.js';

describe('LD_PRELOAD for children', () => {
  it('drops jemalloc and keeps any other preloaded library', () => {
    const only: NodeJS.ProcessEnv = { LD_PRELOAD: '/usr/local/lib/libjemalloc.so.2' };
    keepJemallocToThisProcess(only);
    assert.equal('LD_PRELOAD' in only, false);

    const mixed: NodeJS.ProcessEnv = { LD_PRELOAD: '/opt/a/libfoo.so /usr/lib/x86_64-linux-gnu/libjemalloc.so.2:/opt/b/libbar.so' };
    keepJemallocToThisProcess(mixed);
    assert.equal(mixed.LD_PRELOAD, '/opt/a/libfoo.so:/opt/b/libbar.so');

    const none: NodeJS.ProcessEnv = { PATH: '/bin' };
    keepJemallocToThisProcess(none);
    assert.deepEqual(none, { PATH: '/bin' });
  });

  it('a child started after it runs without the preload', () => {
    const env: NodeJS.ProcessEnv = { ...process.env, LD_PRELOAD: 'libjemalloc.so.2' };
    keepJemallocToThisProcess(env);
    const seen = execFileSync('sh', ['-c', 'echo "${LD_PRELOAD-unset}"'], { env, encoding: 'utf8' }).trim();
    assert.equal(seen, 'unset');
  });
});
