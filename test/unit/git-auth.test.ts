/**
 * prepareGitAuth on its own: what it puts in git's environment and on disk for
 * each kind of Secret, what it refuses (and how it says so, without values), and
 * how git's and ssh's failure messages are classified.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AuthenticationFailedError, InvalidSpecError, SecretNotFoundError } from '../../src/errors.js';
import type { SecretObject } from '../../src/resources/types.js';
import { GIT_AUTH_DIR_PREFIX, prepareGitAuth } from '../../src/sources/git/auth.js';
import { classifyGitError } from '../../src/sources/git/errors.js';

const secret = (data: Record<string, string>): SecretObject => ({
  namespace: 'team',
  name: 'creds',
  data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v)])),
});

const PASSWORD = 'ghp_s3cr3t-Pa55word';
const KEY = [
  '-----BEGIN OPENSSH PRIVATE KEY-----',
  'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW',
  'QyNTUxOQAAACDdUMmyFaK0ZpDM0UjVNmyUNdmaXHYX3e2Gx1vMSZz8YwAAAJhKVOnVSlTp',
  '-----END OPENSSH PRIVATE KEY-----',
].join('\n'); // no final newline on purpose
const KNOWN_HOSTS = '[git.example.com]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN1QybIVorRmkMzRSNU2bJQ12Zpcdhfd7YbHW8xJnPxj';

/** The GIT_CONFIG_COUNT entries git would see (the worker's environment under ours) as key → values. */
function configOf(ours: Record<string, string>): Map<string, string[]> {
  const env = { ...process.env, ...ours } as Record<string, string>;
  const out = new Map<string, string[]>();
  const n = Number(env.GIT_CONFIG_COUNT ?? '0');
  for (let i = 0; i < n; i++) {
    const k = env[`GIT_CONFIG_KEY_${i}`];
    const v = env[`GIT_CONFIG_VALUE_${i}`];
    assert.ok(k !== undefined && v !== undefined, `GIT_CONFIG_KEY_${i}/VALUE_${i} set`);
    out.set(k, [...(out.get(k) ?? []), v]);
  }
  return out;
}

async function rejectsWith(p: Promise<unknown>, type: new (...a: never[]) => Error, pattern: RegExp, secretValue?: string): Promise<Error> {
  const err = await p.then(
    () => assert.fail('expected a rejection'),
    (e: unknown) => e as Error,
  );
  assert.ok(err instanceof type, `expected ${type.name}, got ${String(err)}`);
  assert.match(err.message, pattern);
  if (secretValue) assert.ok(!err.message.includes(secretValue), 'the message must not contain the value');
  return err;
}

describe('prepareGitAuth: HTTPS', () => {
  const git = { url: 'https://git.example.com/acme/prompts.git' };

  it('without a Secret: no credentials, and the worker’s credential helpers are switched off', async () => {
    const auth = await prepareGitAuth(git, undefined);
    const config = configOf(auth.env);
    assert.deepEqual(config.get('credential.helper'), ['']);
    assert.equal(config.has('http.extraHeader'), false);
    assert.equal(auth.env.GIT_SSH_COMMAND, undefined);
    await auth.cleanup();
  });

  it('username + password become one preemptive basic-auth header, in no argv and no URL', async () => {
    const auth = await prepareGitAuth(git, secret({ username: 'bot', password: PASSWORD }));
    const header = configOf(auth.env).get('http.extraHeader');
    assert.deepEqual(header, [`Authorization: Basic ${Buffer.from(`bot:${PASSWORD}`).toString('base64')}`]);
    // Only GIT_* variables: simple-git passes exactly these; the password is only in the encoded header.
    for (const [k, v] of Object.entries(auth.env)) {
      assert.match(k, /^GIT_/);
      assert.ok(!v.includes(PASSWORD), `${k} carries the password in clear`);
    }
    await auth.cleanup();
    await auth.cleanup(); // idempotent
  });

  it('a password without a username names the missing key, not the value', async () => {
    await rejectsWith(
      prepareGitAuth(git, secret({ password: PASSWORD })),
      SecretNotFoundError,
      /Secret team\/creds has no key 'username'.*HTTP basic auth to https:\/\/git\.example\.com\/acme\/prompts\.git/,
      PASSWORD,
    );
  });

  it('a username without a password is refused too (by design)', async () => {
    await rejectsWith(prepareGitAuth(git, secret({ username: 'bot' })), SecretNotFoundError, /has no key 'password'/);
  });

  it('an empty password counts as missing', async () => {
    await rejectsWith(prepareGitAuth(git, secret({ username: 'bot', password: '' })), SecretNotFoundError, /has no key 'password'/);
  });

  it('an SSH Secret used for an https URL says which key is missing', async () => {
    await rejectsWith(prepareGitAuth(git, secret({ identity: KEY, known_hosts: KNOWN_HOSTS })), SecretNotFoundError, /no key 'username'/);
  });

  it('a username with ":" cannot be sent as basic auth', async () => {
    await rejectsWith(
      prepareGitAuth(git, secret({ username: 'a:b', password: PASSWORD })),
      AuthenticationFailedError,
      /key 'username' must not contain ':'/,
      PASSWORD,
    );
  });

  it('plain http:// is handled like https://', async () => {
    const auth = await prepareGitAuth({ url: 'http://127.0.0.1:8080/r.git' }, secret({ username: 'u', password: 'p' }));
    assert.equal(configOf(auth.env).get('http.extraHeader')?.length, 1);
  });
});

