/**
 * Transport settings of git and OCI sources against real servers, through the
 * activities (resolveRevision, fetchSource) as a worker runs them:
 *   - git over HTTPS behind stunnel with a throwaway CA (key ca.crt),
 *     one that requires a client certificate (tls.crt/tls.key), and a git server
 *     that checks a bearer token (bearerToken);
 *   - Debian's docker-registry with TLS and client CAs (spec.oci.certSecretRef);
 *   - Debian's squid as the proxy (proxySecretRef) with basic auth: the test
 *     host names resolve only in squid's own hosts file, and its access log
 *     shows the CONNECTs, so a passing fetch went through it.
 * Wrong values fail with messages naming the Secret key, never a value, and no
 * key file outlives a call.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sourceActivities } from '../../activities/source.js';
import type { ArenaSourceSpec } from '../../src/api/schema.js';
import { AuthenticationFailedError, FetchFailedError } from '../../src/errors.js';
import { seedRepo } from '../../src/dev/demo-git/repo.js';
import { GitHttpServer } from '../../src/dev/demo-git/git-http-server.js';
import { withOras } from '../../src/oci/oras.js';
import { LocalResourceStore } from '../../src/resources/local-store.js';
import { inActivity, localActivityDeps, type LocalActivityDeps } from '../helpers/activity-deps.js';
import { BearerGitHttpServer } from '../helpers/bearer-git-server.js';
import { issueCert, makeCa, type TestCa, type TestCert } from '../helpers/certs.js';
import { requireRegistryTools, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { startSquid, type TestProxy } from '../helpers/squid.js';
import { authTempDirs, putSecret } from '../helpers/ssh.js';
import { startTlsTerminator, type TlsTerminator } from '../helpers/tls-terminator.js';
import { toolSkipReason } from '../helpers/manifests.js';

const NS = 'team';
const TOKEN = 'glpat-Tk9vQ3xZ7mW2pL5r';
const PROXY_USER = 'proxy-user';
const PROXY_PASSWORD = 'Px-7fQ2-secret';
const GIT_HOST = 'git.arena.test';
const REGISTRY_HOST = 'registry.arena.test';

describe('transport: private CA, mutual TLS, bearer token, proxy', { skip: toolSkipReason('squid', 'stunnel4', 'htpasswd', 'openssl') }, () => {
  let dir: string;
  let resources: LocalResourceStore;
  let deps: LocalActivityDeps;
  let plain: GitHttpServer;
  let bearer: BearerGitHttpServer;
  let tlsGit: TlsTerminator;
  let mtlsGit: TlsTerminator;
  let bearerTls: TlsTerminator;
  let proxy: TestProxy;
  let registry: TestRegistry;
  let serverCa: TestCa;
  let clientCa: TestCa;
  let otherCa: TestCa;
  let client: TestCert;
  let strayClient: TestCert;
  let registryCa: string;
  let sha: string;
  let digest: string;
  const source = (name: string) => ({ namespace: NS, name });

  const gitSpec = (url: string, git: Partial<NonNullable<ArenaSourceSpec['git']>> = {}): ArenaSourceSpec => ({
    type: 'git',
    interval: '1h',
    timeout: '20s',
    git: { url, ref: { branch: 'main' }, ...git },
  });
  const ociSpec = (url: string, oci: Partial<NonNullable<ArenaSourceSpec['oci']>> = {}): ArenaSourceSpec => ({
    type: 'oci',
    interval: '1h',
    timeout: '20s',
    oci: { url, ...oci },
  });

  /** resolveRevision then fetchSource; the bundle's pack.json. */
  async function fetchBoth(spec: ArenaSourceSpec, name: string): Promise<{ revision: string; pack: string }> {
    const a = sourceActivities(deps);
    try {
      const { revision, id } = await inActivity(() => a.resolveRevision({ source: source(name), spec }));
      const fetched = await inActivity(() => a.fetchSource({ source: source(name), spec, revision, ...(id ? { id } : {}) }));
      return { revision: fetched.revision, pack: await readFile(join(fetched.bundleDir, 'pack.json'), 'utf8') };
    } finally {
      assert.deepEqual(await authTempDirs(deps.workRoot), [], 'no key material left behind');
    }
  }

  /** resolveRevision's error (the first call a cycle makes). */
  async function failure(spec: ArenaSourceSpec, name: string): Promise<Error> {
    const a = sourceActivities(deps);
    const err = await inActivity(() => a.resolveRevision({ source: source(name), spec })).then(
      () => assert.fail('expected a failure'),
      (e: unknown) => e as Error,
    );
    assert.deepEqual(await authTempDirs(deps.workRoot), [], 'no key material left behind');
    for (const secret of [TOKEN, PROXY_PASSWORD, client.key.split('\n')[1] ?? 'x']) assert.ok(!err.message.includes(secret), `a secret in: ${err.message}`);
    return err;
  }

  before(async () => {
    await requireRegistryTools();
    dir = await mkdtemp(join(tmpdir(), 'arena-transport-'));
    const gitRoot = join(dir, 'git');
    sha = await seedRepo(gitRoot, 'private', { 'pack.json': '{"id":"over-tls"}' });
    [serverCa, clientCa, otherCa] = await Promise.all([makeCa(dir, 'server'), makeCa(dir, 'client'), makeCa(dir, 'other')]);
    const server = await issueCert(serverCa, dir, 'git-server', { server: { ips: ['127.0.0.1'], dns: [GIT_HOST] } });
    [client, strayClient] = await Promise.all([
      issueCert(clientCa, dir, 'arena-worker', { client: true }),
      issueCert(otherCa, dir, 'stranger', { client: true }),
    ]);
    plain = await GitHttpServer.start({ root: gitRoot });
    bearer = await BearerGitHttpServer.startWithToken({ root: gitRoot }, TOKEN);
    const backend = (s: GitHttpServer) => Number(new URL(s.url).port);
    const tls = { dir, certFile: server.certFile, keyFile: server.keyFile };
    [tlsGit, mtlsGit, bearerTls] = await Promise.all([
      startTlsTerminator({ ...tls, name: 'tls', backendPort: backend(plain) }),
      startTlsTerminator({ ...tls, name: 'mtls', backendPort: backend(plain), clientCaFile: clientCa.certFile }),
      startTlsTerminator({ ...tls, name: 'bearer', backendPort: backend(bearer) }),
    ]);
    registry = await startRegistry({ tls: true, dnsNames: [REGISTRY_HOST], clientCaFile: clientCa.certFile });
    registryCa = await readFile(registry.caFile!, 'utf8');
    proxy = await startSquid({ hosts: { [GIT_HOST]: '127.0.0.1', [REGISTRY_HOST]: '127.0.0.1' }, auth: { username: PROXY_USER, password: PROXY_PASSWORD } });

    // One artifact in the mutual-TLS registry, pushed with the client certificate.
    const files = join(dir, 'bundle');
    await mkdir(files);
    await writeFile(join(files, 'pack.json'), '{"id":"over-mtls"}');
    const pushed = await withOras(
      { registry: registry.host, repository: 'prompts/tls', tls: { ca: registryCa, cert: client.cert, key: client.key } },
      { timeoutMs: 60_000 },
      (s) => s.push({ tag: 'v1', cwd: files, files: [{ path: 'pack.json', mediaType: 'application/vnd.oci.image.layer.v1.tar' }], annotations: { 'org.opencontainers.image.created': '1970-01-01T00:00:00Z' } }),
    );
    digest = pushed.digest;

    deps = localActivityDeps(dir);
    resources = deps.resources;
    const put = (name: string, data: Record<string, string>) => putSecret(resources, NS, name, data);
    await Promise.all([
      put('ca', { 'ca.crt': serverCa.pem }),
      put('mtls', { 'ca.crt': serverCa.pem, 'tls.crt': client.cert, 'tls.key': client.key }),
      put('mtls-stranger', { 'ca.crt': serverCa.pem, 'tls.crt': strayClient.cert, 'tls.key': strayClient.key }),
      put('mtls-mismatch', { 'ca.crt': serverCa.pem, 'tls.crt': client.cert, 'tls.key': strayClient.key }),
      put('mtls-no-key', { 'ca.crt': serverCa.pem, 'tls.crt': client.cert }),
      put('token', { 'ca.crt': serverCa.pem, bearerToken: TOKEN }),
      put('token-wrong', { 'ca.crt': serverCa.pem, bearerToken: 'glpat-not-the-token' }),
      put('token-and-basic', { bearerToken: TOKEN, username: 'u', password: 'p' }),
      put('registry-mtls', { 'ca.crt': registryCa, 'tls.crt': client.cert, 'tls.key': client.key }),
      put('registry-ca-only', { 'ca.crt': registryCa }),
      put('proxy', { address: proxy.address, username: PROXY_USER, password: PROXY_PASSWORD }),
      put('proxy-wrong', { address: proxy.address, username: PROXY_USER, password: 'not-the-proxy-password' }),
      put('proxy-bad-address', { address: 'proxy.example:3128' }),
    ]);
  });

  after(async () => {
    await Promise.allSettled([tlsGit?.close(), mtlsGit?.close(), bearerTls?.close(), plain?.close(), bearer?.close(), proxy?.close(), registry?.close()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const httpsUrl = (t: TlsTerminator, host = '127.0.0.1') => `https://${host}:${t.port}/private.git`;

  describe('git over HTTPS', () => {
    it('ca.crt: a server certificate from a private CA is trusted', async () => {
      const r = await fetchBoth(gitSpec(httpsUrl(tlsGit), { secretRef: { name: 'ca' } }), 'g-ca');
      assert.equal(r.revision, `main@sha1:${sha}`);
      assert.equal(r.pack, '{"id":"over-tls"}');
    });

    it('without ca.crt: FetchFailed that says to put the CA in key ca.crt', async () => {
      const err = await failure(gitSpec(httpsUrl(tlsGit)), 'g-noca');
      assert.ok(err instanceof FetchFailedError && !err.retryable, String(err));
      assert.match(err.message, /TLS verification .* failed.*key 'ca\.crt'/);
    });

    it('tls.crt/tls.key: the client certificate gets through a server that requires one', async () => {
      const r = await fetchBoth(gitSpec(httpsUrl(mtlsGit), { secretRef: { name: 'mtls' } }), 'g-mtls');
      assert.equal(r.pack, '{"id":"over-tls"}');
      assert.ok((await mtlsGit.clientNames()).some((n) => n.includes('CN=arena-worker')), (await mtlsGit.clientNames()).join('\n'));
    });

    it('no client certificate, or one from another CA: AuthenticationFailed naming tls.crt and tls.key', async () => {
      for (const secret of ['ca', 'mtls-stranger']) {
        const err = await failure(gitSpec(httpsUrl(mtlsGit), { secretRef: { name: secret } }), `g-mtls-${secret}`);
        // GnuTLS reports the refusal as a fatal alert, or — when the alert races the request — as a dropped
        // connection ("Broken pipe"), which could also be a flaky server: then a retryable FetchFailed, same hint.
        if (err instanceof AuthenticationFailedError) {
          assert.match(err.message, /refused the TLS handshake.*client certificate.*'tls\.crt' and 'tls\.key'/);
        } else {
          assert.ok(err instanceof FetchFailedError && err.retryable, String(err));
          assert.match(err.message, /closed the connection during or right after the TLS handshake.*client certificate.*'tls\.crt' and 'tls\.key'/);
        }
      }
    });

    it('a key that does not match its certificate, or a certificate without its key: said before connecting', async () => {
      const mismatch = await failure(gitSpec(httpsUrl(mtlsGit), { secretRef: { name: 'mtls-mismatch' } }), 'g-mm');
      assert.match(mismatch.message, /Secret team\/mtls-mismatch: key 'tls\.key' does not belong to the certificate in 'tls\.crt'/);
      const noKey = await failure(gitSpec(httpsUrl(mtlsGit), { secretRef: { name: 'mtls-no-key' } }), 'g-nokey');
      assert.match(noKey.message, /key 'tls\.key' is missing/);
    });

    it('bearerToken: the server sees the token', async () => {
      const refused = bearer.refused;
      const r = await fetchBoth(gitSpec(httpsUrl(bearerTls), { secretRef: { name: 'token' } }), 'g-token');
      assert.equal(r.revision, `main@sha1:${sha}`);
      assert.equal(bearer.refused, refused, 'no request was refused');
    });

    it('a wrong bearerToken: AuthenticationFailed naming the key, not the token', async () => {
      const err = await failure(gitSpec(httpsUrl(bearerTls), { secretRef: { name: 'token-wrong' } }), 'g-token-wrong');
      assert.ok(err instanceof AuthenticationFailedError, String(err));
      assert.match(err.message, /key 'bearerToken' of Secret team\/token-wrong/);
      assert.ok(!err.message.includes('glpat-not-the-token'));
      const both = await failure(gitSpec(httpsUrl(bearerTls), { secretRef: { name: 'token-and-basic' } }), 'g-token-basic');
      assert.match(both.message, /either key 'bearerToken' or keys 'username'\/'password'/);
    });

    it('proxySecretRef: fetched through squid (the host name resolves only there), with proxy auth', async () => {
      const url = httpsUrl(tlsGit, GIT_HOST);
      const r = await fetchBoth(gitSpec(url, { secretRef: { name: 'ca' }, proxySecretRef: { name: 'proxy' } }), 'g-proxy');
      assert.equal(r.pack, '{"id":"over-tls"}');
      const log = await proxy.accessLog();
      assert.ok(log.some((l) => l.includes(`CONNECT ${GIT_HOST}:${tlsGit.port}`) && l.includes(PROXY_USER)), log.join('\n'));
      // Without the proxy the name does not even resolve: the fetch above cannot have bypassed it.
      const direct = await failure(gitSpec(url, { secretRef: { name: 'ca' } }), 'g-direct');
      assert.match(direct.message, /resolve host|Could not resolve/i);
    });

    it('a wrong proxy password or address: messages naming the proxySecretRef keys', async () => {
      const url = httpsUrl(tlsGit, GIT_HOST);
      const wrong = await failure(gitSpec(url, { secretRef: { name: 'ca' }, proxySecretRef: { name: 'proxy-wrong' } }), 'g-proxy-wrong');
      assert.ok(wrong instanceof AuthenticationFailedError, String(wrong));
      assert.match(wrong.message, /407.*keys 'username' and 'password' of the Secret in spec\.git\.proxySecretRef/);
      assert.ok(!wrong.message.includes('not-the-proxy-password'));
      const bad = await failure(gitSpec(url, { proxySecretRef: { name: 'proxy-bad-address' } }), 'g-proxy-bad');
      assert.match(bad.message, /Secret team\/proxy-bad-address: key 'address' must be an http:\/\/ or https:\/\/ URL/);
    });
  });

  describe('OCI', () => {
    const ociUrl = () => `oci://${registry.host}/prompts/tls:v1`;

    it('certSecretRef: private CA and client certificate against a registry that requires one', async () => {
      const r = await fetchBoth(ociSpec(ociUrl(), { certSecretRef: { name: 'registry-mtls' } }), 'o-mtls');
      assert.equal(r.revision, `v1@${digest}`);
      assert.equal(r.pack, '{"id":"over-mtls"}');
    });

    it('ca.crt alone: AuthenticationFailed naming tls.crt and tls.key; nothing: the CA is missing', async () => {
      const noClient = await failure(ociSpec(ociUrl(), { certSecretRef: { name: 'registry-ca-only' } }), 'o-ca-only');
      // A TLS alert, or — when it races the request — a dropped connection (retryable FetchFailed): both name the fix.
      assert.ok(noClient instanceof AuthenticationFailedError || (noClient instanceof FetchFailedError && noClient.retryable), String(noClient));
      assert.match(noClient.message, /client certificate.*'tls\.crt' and 'tls\.key' in spec\.oci\.certSecretRef/);
      const noCa = await failure(ociSpec(ociUrl()), 'o-none');
      assert.match(noCa.message, /TLS verification .* failed; put the registry's CA in key 'ca\.crt' of spec\.oci\.certSecretRef/);
    });

    it('proxySecretRef: pulled through squid (the registry name resolves only there)', async () => {
      const port = registry.host.split(':')[1];
      const url = `oci://${REGISTRY_HOST}:${port}/prompts/tls:v1`;
      const r = await fetchBoth(ociSpec(url, { certSecretRef: { name: 'registry-mtls' }, proxySecretRef: { name: 'proxy' } }), 'o-proxy');
      assert.equal(r.pack, '{"id":"over-mtls"}');
      const log = await proxy.accessLog();
      assert.ok(log.some((l) => l.includes(`CONNECT ${REGISTRY_HOST}:${port}`) && l.includes(PROXY_USER)), log.join('\n'));
      const wrong = await failure(ociSpec(url, { certSecretRef: { name: 'registry-mtls' }, proxySecretRef: { name: 'proxy-wrong' } }), 'o-proxy-wrong');
      assert.ok(wrong instanceof AuthenticationFailedError, String(wrong));
      assert.match(wrong.message, /407.*keys 'username' and 'password' of spec\.oci\.proxySecretRef/);
    });
  });
});

