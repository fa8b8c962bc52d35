/**
 * The git activities (resolveRevision, fetchSource) with private sources, called
 * directly in Temporal's activity test environment against a real git smart-HTTP
 * server with basic auth and a real sshd. Right after every call, successful or
 * not, no key material is left in the worker's work root, which on purpose has a
 * blank, a quote and a % in its path.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sourceActivities } from '../../activities/source.js';
import type { ArenaSourceSpec } from '../../src/api/schema.js';
import { GitHttpServer } from '../../src/dev/demo-git/git-http-server.js';
import { bareRepoPath, commitFiles, seedRepo } from '../../src/dev/demo-git/repo.js';
import { inActivity, localActivityDeps, type LocalActivityDeps } from '../helpers/activity-deps.js';
import { SshGitServer, generateSshKeyPair } from '../helpers/ssh-server.js';
import { AuthenticationFailedError, InvalidSpecError, SecretNotFoundError } from '../../src/errors.js';
import { LocalResourceStore } from '../../src/resources/local-store.js';
import { authTempDirs, putSecret, sshSecretData } from '../helpers/ssh.js';

const NS = 'team';
const source = (name: string) => ({ namespace: NS, name });
const PASSWORD = 'pa55:word with spaces & $tuff';

describe('git activities with credentials', () => {
  let dir: string;
  let http: GitHttpServer;
  let ssh: SshGitServer;
  let resources: LocalResourceStore;
  let deps: LocalActivityDeps;
  let sha: string;
  const activities = () => sourceActivities(deps);

  const gitSpec = (url: string, secretName?: string): ArenaSourceSpec => ({
    type: 'git',
    interval: '1h',
    timeout: '20s',
    git: { url, ref: { branch: 'main' }, ...(secretName ? { secretRef: { name: secretName } } : {}) },
  });

  /** Runs resolveRevision, then fetchSource; asserts the key directories are gone after each. */
  async function both(spec: ArenaSourceSpec, name: string): Promise<{ revision: string; bundle: string }> {
    const a = activities();
    try {
      const { revision, id } = await inActivity(() => a.resolveRevision({ source: source(name), spec }));
      assert.deepEqual(await authTempDirs(deps.workRoot), [], 'after resolveRevision');
      assert.equal(revision, `main@sha1:${id}`, 'the id is the commit the revision names');
      const fetched = await inActivity(() => a.fetchSource({ source: source(name), spec, revision, ...(id ? { id } : {}) }));
      assert.equal(fetched.revision, revision);
      assert.equal(fetched.id, id);
      return { revision, bundle: await readFile(join(fetched.bundleDir, 'pack.json'), 'utf8') };
    } finally {
      assert.deepEqual(await authTempDirs(deps.workRoot), [], 'no key material left behind');
    }
  }

  async function fails(spec: ArenaSourceSpec, name: string): Promise<Error[]> {
    const a = activities();
    const errors: Error[] = [];
    for (const call of [
      () => a.resolveRevision({ source: source(name), spec }),
      () => a.fetchSource({ source: source(name), spec, revision: 'main@sha1:0000000000000000000000000000000000000000' }),
    ]) {
      const err = await inActivity(call).then(
        () => assert.fail('expected a failure'),
        (e: unknown) => e as Error,
      );
      errors.push(err);
      assert.deepEqual(await authTempDirs(deps.workRoot), [], `no key material left behind after ${String(err)}`);
    }
    return errors;
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'git-auth-activities-'));
    const gitRoot = join(dir, 'git');
    sha = await seedRepo(gitRoot, 'private', { 'pack.json': '{"id":"private"}' });
    http = await GitHttpServer.start({ root: gitRoot, basicAuth: { username: 'reader', password: PASSWORD } });
    ssh = await SshGitServer.start({ root: gitRoot });
    deps = localActivityDeps(dir, "work dir's %d");
    resources = deps.resources;
    await putSecret(resources, NS, 'https-good', { username: 'reader', password: PASSWORD });
    await putSecret(resources, NS, 'https-bad', { username: 'reader', password: 'wrong' });
    await putSecret(resources, NS, 'https-user-only', { username: 'reader' });
    await putSecret(resources, NS, 'ssh-good', sshSecretData(ssh));
    await putSecret(resources, NS, 'ssh-bad-key', sshSecretData(ssh, { identity: (await generateSshKeyPair()).privateKey }));
    await putSecret(resources, NS, 'ssh-bad-host', sshSecretData(ssh, { known_hosts: `[127.0.0.1]:${ssh.port} ${(await generateSshKeyPair()).publicKey}` }));
    await putSecret(resources, NS, 'ssh-no-kh', { identity: ssh.clientPrivateKey });
  });
  after(async () => {
    await ssh?.close();
    await http?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('https: good credentials resolve and fetch', async () => {
    const r = await both(gitSpec(http.repoUrl('private'), 'https-good'), 'h1');
    assert.equal(r.revision, `main@sha1:${sha}`);
    assert.equal(r.bundle, '{"id":"private"}');
  });

  it('scheduled polls share a listing per repository and credentials; a reconcile and other credentials ask the host', async () => {
    const a = activities();
    await seedRepo(join(dir, 'git'), 'shared', { 'pack.json': '{"id":"shared"}' });
    const spec = { ...gitSpec(http.repoUrl('shared'), 'https-good'), interval: '1m' };
    const resolve = (name: string, s: ArenaSourceSpec, poll: boolean) => inActivity(() => a.resolveRevision({ source: source(name), spec: s, ...(poll ? { poll } : {}) }));
    const listings = () => http.stats('shared').lsRefs;
    const start = listings();
    const first = await resolve('poll-a', spec, true);
    // Another source of the same repository (another bundle folder) with the same credentials.
    assert.deepEqual(await resolve('poll-b', { ...spec, git: { ...spec.git!, path: 'elsewhere' } }, true), first);
    assert.equal(listings() - start, 1, 'two polls, one listing');
    // Wrong credentials never ride on the good answer: they ask, and fail.
    const wrong = await inActivity(() => a.resolveRevision({ source: source('poll-c'), spec: { ...spec, git: { ...spec.git!, secretRef: { name: 'https-bad' } } }, poll: true })).then(
      () => assert.fail('expected a failure'),
      (e: unknown) => e as Error,
    );
    assert.ok(wrong instanceof AuthenticationFailedError, String(wrong));
    // A push: a poll within the sharing window may still see the old commit (at most 5 s, a tenth of
    // the interval), a reconcile (no poll) asks the host and sees the new one.
    const next = await commitFiles(bareRepoPath(join(dir, 'git'), 'shared'), { 'pack.json': '{"id":"shared","v":2}' }, { branch: 'main', message: 'v2' });
    const before = listings();
    assert.equal((await resolve('poll-a', spec, true)).id, first.id, 'the shared answer, within 5 s');
    assert.equal(listings(), before);
    assert.equal((await resolve('poll-a', spec, false)).id, next, 'a reconcile asks the host');
    assert.equal(listings(), before + 1);
  });

  it('sources applied at once share listings that started after they asked: a push before them is never missed', async () => {
    const a = activities();
    await seedRepo(join(dir, 'git'), 'burst', { 'pack.json': '{"id":"burst"}' });
    const spec = { ...gitSpec(http.repoUrl('burst'), 'https-good'), interval: '1m' };
    const listings = () => http.stats('burst').lsRefs;
    const resolveAll = (tag: string) =>
      Promise.all(Array.from({ length: 20 }, (_, i) => inActivity(() => a.resolveRevision({ source: source(`${tag}-${i}`), spec: { ...spec, git: { ...spec.git!, path: `f${i}` } } }))));
    const before = listings();
    const first = await resolveAll('burst-a');
    assert.equal(new Set(first.map((r) => r.id)).size, 1);
    assert.ok(listings() - before <= 2, `20 first cycles at once: ${listings() - before} listings`);
    // A push, then another burst: every one sees it (none takes an answer from before its call).
    const next = await commitFiles(bareRepoPath(join(dir, 'git'), 'burst'), { 'pack.json': '{"id":"burst","v":2}' }, { branch: 'main', message: 'v2' });
    assert.deepEqual(new Set((await resolveAll('burst-b')).map((r) => r.id)), new Set([next]));
  });

  it('https: no secretRef against a server that wants one is AuthenticationFailed', async () => {
    for (const err of await fails(gitSpec(http.repoUrl('private')), 'h2')) {
      assert.ok(err instanceof AuthenticationFailedError, String(err));
    }
  });

  it('https: a wrong password is AuthenticationFailed naming the URL, not the password', async () => {
    for (const err of await fails(gitSpec(http.repoUrl('private'), 'https-bad'), 'h3')) {
      assert.ok(err instanceof AuthenticationFailedError, String(err));
      assert.ok(err.message.includes(http.repoUrl('private')), err.message);
      assert.ok(!err.message.includes('wrong'), err.message);
    }
  });

  it('https: a missing Secret / a missing key is SecretNotFound', async () => {
    for (const err of await fails(gitSpec(http.repoUrl('private'), 'absent'), 'h4')) {
      assert.ok(err instanceof SecretNotFoundError, String(err));
      assert.match(err.message, /Secret team\/absent not found/);
    }
    for (const err of await fails(gitSpec(http.repoUrl('private'), 'https-user-only'), 'h5')) {
      assert.ok(err instanceof SecretNotFoundError, String(err));
      assert.match(err.message, /Secret team\/https-user-only has no key 'password'/);
    }
  });

  it('ssh: good key and known_hosts resolve and fetch over a non-22 port', async () => {
    assert.notEqual(ssh.port, 22);
    const r = await both(gitSpec(ssh.url('private'), 'ssh-good'), 's1');
    assert.equal(r.revision, `main@sha1:${sha}`);
    assert.equal(r.bundle, '{"id":"private"}');
  });

  it('ssh: a key the server does not know is AuthenticationFailed', async () => {
    for (const err of await fails(gitSpec(ssh.url('private'), 'ssh-bad-key'), 's2')) {
      assert.ok(err instanceof AuthenticationFailedError, String(err));
      assert.match(err.message, /Permission denied \(publickey\)/);
    }
  });

  it('ssh: a host key other than known_hosts says so', async () => {
    for (const err of await fails(gitSpec(ssh.url('private'), 'ssh-bad-host'), 's3')) {
      assert.ok(err instanceof AuthenticationFailedError, String(err));
      assert.match(err.message, /host key of \[127\.0\.0\.1\]:\d+ did not match known_hosts/);
    }
  });

  it('ssh: no known_hosts is SecretNotFound (no trust on first use); no secretRef is InvalidSpec', async () => {
    for (const err of await fails(gitSpec(ssh.url('private'), 'ssh-no-kh'), 's4')) {
      assert.ok(err instanceof SecretNotFoundError, String(err));
      assert.match(err.message, /no key 'known_hosts'/);
    }
    for (const err of await fails(gitSpec(ssh.url('private')), 's5')) {
      assert.ok(err instanceof InvalidSpecError, String(err));
      assert.match(err.message, /secretRef: required for ssh:\/\/ URLs/);
    }
  });

  it('fetchSource gets the commit resolveRevision saw (its id, or without one its revision) though the branch moved since', async () => {
    const gitRoot = join(dir, 'git');
    await seedRepo(gitRoot, 'moving', { 'pack.json': '{"v":1}' });
    const spec = gitSpec(http.repoUrl('moving'), 'https-good');
    const a = activities();
    const seen = await inActivity(() => a.resolveRevision({ source: source('m'), spec }));
    const moved = await commitFiles(bareRepoPath(gitRoot, 'moving'), { 'pack.json': '{"v":2}' }, { branch: 'main', message: 'v2' });
    assert.notEqual(moved, seen.id);
    for (const input of [{ revision: seen.revision, id: seen.id! }, { revision: seen.revision }]) {
      const fetched = await inActivity(() => a.fetchSource({ source: source('m'), spec, ...input }));
      assert.equal(fetched.revision, seen.revision);
      assert.equal(fetched.id, seen.id);
      assert.equal(await readFile(join(fetched.bundleDir, 'pack.json'), 'utf8'), '{"v":1}');
    }
  });
});