describe('prepareGitAuth: SSH', () => {
  let root: string;
  const git = { url: 'ssh://git@git.example.com:2222/acme/prompts.git' };
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'git-auth-unit-'));
  });
  after(async () => rm(root, { recursive: true, force: true }));

  it('writes key and known_hosts to 0600 files in a private 0700 directory, removed by cleanup', async () => {
    const tmpRoot = join(root, 'plain');
    const auth = await prepareGitAuth(git, secret({ identity: KEY, known_hosts: KNOWN_HOSTS }), { tmpRoot });
    const dirs = await readdir(tmpRoot);
    assert.equal(dirs.length, 1);
    assert.ok(dirs[0]!.startsWith(GIT_AUTH_DIR_PREFIX));
    const dir = join(tmpRoot, dirs[0]!);
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    for (const f of ['identity', 'known_hosts']) assert.equal((await stat(join(dir, f))).mode & 0o777, 0o600, f);
    assert.equal(await readFile(join(dir, 'identity'), 'utf8'), `${KEY}\n`, 'the final newline OpenSSH needs is added');
    assert.equal(await readFile(join(dir, 'known_hosts'), 'utf8'), `${KNOWN_HOSTS}\n`);

    const cmd = auth.env.GIT_SSH_COMMAND ?? '';
    for (const opt of [
      '-F /dev/null',
      'StrictHostKeyChecking=yes',
      'IdentitiesOnly=yes',
      'IdentityAgent=none',
      'BatchMode=yes',
      'GlobalKnownHostsFile=/dev/null',
      `UserKnownHostsFile=${join(dir, 'known_hosts')}`,
      `IdentityFile=${join(dir, 'identity')}`,
    ]) {
      assert.ok(cmd.includes(opt), `GIT_SSH_COMMAND has ${opt}: ${cmd}`);
    }
    assert.ok(!cmd.includes('b3BlbnNzaC1rZXktdjEA'), 'the key itself is not in the command');
    assert.equal(auth.env.GIT_SSH_VARIANT, 'ssh');
    assert.deepEqual(configOf(auth.env).get('credential.helper'), ['']);
    for (const v of Object.values(auth.env)) assert.ok(!v.includes('b3BlbnNzaC1rZXktdjEA'), 'no key material in the environment');

    await auth.cleanup();
    assert.deepEqual(await readdir(tmpRoot), []);
    await auth.cleanup();
  });

  it('CRLF line endings are normalized', async () => {
    const tmpRoot = join(root, 'crlf');
    const auth = await prepareGitAuth(git, secret({ identity: KEY.replace(/\n/g, '\r\n'), known_hosts: KNOWN_HOSTS }), { tmpRoot });
    const dir = join(tmpRoot, (await readdir(tmpRoot))[0]!);
    assert.equal(await readFile(join(dir, 'identity'), 'utf8'), `${KEY}\n`);
    await auth.cleanup();
  });

  it('paths with blanks and % are quoted for the shell and escaped for ssh', async () => {
    const tmpRoot = join(root, "it's a %d dir");
    const auth = await prepareGitAuth(git, secret({ identity: KEY, known_hosts: KNOWN_HOSTS }), { tmpRoot });
    const dir = join(tmpRoot, (await readdir(tmpRoot))[0]!);
    // The words as sh (which git runs GIT_SSH_COMMAND with) splits them.
    const words = execFileSync('sh', ['-c', `set -- ${auth.env.GIT_SSH_COMMAND ?? ''}; printf '%s\\n' "$@"`], { encoding: 'utf8' }).split('\n');
    const escaped = (f: string) => `"${join(dir, f).replace(/%/g, '%%')}"`;
    assert.ok(words.includes(`UserKnownHostsFile=${escaped('known_hosts')}`), words.join(' | '));
    assert.ok(words.includes(`IdentityFile=${escaped('identity')}`), words.join(' | '));
    await auth.cleanup();
    assert.deepEqual(await readdir(tmpRoot), []);
  });

  it('an ssh:// URL without a secretRef is a clear spec error, not a hang on ~/.ssh', async () => {
    await rejectsWith(prepareGitAuth(git, undefined), InvalidSpecError, /spec\.git\.secretRef: required for ssh:\/\/ URLs.*'identity'.*'known_hosts'/);
  });

  it('missing known_hosts: refused (never trust on first use), nothing written', async () => {
    const tmpRoot = join(root, 'no-kh');
    await rejectsWith(
      prepareGitAuth(git, secret({ identity: KEY }), { tmpRoot }),
      SecretNotFoundError,
      /Secret team\/creds has no key 'known_hosts'.*\[git\.example\.com\]:2222.*never trusted on first use/,
      KEY.split('\n')[1],
    );
    assert.deepEqual(await readdir(tmpRoot).catch(() => []), []);
  });

  it('missing identity names the key', async () => {
    await rejectsWith(prepareGitAuth(git, secret({ known_hosts: KNOWN_HOSTS })), SecretNotFoundError, /has no key 'identity'/);
  });

  it('a public key in identity is called what it is', async () => {
    await rejectsWith(
      prepareGitAuth(git, secret({ identity: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN1Q me@host', known_hosts: KNOWN_HOSTS })),
      AuthenticationFailedError,
      /key 'identity' holds a public key/,
    );
  });

  it('known_hosts with only comments is refused', async () => {
    await rejectsWith(
      prepareGitAuth(git, secret({ identity: KEY, known_hosts: '# nothing here\n\n' })),
      AuthenticationFailedError,
      /key 'known_hosts' has no host key lines/,
    );
  });
});

describe('prepareGitAuth: config from the worker’s environment', () => {
  it('is kept: our entries are appended after it, so they win', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, { GIT_CONFIG_COUNT: '2', GIT_CONFIG_KEY_0: 'http.sslVerify', GIT_CONFIG_VALUE_0: 'true', GIT_CONFIG_KEY_1: 'credential.helper', GIT_CONFIG_VALUE_1: 'store' });
    try {
      const auth = await prepareGitAuth({ url: 'https://git.example.com/r.git' }, secret({ username: 'u', password: 'p' }));
      assert.equal(auth.env.GIT_CONFIG_COUNT, '4');
      assert.equal(auth.env.GIT_CONFIG_KEY_0, undefined, 'the ambient entries are not overwritten');
      const config = configOf(auth.env);
      assert.deepEqual(config.get('http.sslVerify'), ['true']);
      assert.deepEqual(config.get('credential.helper'), ['store', ''], 'our reset comes last');
      assert.equal(config.get('http.extraHeader')?.length, 1);
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });
});

