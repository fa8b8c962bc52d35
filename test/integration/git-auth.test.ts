/**
 * Private git sources end to end: real Temporal, the local stack, a git
 * smart-HTTP server that demands basic auth and a real sshd on a non-22 port.
 * Credentials come from Secrets named in spec.git.secretRef; the statuses say
 * what is wrong without a value, no key file outlives a fetch, and neither
 * workflow history nor status ever holds a password or a line of a key.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ArenaSource, ArenaSourceSpec } from '../../src/api/schema.js';
import { findCondition } from '../../src/api/status.js';
import { reconcileSource, sourceHandle } from '../../src/client.js';
import { seedRepo } from '../../src/dev/demo-git/repo.js';
import { SshGitServer, generateSshKeyPair } from '../helpers/ssh-server.js';
import { startTestEnv, type TestEnv } from '../helpers/env.js';
import { assertNoSecrets, authTempDirs, filesText, putSecret, secretNeedles, sshSecretData, textOf, type SecretData } from '../helpers/ssh.js';
import { wholeHistory } from '../helpers/history.js';

const USER = 'prompt-reader';
const PASSWORD = 'ghp_Zq8v3Lr7Tn2Wx5Kc9Hb4';
const pack = (id: string) => JSON.stringify({ id, version: '1.0.0' });

describe('private git sources', () => {
  let env: TestEnv;
  let ssh: SshGitServer;
  let sha: string;
  /** Every Secret put, by name: the values that must never leak. */
  const secrets = new Map<string, SecretData>();
  const sources: string[] = [];

  const reasonOf = (s: ArenaSource) => findCondition(s.status?.conditions, 'Ready')?.reason;
  const messageOf = (s: ArenaSource) => findCondition(s.status?.conditions, 'Ready')?.message ?? '';

  async function secret(name: string, data: SecretData): Promise<void> {
    secrets.set(name, data);
    await putSecret(env.stack.resources, env.namespace, name, data);
  }

  async function apply(name: string, url: string, secretName?: string): Promise<void> {
    sources.push(name);
    const git: NonNullable<ArenaSourceSpec['git']> = { url, ...(secretName ? { secretRef: { name: secretName } } : {}) };
    await env.apply(name, { type: 'git', interval: '1h', timeout: '20s', git });
  }

  const ready = (name: string) => env.waitFor(name, 'Ready', (s) => s.status?.phase === 'Ready');
  const failed = (name: string, reason: string) =>
    env.waitFor(name, `Error/${reason}`, (s) => s.status?.phase === 'Error' && reasonOf(s) === reason);

  /** The key directories live only while git runs: none once a status is published. */
  async function noKeyFilesLeft(): Promise<void> {
    assert.deepEqual(await authTempDirs(join(env.dataDir, 'work')), []);
  }

  before(async () => {
    env = await startTestEnv('auth', { gitAuth: { username: USER, password: PASSWORD } });
    ssh = await SshGitServer.start({ root: env.gitRoot });
    sha = await seedRepo(env.gitRoot, 'private', { 'pack.json': pack('private') });
  });
  after(async () => {
    await env?.close();
    await ssh?.close();
  });

  describe('over HTTPS (basic auth)', () => {
    it('good credentials: Ready', async () => {
      await secret('https-good', { username: USER, password: PASSWORD });
      await apply('https-ok', env.git.repoUrl('private'), 'https-good');
      const src = await ready('https-ok');
      assert.equal(src.status!.artifact!.revision, `main@sha1:${sha}`);
      assert.ok(env.git.stats('private').fetches >= 1);
      await noKeyFilesLeft();
    });

    it('a wrong password: Error/AuthenticationFailed naming the URL, not the password', async () => {
      await secret('https-wrong', { username: USER, password: 'not-the-password-42' });
      await apply('https-wrong', env.git.repoUrl('private'), 'https-wrong');
      const src = await failed('https-wrong', 'AuthenticationFailed');
      assert.ok(messageOf(src).includes(env.git.repoUrl('private')), messageOf(src));
      assert.ok(!messageOf(src).includes('not-the-password-42'));
      assert.equal(src.status!.artifact, undefined);
      await noKeyFilesLeft();
    });

    it('no secretRef for a private repository: Error/AuthenticationFailed (no prompt, no hang)', async () => {
      await apply('https-anon', env.git.repoUrl('private'));
      const src = await failed('https-anon', 'AuthenticationFailed');
      assert.match(messageOf(src), /authentication to http:\/\/127\.0\.0\.1:\d+\/private\.git failed/);
    });

    it('a missing Secret: Error/SecretNotFound', async () => {
      await apply('https-nosecret', env.git.repoUrl('private'), 'does-not-exist');
      const src = await failed('https-nosecret', 'SecretNotFound');
      assert.match(messageOf(src), new RegExp(`Secret ${env.namespace}/does-not-exist not found`));
    });

    it('a Secret without the password key: Error/SecretNotFound naming the Secret and the key', async () => {
      await secret('https-user-only', { username: USER });
      await apply('https-nokey', env.git.repoUrl('private'), 'https-user-only');
      const src = await failed('https-nokey', 'SecretNotFound');
      assert.match(messageOf(src), new RegExp(`Secret ${env.namespace}/https-user-only has no key 'password'`));
      await noKeyFilesLeft();
    });

    it('rotating the Secret fixes the source on the next reconcile, spec untouched', async () => {
      await secret('https-rotated', { username: USER, password: 'expired-token-0000' });
      await apply('https-rotate', env.git.repoUrl('private'), 'https-rotated');
      await failed('https-rotate', 'AuthenticationFailed');
      await secret('https-rotated', { username: USER, password: PASSWORD });
      secrets.set('https-rotated-old', { username: USER, password: 'expired-token-0000' });
      await reconcileSource(env.stack.client, { namespace: env.namespace, name: 'https-rotate' }, '2026-11-25T12:00:00Z');
      const src = await ready('https-rotate');
      assert.equal(src.status!.artifact!.revision, `main@sha1:${sha}`);
    });
  });

  describe('over SSH (real sshd on a non-22 port)', () => {
    it('good key and known_hosts: Ready with the branch revision', async () => {
      assert.notEqual(ssh.port, 22);
      await secret('ssh-good', sshSecretData(ssh));
      await apply('ssh-ok', ssh.url('private'), 'ssh-good');
      const src = await ready('ssh-ok');
      assert.equal(src.status!.artifact!.revision, `main@sha1:${sha}`);
      await noKeyFilesLeft();
    });

    it('a client key the server does not accept: Error/AuthenticationFailed', async () => {
      await secret('ssh-wrong-key', sshSecretData(ssh, { identity: (await generateSshKeyPair('stranger')).privateKey }));
      await apply('ssh-wrongkey', ssh.url('private'), 'ssh-wrong-key');
      const src = await failed('ssh-wrongkey', 'AuthenticationFailed');
      assert.match(messageOf(src), /Permission denied \(publickey\)/);
      await noKeyFilesLeft();
    });

    it('a host key that is not in known_hosts: Error/AuthenticationFailed saying so', async () => {
      const impostor = await generateSshKeyPair('impostor');
      await secret('ssh-wrong-host', sshSecretData(ssh, { known_hosts: `[127.0.0.1]:${ssh.port} ${impostor.publicKey}\n` }));
      await apply('ssh-wronghost', ssh.url('private'), 'ssh-wrong-host');
      const src = await failed('ssh-wronghost', 'AuthenticationFailed');
      assert.match(messageOf(src), /host key of \[127\.0\.0\.1\]:\d+ did not match known_hosts/);
      await noKeyFilesLeft();
    });

    it('a Secret without known_hosts: Error/SecretNotFound (never trust on first use)', async () => {
      await secret('ssh-no-kh', { identity: ssh.clientPrivateKey });
      await apply('ssh-nokh', ssh.url('private'), 'ssh-no-kh');
      const src = await failed('ssh-nokh', 'SecretNotFound');
      assert.match(messageOf(src), /has no key 'known_hosts'/);
      await noKeyFilesLeft();
    });

    it('an ssh:// URL without a secretRef: Error/InvalidSpec at once, not a hang', async () => {
      await apply('ssh-noref', ssh.url('private'));
      const src = await failed('ssh-noref', 'InvalidSpec');
      assert.match(messageOf(src), /secretRef: required for ssh:\/\/ URLs/);
    });
  });

  it('no workflow history, status or event holds a password or a line of a private key', async () => {
    const needles = [...secrets.values()].flatMap(secretNeedles);
    assert.ok(needles.includes(PASSWORD));
    assert.ok(needles.some((n) => n.startsWith('b3BlbnNzaC1rZXktdjEA')), 'the private key body is searched for');

    for (const name of sources) {
      const history = await wholeHistory(env.stack.client, sourceHandle(env.stack.client, { namespace: env.namespace, name }).workflowId);
      const text = textOf(history);
      // The search is over decoded payloads: the inputs (spec with the Secret's name) are readable.
      assert.ok(text.includes('\\"spec\\":{'), `${name}: history payloads decoded`); // JSON text inside JSON
      assertNoSecrets(text, needles, `workflow history of ${name}`);
      assertNoSecrets(textOf(await env.get(name)), needles, `status of ${name}`);
    }
    assert.ok(textOf(await wholeHistory(env.stack.client, sourceHandle(env.stack.client, { namespace: env.namespace, name: 'ssh-ok' }).workflowId)).includes('ssh-good'));
    assertNoSecrets(await filesText(join(env.dataDir, 'status')), needles, 'the status store (statuses and events)');
  });
});
