/**
 * Registry credentials from Secrets (src/oci/credentials.ts), the docker config
 * oras gets (src/oci/oras.ts dockerConfigJson), and error classification.
 * Errors must name the Secret, key and registry, and never a value.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AuthenticationFailedError, FetchFailedError, SecretNotFoundError } from '../../src/errors.js';
import { normalizeRegistry, registryAuthFromDockerConfig, registryAuthFromSecret } from '../../src/oci/credentials.js';
import { classifyOrasError, dockerConfigJson } from '../../src/oci/oras.js';
import { digestOfRevision, ociRevisionFor, parseOciSource } from '../../src/sources/oci.js';
import type { SecretObject } from '../../src/resources/types.js';

const secret = (data: Record<string, string>, type?: string): SecretObject => ({
  namespace: 'arena',
  name: 'creds',
  ...(type ? { type } : {}),
  data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v)])),
});
const b64 = (s: string) => Buffer.from(s).toString('base64');
const DCJ = 'kubernetes.io/dockerconfigjson';

function secretError(fn: () => unknown, message: RegExp, mustNotContain: string[] = []) {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SecretNotFoundError, String(err));
    assert.match(err.message, message);
    for (const s of mustNotContain) assert.ok(!err.message.includes(s), `message leaks ${s}: ${err.message}`);
    return true;
  });
}

describe('registry credentials', () => {
  it('reads a dockerconfigjson Secret: auth, username/password, tokens; keys with scheme and path', () => {
    const cfg = (entry: object, key = 'reg.example:5000') => secret({ '.dockerconfigjson': JSON.stringify({ auths: { [key]: entry } }) }, DCJ);
    assert.deepEqual(registryAuthFromSecret(cfg({ auth: b64('u:p:with:colons') }), 'reg.example:5000'), { username: 'u', password: 'p:with:colons' });
    assert.deepEqual(registryAuthFromSecret(cfg({ username: 'u', password: 'p' }), 'reg.example:5000'), { username: 'u', password: 'p' });
    assert.deepEqual(registryAuthFromSecret(cfg({ identitytoken: 'tok' }), 'reg.example:5000'), { identityToken: 'tok' });
    assert.deepEqual(registryAuthFromSecret(cfg({ auth: b64('u:p') }, 'https://Reg.Example:5000/v2/'), 'reg.example:5000'), {
      username: 'u',
      password: 'p',
    });
    assert.deepEqual(registryAuthFromSecret(cfg({ auth: b64('u:p') }, 'https://index.docker.io/v1/'), 'docker.io'), { username: 'u', password: 'p' });
  });

  it('reads plain username/password keys', () => {
    assert.deepEqual(registryAuthFromSecret(secret({ username: 'u', password: 'p' }), 'r'), { username: 'u', password: 'p' });
  });

  it('names the Secret, the key and the registry when something is missing; never a value', () => {
    secretError(() => registryAuthFromSecret(secret({}, DCJ), 'r'), /Secret arena\/creds has no key '\.dockerconfigjson'/);
    secretError(() => registryAuthFromSecret(secret({ username: 'u' }), 'r'), /Secret arena\/creds has no key 'password'/);
    secretError(() => registryAuthFromSecret(secret({}), 'r'), /has no key 'username'.*dockerconfigjson/);
    secretError(
      () => registryAuthFromSecret(secret({ '.dockerconfigjson': JSON.stringify({ auths: { 'ghcr.io': { auth: b64('u:topsecret') } } }) }, DCJ), 'quay.io'),
      /Secret arena\/creds key '\.dockerconfigjson' has no entry for registry quay\.io \(it has: ghcr\.io\)/,
      ['topsecret', b64('u:topsecret')],
    );
    // A JSON parser's message quotes the text: it must not reach ours.
    secretError(
      () => registryAuthFromSecret(secret({ '.dockerconfigjson': '{"auths": {"r": {"auth": "topsecret-value' }, DCJ), 'r'),
      /is not valid JSON/,
      ['topsecret'],
    );
    secretError(() => registryAuthFromSecret(secret({ '.dockerconfigjson': '{"r": {}}' }, DCJ), 'r'), /has no "auths" object/);
    secretError(
      () => registryAuthFromSecret(secret({ '.dockerconfigjson': JSON.stringify({ auths: { r: {} } }) }, DCJ), 'r'),
      /no usable credentials/,
    );
  });

  it('drops credsStore and credHelpers: the config oras gets has one auths entry and nothing else', () => {
    const auth = registryAuthFromDockerConfig(
      JSON.stringify({ credsStore: 'evil', credHelpers: { r: 'evil' }, auths: { r: { auth: b64('u:p') }, other: { auth: b64('x:y') } } }),
      'r',
    );
    const written = JSON.parse(dockerConfigJson('r', auth)) as Record<string, unknown>;
    assert.deepEqual(written, { auths: { r: { auth: b64('u:p') } } });
    assert.deepEqual(JSON.parse(dockerConfigJson('r', undefined)), { auths: {} });
    assert.deepEqual(Object.keys((JSON.parse(dockerConfigJson('docker.io', auth)) as { auths: object }).auths).sort(), [
      'docker.io',
      'https://index.docker.io/v1/',
    ]);
  });

  it('normalizes registry keys', () => {
    assert.equal(normalizeRegistry('https://GHCR.io/v1/'), 'ghcr.io');
    assert.equal(normalizeRegistry('127.0.0.1:5000'), '127.0.0.1:5000');
  });
});

describe('oras error classification', () => {
  const ctx = { registry: 'reg:5000', what: "resolving tag 'v1' of reg:5000/a", insecure: false, plainHttp: false, secrets: ['hunter2'] };
  it('maps auth failures, outages, unknown tags, TLS and plain-HTTP problems to typed errors', () => {
    const auth = classifyOrasError('Error response from registry: HEAD "https://reg:5000/v2/a/manifests/v1": response status code 401: Unauthorized', ctx);
    assert.ok(auth instanceof AuthenticationFailedError);
    assert.match(auth.message, /registry reg:5000/);
    assert.ok(classifyOrasError('Error: failed to resolve digest: basic credential not found', ctx) instanceof AuthenticationFailedError);
    assert.ok(classifyOrasError('response status code 403: Forbidden', ctx) instanceof AuthenticationFailedError);

    for (const outage of ['response status code 503: Service Unavailable', 'dial tcp 127.0.0.1:1: connect: connection refused', 'read: connection reset by peer']) {
      const e = classifyOrasError(outage, ctx);
      assert.ok(e instanceof FetchFailedError && e.retryable, outage);
    }
    const missing = classifyOrasError('Error response from registry: failed to resolve digest: reg:5000/a:v9: not found', ctx);
    assert.ok(missing instanceof FetchFailedError && !missing.retryable);
    assert.match(missing.message, /not found/);

    const tls = classifyOrasError('Head "https://reg:5000/v2/": tls: failed to verify certificate: x509: certificate signed by unknown authority', ctx);
    assert.ok(tls instanceof FetchFailedError && !tls.retryable);
    assert.match(tls.message, /ARENA_SOURCE_OCI_CA_FILE|insecure/);

    const plain = classifyOrasError('http: server gave HTTP response to HTTPS client', ctx);
    assert.ok(plain instanceof FetchFailedError && !plain.retryable);
    assert.match(plain.message, /plain HTTP.*spec\.oci\.insecure: true/);
  });

  it('scrubs secrets and URL credentials from details', () => {
    const e = classifyOrasError('Error: weird failure mentioning hunter2 and https://u:pw@reg:5000/x', ctx);
    assert.ok(!e.message.includes('hunter2'));
    assert.ok(!e.message.includes(':pw@'));
  });
});

describe('oci revisions', () => {
  const digest = `sha256:${'a'.repeat(64)}`;
  it('tag URLs give tag@sha256, digest URLs @sha256; no tag means latest', () => {
    assert.equal(ociRevisionFor({ url: 'oci://r:5000/a/b:v1' }, digest), `v1@${digest}`);
    assert.equal(ociRevisionFor({ url: `oci://r:5000/a/b@${digest}` }, digest), `@${digest}`);
    assert.equal(ociRevisionFor({ url: 'oci://r/a' }, digest), `latest@${digest}`);
  });
  it('pulls the digest resolveRevision saw, unless it was for another tag', () => {
    assert.equal(digestOfRevision({ url: 'oci://r/a:v1' }, `v1@${digest}`), digest);
    assert.equal(digestOfRevision({ url: 'oci://r/a:v2' }, `v1@${digest}`), undefined);
    const pinned = `sha256:${'b'.repeat(64)}`;
    assert.equal(digestOfRevision({ url: `oci://r/a@${pinned}` }, `@${digest}`), pinned);
  });
  it('rejects URLs that are not oci://registry/repository[:tag|@digest]', () => {
    assert.throws(() => parseOciSource({ url: 'oci://r' }), /is not oci:\/\/registry/);
    assert.throws(() => parseOciSource({ url: 'oci://user:pw@r/a:v1' }), (e: Error) => !e.message.includes('pw@'));
  });
});