describe('classifyGitError for authentication', () => {
  const httpUrl = 'http://127.0.0.1:4000/r.git';
  const sshUrl = 'ssh://git@127.0.0.1:2222/srv/r.git';

  it('HTTP 401 from git is AuthenticationFailed naming the URL', () => {
    const err = classifyGitError(new Error(`remote: authentication required\nfatal: Authentication failed for '${httpUrl}/'`), httpUrl);
    assert.ok(err instanceof AuthenticationFailedError);
    assert.match(err.message, /authentication to http:\/\/127\.0\.0\.1:4000\/r\.git failed/);
  });

  it('no credentials and prompts disabled is AuthenticationFailed', () => {
    const err = classifyGitError(
      new Error(`fatal: could not read Username for 'http://127.0.0.1:4000': terminal prompts disabled`),
      httpUrl,
    );
    assert.ok(err instanceof AuthenticationFailedError);
  });

  it('a changed host key says it did not match known_hosts, without ssh’s banner or file paths', () => {
    const raw = [
      '@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@',
      '@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @',
      'The fingerprint for the ED25519 key sent by the remote host is',
      'SHA256:lUPFEHamA0lQrKWDFyPwhn+YuiT8EbCwgf6hwpMSxDs.',
      'Add correct host key in /tmp/x/git-auth-abc/known_hosts to get rid of this message.',
      'Host key for [127.0.0.1]:2222 has changed and you have requested strict checking.',
      'Host key verification failed.',
      'fatal: Could not read from remote repository.',
    ].join('\n');
    const err = classifyGitError(new Error(raw), sshUrl);
    assert.ok(err instanceof AuthenticationFailedError);
    assert.match(err.message, /SSH host key of \[127\.0\.0\.1\]:2222 did not match known_hosts/);
    assert.match(err.message, /SHA256:lUPFEHamA0lQrKWDFyPwhn/);
    assert.ok(!err.message.includes('git-auth-abc'));
    assert.ok(!err.message.includes('@@@'));
  });

  it('an unknown host on a non-22 port hints at the [host]:port form', () => {
    const err = classifyGitError(
      new Error('No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\nHost key verification failed.'),
      sshUrl,
    );
    assert.ok(err instanceof AuthenticationFailedError);
    assert.match(err.message, /did not match known_hosts.*write it as "\[127\.0\.0\.1\]:2222 <keytype> <key>"/);
  });

  it('a rejected key is AuthenticationFailed', () => {
    const err = classifyGitError(new Error('git@127.0.0.1: Permission denied (publickey).\nfatal: Could not read from remote repository.'), sshUrl);
    assert.ok(err instanceof AuthenticationFailedError);
    assert.match(err.message, /authentication to ssh:\/\/git@127\.0\.0\.1:2222\/srv\/r\.git failed/);
  });

  it('an unloadable key says so, without the temp path', () => {
    const err = classifyGitError(
      new Error('Load key "/tmp/x/git-auth-abc/identity": invalid format\ngit@127.0.0.1: Permission denied (publickey).'),
      sshUrl,
    );
    assert.ok(err instanceof AuthenticationFailedError);
    assert.match(err.message, /could not load the private key from the Secret's 'identity'/);
    assert.ok(!err.message.includes('git-auth-abc'));
  });
});
