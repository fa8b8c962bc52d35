/**
 * The Temporal connection settings: flags > TEMPORAL_* environment > temporal.toml
 * profile > defaults (src/temporal/settings.ts, on @temporalio/envconfig), and the
 * credential files' checks (src/temporal/credentials.ts) with real openssl-made keys.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { TemporalConnectionError } from '../../src/errors.js';
import { TemporalCredentials } from '../../src/temporal/credentials.js';
import { describeTemporal, resolveTemporalSettings } from '../../src/temporal/settings.js';

const run = promisify(execFile);

describe('Temporal connection settings', () => {
  let dir: string;
  let toml: string;
  const env = (vars: Record<string, string> = {}) => ({ HOME: dir, ...vars });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arena-tsettings-'));
    toml = join(dir, 'temporal.toml');
    await writeFile(
      toml,
      `[profile.default]
address = "default.example:7233"

[profile.cloud]
address = "ns.acct.tmprl.cloud:7233"
namespace = "ns.acct"
api_key = "from-profile"
[profile.cloud.grpc_meta]
x_team = "sources"

[profile.mtls]
address = "temporal.internal:7233"
[profile.mtls.tls]
client_cert_path = "/certs/tls.crt"
client_key_path = "/certs/tls.key"
server_name = "temporal"
`,
    );
  });
  after(async () => dir && rm(dir, { recursive: true, force: true }));

  it('defaults: plaintext to 127.0.0.1:7233, namespace default, when nothing is configured', () => {
    const s = resolveTemporalSettings({}, env());
    assert.equal(s.address, '127.0.0.1:7233');
    assert.equal(s.namespace, 'default');
    assert.equal(s.tls, undefined);
    assert.equal(s.apiKey, undefined);
  });

  it('the profile, then TEMPORAL_* over it, then flags over both', () => {
    const cloud = resolveTemporalSettings({ temporalConfigFile: toml, temporalProfile: 'cloud' }, env());
    assert.equal(cloud.address, 'ns.acct.tmprl.cloud:7233');
    assert.equal(cloud.namespace, 'ns.acct');
    assert.deepEqual(cloud.apiKey, { value: 'from-profile' });
    assert.deepEqual(cloud.tls, {}, 'an API key turns TLS on, with the system CAs');
    assert.deepEqual(cloud.metadata, { 'x-team': 'sources' });

    const envOver = resolveTemporalSettings({}, env({ TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'cloud', TEMPORAL_NAMESPACE: 'other', TEMPORAL_API_KEY: 'from-env' }));
    assert.equal(envOver.namespace, 'other');
    assert.deepEqual(envOver.apiKey, { value: 'from-env' });

    const flagsOver = resolveTemporalSettings(
      { temporalConfigFile: toml, temporalProfile: 'cloud', temporalNamespace: 'flag-ns', temporalApiKeyFile: '/secrets/key' },
      env({ TEMPORAL_NAMESPACE: 'other' }),
    );
    assert.equal(flagsOver.namespace, 'flag-ns');
    assert.deepEqual(flagsOver.apiKey, { path: '/secrets/key' });
    assert.equal(resolveTemporalSettings({}, env({ TEMPORAL_CONFIG_FILE: toml })).address, 'default.example:7233', 'the default profile');
  });

  it('TLS from the profile and from flags; TEMPORAL_TLS=false and --temporal-tls turn it off and on', () => {
    const mtls = resolveTemporalSettings({ temporalConfigFile: toml, temporalProfile: 'mtls', temporalTlsCaFile: '/ca.crt' }, env());
    assert.deepEqual(mtls.tls, { serverName: 'temporal', ca: { path: '/ca.crt' }, cert: { path: '/certs/tls.crt' }, key: { path: '/certs/tls.key' } });
    assert.equal(resolveTemporalSettings({ temporalConfigFile: toml, temporalProfile: 'mtls' }, env({ TEMPORAL_TLS: 'false' })).tls, undefined);
    assert.equal(resolveTemporalSettings({ temporalConfigFile: toml, temporalProfile: 'mtls', temporalTls: false }, env()).tls, undefined);
    assert.deepEqual(resolveTemporalSettings({ temporalTls: true }, env()).tls, {});
    const data = resolveTemporalSettings({}, env({ TEMPORAL_TLS_SERVER_CA_CERT_DATA: 'PEM' }));
    assert.deepEqual(data.tls, { ca: { data: Buffer.from('PEM') } });
  });

  it('empty variables count as unset; mistakes are TemporalConnectionErrors naming the setting', () => {
    assert.equal(resolveTemporalSettings({}, env({ TEMPORAL_ADDRESS: '', TEMPORAL_API_KEY: '' })).apiKey, undefined);
    const problems: Array<[() => unknown, RegExp]> = [
      [() => resolveTemporalSettings({ temporalTlsCertFile: '/c.crt' }, env()), /TEMPORAL_TLS_CLIENT_KEY_PATH/],
      [() => resolveTemporalSettings({ temporalConfigFile: join(dir, 'missing.toml') }, env()), /missing\.toml does not exist/],
      [() => resolveTemporalSettings({ temporalConfigFile: toml, temporalProfile: 'nope' }, env()), /Profile 'nope' not found/],
      // Not something the SDK can do: refused with the setting to use instead, not ignored.
      [() => resolveTemporalSettings({}, env({ TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: 'true' })), /not supported.*TEMPORAL_TLS_SERVER_NAME/],
    ];
    for (const [fn, message] of problems) {
      assert.throws(fn, (err: unknown) => err instanceof TemporalConnectionError && err.problem === 'Config' && message.test(err.message + err.settings));
    }
  });

  it('describeTemporal names files and says whether a key is set, never the key', () => {
    const s = resolveTemporalSettings({ temporalConfigFile: toml, temporalProfile: 'cloud' }, env());
    const text = JSON.stringify(describeTemporal(s));
    assert.ok(!text.includes('from-profile'), text);
    assert.match(text, /"apiKey":"set"/);
  });
});

describe('Temporal credential files', () => {
  let dir: string;
  const pair = async (name: string) => {
    const key = join(dir, `${name}.key`);
    const cert = join(dir, `${name}.crt`);
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', `/CN=${name}`, '-keyout', key, '-out', cert]);
    return { key, cert };
  };
  before(async () => (dir = await mkdtemp(join(tmpdir(), 'arena-tcreds-'))));
  after(async () => dir && rm(dir, { recursive: true, force: true }));

  it('takes a replaced pair only once certificate and key match; keeps the last good one meanwhile', async () => {
    const a = await pair('a');
    const b = await pair('b');
    const cert = join(dir, 'tls.crt');
    const key = join(dir, 'tls.key');
    await copyFile(a.cert, cert);
    await copyFile(a.key, key);
    const warnings: string[] = [];
    const creds = await TemporalCredentials.load(
      { address: 'x:1', namespace: 'default', tls: { cert: { path: cert }, key: { path: key } }, apiKey: { path: join(dir, 'key') } },
      (m) => warnings.push(m),
    ).catch((err) => err);
    assert.ok(creds instanceof TemporalConnectionError, 'a missing API key file is an error');
    assert.match(creds.message, /API key file .*key: ENOENT/);
    await writeFile(join(dir, 'key'), 'secret-1\n');
    const c = await TemporalCredentials.load(
      { address: 'x:1', namespace: 'default', tls: { cert: { path: cert }, key: { path: key } }, apiKey: { path: join(dir, 'key') } },
      (m) => warnings.push(m),
    );
    assert.equal(c.apiKey(), 'secret-1', 'trimmed');
    const first = c.current().cert;
    await copyFile(b.key, key); // the key first: a mismatched pair for now
    assert.deepEqual(await c.refresh(), { tls: false, apiKey: false });
    assert.ok(c.current().cert!.equals(first!));
    assert.match(warnings.join('\n'), /do not form a usable pair/);
    assert.ok(!warnings.join('\n').includes('PRIVATE KEY'));
    await copyFile(b.cert, cert);
    await writeFile(join(dir, 'key'), 'secret-2');
    assert.deepEqual(await c.refresh(), { tls: true, apiKey: true });
    assert.equal(c.apiKey(), 'secret-2');
    c.close();
  });
});
