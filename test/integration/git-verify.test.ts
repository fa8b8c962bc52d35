/**
 * spec.git.verify against real signatures: commits and tags signed by git with
 * OpenPGP keys (gpg) and SSH keys (ssh-keygen), checked by the worker with git
 * verify-commit / verify-tag. First through the fetchSource activity (good, bad,
 * missing and untrusted signatures; modes HEAD, Tag, TagAndHEAD), then through the
 * whole stack: an unsigned revision is never published, the last good artifact
 * stays served, the refused revision is not fetched again, and the next signed
 * one is published. No key material in history, status or logs.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { sourceActivities } from '../../activities/source.js';
import type { ArenaSource, ArenaSourceSpec } from '../../src/api/schema.js';
import { findCondition } from '../../src/api/status.js';
import { reconcileSource, sourceHandle } from '../../src/client.js';
import { GitHttpServer } from '../../src/dev/demo-git/git-http-server.js';
import { bareRepoPath, seedRepo } from '../../src/dev/demo-git/repo.js';
import { SecretNotFoundError, VerificationFailedError } from '../../src/errors.js';
import { GIT_VERIFY_DIR_PREFIX } from '../../src/sources/git/verify.js';
import { inActivity, localActivityDeps, type LocalActivityDeps } from '../helpers/activity-deps.js';
import { startTestEnv, type TestEnv } from '../helpers/env.js';
import { closeSigner, makePgpSigner, makeSshSigner, signedCommit, tamperedCommit, type Signer } from '../helpers/signing.js';
import { assertNoSecrets, filesText, putSecret, textOf } from '../helpers/ssh.js';
import { toolSkipReason } from '../helpers/manifests.js';
import { wholeHistory } from '../helpers/history.js';

const run = promisify(execFile);
const NS = 'team';

describe('git signature verification', { skip: toolSkipReason('gpg', 'ssh-keygen') }, () => {
  let dir: string;
  let http: GitHttpServer;
  let deps: LocalActivityDeps;
  let pgp: Signer;
  let ssh: Signer;
  let strangerPgp: Signer;
  let strangerSsh: Signer;
  const signers = () => [pgp, ssh, strangerPgp, strangerSsh];
  const repo = () => bareRepoPath(join(dir, 'git'), 'signed');

  const spec = (ref: NonNullable<ArenaSourceSpec['git']>['ref'], verify: NonNullable<ArenaSourceSpec['git']>['verify']): ArenaSourceSpec => ({
    type: 'git',
    interval: '1h',
    timeout: '30s',
    git: { url: http.repoUrl('signed'), ...(ref ? { ref } : {}), ...(verify ? { verify } : {}) },
  });
  const head = (secret = 'keys') => ({ mode: 'HEAD' as const, secretRef: { name: secret } });

  /** resolveRevision + fetchSource: the verified message, or the error. */
  async function fetch(s: ArenaSourceSpec, name: string): Promise<string | Error> {
    const a = sourceActivities(deps);
    try {
      const { revision, id } = await inActivity(() => a.resolveRevision({ source: { namespace: NS, name }, spec: s }));
      const fetched = await inActivity(() => a.fetchSource({ source: { namespace: NS, name }, spec: s, revision, ...(id ? { id } : {}) }));
      assert.ok(fetched.verified, 'a verified fetch says what it verified');
      return fetched.verified;
    } catch (err) {
      return err as Error;
    } finally {
      const left = (await readdir(deps.workRoot).catch(() => [])).filter((n) => n.startsWith(GIT_VERIFY_DIR_PREFIX));
      assert.deepEqual(left, [], 'no trust material left behind');
    }
  }
  const refused = (r: string | Error, re: RegExp) => {
    assert.ok(r instanceof VerificationFailedError, String(r));
    assert.match(r.message, re);
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arena-gitsig-'));
    [pgp, ssh, strangerPgp, strangerSsh] = await Promise.all([
      makePgpSigner(dir, 'release'),
      makeSshSigner(dir, 'dev'),
      makePgpSigner(dir, 'stranger'),
      makeSshSigner(dir, 'stranger'),
    ]);
    await seedRepo(join(dir, 'git'), 'signed', { 'pack.json': '{"id":"v0"}' });
    http = await GitHttpServer.start({ root: join(dir, 'git') });
    deps = localActivityDeps(dir);
    const resources = deps.resources;
    await putSecret(resources, NS, 'keys', { 'release.asc': pgp.publicKey, 'dev.sshpub': ssh.publicKey });
    await putSecret(resources, NS, 'no-keys', { 'README': 'keys go here' });
    await putSecret(resources, NS, 'garbled', { 'release.asc': '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot a key\n-----END PGP PUBLIC KEY BLOCK-----\n' });
  });
  after(async () => {
    await Promise.allSettled([http?.close(), ...signers().map((s) => s && closeSigner(s))]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe('fetchSource', () => {
    it('HEAD signed with a trusted OpenPGP key: verified, naming the key', async () => {
      await signedCommit(repo(), { 'pack.json': '{"id":"pgp"}' }, { branch: 'pgp', message: 'pgp', signer: pgp });
      const r = await fetch(spec({ branch: 'pgp' }, head()), 'pgp');
      assert.equal(typeof r, 'string', String(r));
      assert.match(r as string, /commit [0-9a-f]{40} has a good signature by OpenPGP key [0-9A-F]{16} from Secret team\/keys/);
    });

    it('HEAD signed with a trusted SSH key: verified, naming its fingerprint', async () => {
      await signedCommit(repo(), { 'pack.json': '{"id":"ssh"}' }, { branch: 'ssh', message: 'ssh', signer: ssh });
      const r = await fetch(spec({ branch: 'ssh' }, head()), 'ssh');
      assert.equal(typeof r, 'string', String(r));
      assert.ok((r as string).includes(`SSH key ${(ssh as { fingerprint: string }).fingerprint}`), String(r));
    });

    it('an unsigned commit: VerificationFailed, is not signed', async () => {
      await signedCommit(repo(), { 'pack.json': '{"id":"unsigned"}' }, { branch: 'unsigned', message: 'unsigned' });
      refused(await fetch(spec({ branch: 'unsigned' }, head()), 'unsigned'), /commit [0-9a-f]{40}: is not signed; sign it/);
    });

    it('signed by keys not in the Secret (OpenPGP or SSH): VerificationFailed, not trusted', async () => {
      await signedCommit(repo(), { 'pack.json': '{"id":"x"}' }, { branch: 'stranger-pgp', message: 'x', signer: strangerPgp });
      refused(await fetch(spec({ branch: 'stranger-pgp' }, head()), 'spgp'), /is signed by a key that is not trusted.*add its public key to Secret team\/keys/);
      await signedCommit(repo(), { 'pack.json': '{"id":"y"}' }, { branch: 'stranger-ssh', message: 'y', signer: strangerSsh });
      refused(await fetch(spec({ branch: 'stranger-ssh' }, head()), 'sssh'), /is signed by a key that is not trusted \(SSH key SHA256:/);
    });

    it('a signed commit whose content was changed: VerificationFailed, bad signature', async () => {
      await signedCommit(repo(), { 'pack.json': '{"id":"t"}' }, { branch: 'tampered', message: 'honest', signer: pgp });
      await tamperedCommit(repo(), 'tampered');
      refused(await fetch(spec({ branch: 'tampered' }, head()), 'tampered'), /has a bad signature/);
    });

    it('mode Tag: a signed annotated tag passes; a lightweight or unsigned tag does not', async () => {
      await signedCommit(repo(), { 'pack.json': '{"id":"tag"}' }, { branch: 'rel', message: 'r1', tag: { name: 'v1.0.0', signer: ssh } });
      const ok = await fetch(spec({ tag: 'v1.0.0' }, { mode: 'Tag', secretRef: { name: 'keys' } }), 'tag');
      assert.match(String(ok), /^tag 'v1\.0\.0' has a good signature/);
      // TagAndHEAD: the tag is good, the commit under it is not signed.
      refused(await fetch(spec({ tag: 'v1.0.0' }, { mode: 'TagAndHEAD', secretRef: { name: 'keys' } }), 'tag-head'), /commit [0-9a-f]{40}: is not signed/);
      await signedCommit(repo(), { 'pack.json': '{"id":"light"}' }, { branch: 'rel', message: 'r2', tag: { name: 'v1.0.1', lightweight: true } });
      refused(await fetch(spec({ tag: 'v1.0.1' }, { mode: 'Tag', secretRef: { name: 'keys' } }), 'light'), /tag 'v1\.0\.1' is a lightweight tag/);
      await signedCommit(repo(), { 'pack.json': '{"id":"anno"}' }, { branch: 'rel', message: 'r3', tag: { name: 'v1.0.2' } });
      refused(await fetch(spec({ tag: 'v1.0.2' }, { mode: 'Tag', secretRef: { name: 'keys' } }), 'anno'), /tag 'v1\.0\.2': is not signed/);
      // TagAndHEAD with both signed.
      await signedCommit(repo(), { 'pack.json': '{"id":"both"}' }, { branch: 'rel', message: 'r4', signer: pgp, tag: { name: 'v1.0.3', signer: pgp } });
      assert.match(String(await fetch(spec({ tag: 'v1.0.3' }, { mode: 'TagAndHEAD', secretRef: { name: 'keys' } }), 'both')), /^tag 'v1\.0\.3' has a good signature.*; commit [0-9a-f]{40} has a good signature/);
    });

    it('a verify Secret without usable keys: SecretNotFound naming the Secret and the suffixes', async () => {
      const none = await fetch(spec({ branch: 'pgp' }, head('no-keys')), 'nokeys');
      assert.ok(none instanceof SecretNotFoundError, String(none));
      assert.match(none.message, /Secret team\/no-keys has no trusted public keys: add keys ending in '\.asc' or '\.sshpub'/);
      const garbled = await fetch(spec({ branch: 'pgp' }, head('garbled')), 'garbled');
      assert.match(String(garbled), /key 'release\.asc' could not be imported by gpg/);
    });

    it('no gpg-agent is left running for a verification', async () => {
      const { stdout } = await run('ps', ['-eo', 'args']);
      assert.ok(!stdout.includes(GIT_VERIFY_DIR_PREFIX), stdout.split('\n').filter((l) => l.includes(GIT_VERIFY_DIR_PREFIX)).join('\n'));
    });
  });

  describe('through the workflow', () => {
    let env: TestEnv;
    before(async () => {
      env = await startTestEnv('verify');
      await seedRepo(env.gitRoot, 'signed', { 'pack.json': '{"id":"v0"}' });
      await putSecret(env.stack.resources, env.namespace, 'keys', { 'release.asc': pgp.publicKey, 'dev.sshpub': ssh.publicKey });
    });
    after(async () => {
      await env?.close();
    });

    const cond = (s: ArenaSource, type: 'Ready' | 'SourceVerified') => findCondition(s.status?.conditions, type);

    it('publishes signed revisions only; a refused one keeps the last artifact served and is not fetched again', async () => {
      const bare = bareRepoPath(env.gitRoot, 'signed');
      const good = await signedCommit(bare, { 'pack.json': '{"id":"good"}' }, { branch: 'main', message: 'good', signer: ssh });
      await env.apply('verified', { type: 'git', interval: '1h', git: { url: env.git.repoUrl('signed'), ref: { branch: 'main' }, verify: head() } });
      const ready = await env.waitFor('verified', 'Ready', (s) => s.status?.phase === 'Ready');
      assert.equal(ready.status!.artifact!.revision, `main@sha1:${good}`);
      assert.equal(cond(ready, 'SourceVerified')?.status, 'True');
      assert.match(cond(ready, 'SourceVerified')!.message, /SSH key SHA256:/);

      const unsigned = await signedCommit(bare, { 'pack.json': '{"id":"evil"}' }, { branch: 'main', message: 'unsigned' });
      await reconcileSource(env.stack.client, { namespace: env.namespace, name: 'verified' }, '2026-12-06T07:00:00Z');
      const failed = await env.waitFor('verified', 'Error/VerificationFailed', (s) => s.status?.phase === 'Error' && cond(s, 'Ready')?.reason === 'VerificationFailed');
      assert.equal(failed.status!.artifact!.revision, `main@sha1:${good}`, 'the last good artifact stays');
      assert.equal(cond(failed, 'SourceVerified')?.status, 'False');
      assert.match(cond(failed, 'SourceVerified')!.message, new RegExp(`commit ${unsigned}: is not signed`));
      const served = await env.download(failed.status!.artifact!.url);
      assert.equal(served.status, 200);
      assert.equal(served.sha256, failed.status!.artifact!.checksum);

      // The refused revision is not downloaded again: a new cycle only lists refs.
      const fetches = env.git.stats('signed').fetches;
      await reconcileSource(env.stack.client, { namespace: env.namespace, name: 'verified' }, '2026-12-06T07:01:00Z');
      const again = await env.waitFor('verified', 'the second reconcile handled', (s) => s.status?.lastHandledReconcileAt === '2026-12-06T07:01:00Z');
      assert.equal(cond(again, 'Ready')?.reason, 'VerificationFailed');
      assert.match(cond(again, 'Ready')!.message, /waiting for a new revision/);
      assert.equal(env.git.stats('signed').fetches, fetches);

      const fixed = await signedCommit(bare, { 'pack.json': '{"id":"fixed"}' }, { branch: 'main', message: 'signed again', signer: pgp });
      await reconcileSource(env.stack.client, { namespace: env.namespace, name: 'verified' }, '2026-12-06T07:02:00Z');
      const back = await env.waitFor('verified', 'Ready at the new signed commit', (s) => s.status?.artifact?.revision === `main@sha1:${fixed}` && s.status?.phase === 'Ready');
      assert.equal(cond(back, 'SourceVerified')?.status, 'True');
      assert.match(cond(back, 'SourceVerified')!.message, /OpenPGP key/);
    });

    it('no key material in workflow history, status or events', async () => {
      const history = textOf(await wholeHistory(env.stack.client, sourceHandle(env.stack.client, { namespace: env.namespace, name: 'verified' }).workflowId));
      assert.ok(history.includes('keys'), 'the Secret is named');
      const needles = [pgp.publicKey, ssh.publicKey]
        .flatMap((k) => k.split('\n'))
        .map((l) => l.trim())
        .filter((l) => l.length >= 40);
      needles.push(ssh.publicKey.split(' ')[1]!);
      assertNoSecrets(history, needles, 'workflow history');
      assertNoSecrets(textOf(await env.get('verified')), needles, 'status');
      assertNoSecrets(await filesText(join(env.dataDir, 'status')), needles, 'status store');
    });
  });
});
