/**
 * One git process through simple-git (src/sources/git/run.ts), in this process
 * and in the git host process (host.ts), with the real git and no network: stdin,
 * silent failures, the deadline, the environment guards and what gets through.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FetchFailedError } from '../../src/errors.js';
import { gitExec } from '../../src/sources/git/exec.js';
import { runGitInHost } from '../../src/sources/git/host.js';
import { runGit, type GitRequest } from '../../src/sources/git/run.js';

describe('running git through simple-git', () => {
  let dir: string;
  const base = (): Omit<GitRequest, 'args'> => ({ binary: 'git', cwd: dir, config: [], env: { PATH: process.env.PATH ?? '' }, timeoutMs: 20_000 });
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'git-run-'));
    const init = await runGit({ ...base(), args: ['init', '--quiet', '--template='], emptyTemplate: true });
    assert.deepEqual(init, { ok: true, stdout: '' });
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  for (const [where, run] of [
    ['in this process', runGit],
    ['in the host process', runGitInHost],
  ] as const) {
    describe(where, () => {
      it('writes stdin and returns stdout', async () => {
        const reply = await run({ ...base(), args: ['hash-object', '--stdin'], input: 'hello\n' });
        assert.deepEqual(reply, { ok: true, stdout: 'ce013625030ba8dba906f756967f9e9ca394464a\n' });
      });

      it('a silent non-zero exit is a failure', async () => {
        const reply = await run({ ...base(), args: ['rev-parse', '--verify', '--quiet', 'refs/heads/none'] });
        assert.equal(reply.ok, false);
      });

      it('a failure carries git’s stderr', async () => {
        const reply = await run({ ...base(), args: ['cat-file', '-t', 'f'.repeat(40)] });
        assert.ok(!reply.ok && /^fatal: (not a valid object name|git cat-file: could not get object)/i.test(reply.message), JSON.stringify(reply));
        assert.ok(!reply.ok && !reply.timedOut);
      });

      it('the timeout kills a process that never ends', async () => {
        // Without input its stdin stays open: `cat-file --batch` waits for it forever.
        const reply = await run({ ...base(), args: ['cat-file', '--batch'], timeoutMs: 300 });
        assert.ok(!reply.ok && reply.timedOut, JSON.stringify(reply));
      });

      it('-c settings and every GIT_* variable of ours reach git; EDITOR and PAGER are dropped, not refused', async () => {
        const env = {
          ...base().env,
          EDITOR: 'arena-editor',
          PAGER: 'less',
          GIT_ASKPASS: 'true',
          GIT_SSH_COMMAND: 'ssh -o BatchMode=yes',
          GIT_CONFIG_COUNT: '2',
          GIT_CONFIG_KEY_0: 'credential.helper',
          GIT_CONFIG_VALUE_0: '',
          GIT_CONFIG_KEY_1: 'arena.fromenv',
          GIT_CONFIG_VALUE_1: 'yes',
        };
        const fromArgs = await run({ ...base(), env, config: ['arena.fromargs=yes'], args: ['config', '--get', 'arena.fromargs'] });
        assert.deepEqual(fromArgs, { ok: true, stdout: 'yes\n' });
        const fromEnv = await run({ ...base(), env, args: ['config', '--get', 'arena.fromenv'] });
        assert.deepEqual(fromEnv, { ok: true, stdout: 'yes\n' });
        const editor = await run({ ...base(), env, args: ['var', 'GIT_EDITOR'] });
        assert.ok(!(editor.ok && editor.stdout.includes('arena-editor')), 'EDITOR is not passed');
      });

      it('still refuses what would run another program and is not ours', async () => {
        const reply = await run({ ...base(), args: ['fetch', '--upload-pack=touch /tmp/pwned', 'origin'] });
        assert.ok(!reply.ok && /not permitted|allowUnsafePack/i.test(reply.message), JSON.stringify(reply));
        const template = await run({ ...base(), args: ['init', '--template=/tmp/evil'] });
        assert.ok(!template.ok && /allowUnsafeTemplateDir/.test(template.message), JSON.stringify(template));
      });
    });
  }

  it('a binary that cannot be started says so in one line', async () => {
    const reply = await runGit({ ...base(), binary: '/nonexistent/git', args: ['--version'] });
    assert.deepEqual(reply, { ok: false, message: 'Error: spawn /nonexistent/git ENOENT', timedOut: false });
  });

  it('gitExec classifies a timeout as a FetchFailed that names the time', async () => {
    await assert.rejects(gitExec(dir, ['cat-file', '--batch'], { timeoutMs: 300 }, 'https://git.example.invalid/r.git'), (err: unknown) => {
      assert.ok(err instanceof FetchFailedError);
      assert.match(err.message, /did not answer in time: git cat-file timed out after 300 ms/);
      return true;
    });
  });
});
