/**
 * TLS and proxy Secrets on their own (src/secrets/tls.ts, proxy.ts) and what
 * prepareGitAuth makes of them: which git settings, which files (0600 in a 0700
 * directory, removed by cleanup), and messages that name keys, never values.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { AuthenticationFailedError, InvalidSpecError } from '../../src/errors.js';
import type { SecretObject } from '../../src/resources/types.js';
import { proxyFromSecret } from '../../src/secrets/proxy.js';
import { tlsFromSecret } from '../../src/secrets/tls.js';
import { prepareGitAuth } from '../../src/sources/git/auth.js';
import { issueCert, makeCa, type TestCa, type TestCert } from '../helpers/certs.js';

const run = promisify(execFile);
const secret = (data: Record<string, string>, name = 's'): SecretObject => ({
  namespace: 'ns',
  name,
  data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v)])),
});

describe('TLS and proxy Secrets', () => {
  let dir: string;
  let ca: TestCa;
  let client: TestCert;
  let other: TestCert;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'transport-secrets-'));
    ca = await makeCa(dir, 'unit');
    [client, other] = await Promise.all([issueCert(ca, dir, 'client', { client: true }), issueCert(ca, dir, 'other', { client: true })]);
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('tlsFromSecret: none, CA only, a matching pair; wrong values named by key', () => {
    assert.equal(tlsFromSecret(secret({ username: 'u' })), undefined);
    assert.deepEqual(tlsFromSecret(secret({ 'ca.crt': ca.pem })), { ca: ca.pem });
    assert.deepEqual(tlsFromSecret(secret({ 'tls.crt': client.cert, 'tls.key': client.key })), { cert: client.cert, key: client.key });
    const bad = (data: Record<string, string>, re: RegExp) => assert.throws(() => tlsFromSecret(secret(data)), (e: Error) => e instanceof AuthenticationFailedError && re.test(e.message));
    bad({ 'ca.crt': 'not a certificate' }, /Secret ns\/s: key 'ca\.crt' holds no valid PEM certificate/);
    bad({ 'ca.crt': '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' }, /key 'ca\.crt' holds no valid PEM/);
    bad({ 'tls.crt': client.cert }, /key 'tls\.key' is missing/);
    bad({ 'tls.key': client.key }, /key 'tls\.crt' is missing/);
    bad({ 'tls.crt': client.cert, 'tls.key': other.key }, /key 'tls\.key' does not belong to the certificate in 'tls\.crt'/);
    bad({ 'tls.crt': client.cert, 'tls.key': 'garbage' }, /key 'tls\.key' holds no unencrypted PEM private key/);
  });

  it('proxyFromSecret: credentials go into the URL (encoded), never into display or messages', () => {
    const p = proxyFromSecret(secret({ address: 'http://proxy.corp:3128', username: 'me@corp', password: 'p@ss:w/rd' }), 'spec.git.proxySecretRef');
    assert.equal(p.url, 'http://me%40corp:p%40ss%3Aw%2Frd@proxy.corp:3128');
    assert.equal(p.display, 'http://proxy.corp:3128');
    assert.ok(p.secrets.includes('p@ss:w/rd'));
    assert.equal(proxyFromSecret(secret({ address: 'https://proxy.corp' }), 'x').url, 'https://proxy.corp');
    const bad = (data: Record<string, string>, re: RegExp) => assert.throws(() => proxyFromSecret(secret(data), 'spec.oci.proxySecretRef'), re);
    bad({}, /has no key 'address'/);
    bad({ address: 'proxy.corp:3128' }, /key 'address' must be an http:\/\/ or https:\/\/ URL/);
    bad({ address: 'socks5://proxy.corp:1080' }, /key 'address' must be an http:\/\/ or https:\/\/ URL/);
    bad({ address: 'http://u:secret-pw@proxy.corp' }, /key 'address' must not hold credentials/);
    bad({ address: 'http://proxy.corp', password: 'pw' }, /key 'password' is set without 'username'/);
  });

  it('prepareGitAuth: CA bundle and client certificate files for git, removed by cleanup', async () => {
    const git = { url: 'https://git.corp/repo.git' };
    const auth = await prepareGitAuth(git, secret({ 'ca.crt': ca.pem, 'tls.crt': client.cert, 'tls.key': client.key }), { tmpRoot: dir });
    try {
      const cainfo = auth.env.GIT_SSL_CAINFO!;
      const bundle = await readFile(cainfo, 'utf8');
      assert.ok(bundle.endsWith(`${ca.pem.trim()}\n`), 'the private CA comes after the system roots');
      assert.ok(bundle.length > ca.pem.length, 'the system roots are kept');
      assert.equal(await readFile(auth.env.GIT_SSL_KEY!, 'utf8'), client.key);
      for (const f of [cainfo, auth.env.GIT_SSL_CERT!, auth.env.GIT_SSL_KEY!]) assert.equal((await stat(f)).mode & 0o777, 0o600);
      assert.equal((await stat(join(cainfo, '..'))).mode & 0o777, 0o700);
      const values = Object.entries(auth.env).filter(([k]) => k.startsWith('GIT_CONFIG_VALUE_')).map(([, v]) => v);
      assert.ok(values.includes(cainfo) && values.includes(auth.env.GIT_SSL_CERT!));
      assert.equal(auth.credentials, undefined, 'a TLS-only Secret sends no Authorization header');
      assert.ok(!Object.values(auth.env).some((v) => v.startsWith('Authorization:')));
      // The git client reads this exact configuration (GIT_CONFIG_COUNT from the environment).
      const { stdout } = await run('git', ['config', '--get', 'http.sslKey'], { env: { ...process.env, ...auth.env } });
      assert.equal(stdout.trim(), auth.env.GIT_SSL_KEY);
    } finally {
      await auth.cleanup();
    }
    await assert.rejects(stat(auth.env.GIT_SSL_CAINFO!), /ENOENT/);
  });

  it('prepareGitAuth: bearer token header and proxy settings; ssh:// refuses a proxy', async () => {
    const git = { url: 'https://git.corp/repo.git' };
    const auth = await prepareGitAuth(git, secret({ bearerToken: 'tok-123\n' }), {
      proxySecret: secret({ address: 'http://proxy.corp:3128', username: 'u', password: 'pw' }, 'proxy'),
    });
    const config = (key: string) => {
      const i = Object.entries(auth.env).find(([k, v]) => k.startsWith('GIT_CONFIG_KEY_') && v === key)?.[0].slice('GIT_CONFIG_KEY_'.length);
      return i === undefined ? undefined : auth.env[`GIT_CONFIG_VALUE_${i}`];
    };
    assert.equal(config('http.extraHeader'), 'Authorization: Bearer tok-123');
    assert.equal(config('http.proxy'), 'http://u:pw@proxy.corp:3128');
    assert.equal(auth.env.NO_PROXY, '');
    assert.match(auth.credentials ?? '', /key 'bearerToken' of Secret ns\/s/);
    await auth.cleanup();
    await assert.rejects(
      prepareGitAuth({ url: 'ssh://git@git.corp/repo.git' }, undefined, { proxySecret: secret({ address: 'http://p:1' }) }),
      (e: Error) => e instanceof InvalidSpecError && /proxySecretRef: applies to https:\/\/ and http:\/\/ URLs only/.test(e.message),
    );
    await assert.rejects(prepareGitAuth(git, secret({ bearerToken: 'a\nb' })), /key 'bearerToken' must be a single line/);
  });
});
