/**
 * Connecting to a production-like Temporal: the tests' dev server behind real
 * TLS terminators (test/helpers/tls-proxy.ts) with a throwaway CA.
 * - HAProxy requiring client certificates (mTLS): the worker and the CLI connect
 *   with Temporal's environment variables and with a temporal.toml profile; without
 *   a certificate, with an unknown CA or a wrong server name they stop with an error
 *   naming the setting; a client certificate replaced on disk is used without a restart.
 * - nginx (grpc_pass) letting calls through only with the right API key: the key is
 *   sent (from TEMPORAL_API_KEY and from a file), a wrong one is named as such, a new
 *   key written to the file is used by a running worker and client, and no key ever
 *   appears in the output.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { connectClient, getSource, listSourceRefs, reconcileSource } from '../../src/client.js';
import { startLocalStack, type LocalStack } from '../../src/local/stack.js';
import { applyManifests } from '../../src/local/apply.js';
import { loadManifests } from '../../src/manifests/load.js';
import { TemporalConnectionError } from '../../src/errors.js';
import { resolveTemporalSettings } from '../../src/temporal/settings.js';
import { openWorkerConnection } from '../../src/worker.js';
import { freePort } from '../helpers/free-port.js';
import { startCli, type Proc } from '../helpers/processes.js';
import { temporalAddress, uniqueTaskQueue } from '../helpers/temporal.js';
import { issue, makeCa, startNginxApiKeyProxy, startMtlsProxy, tlsToolsSkipReason, type Ca, type Issued, type Proxy } from '../helpers/tls-proxy.js';
import { waitFor } from '../helpers/wait.js';

const BIN = resolve('bin/arena-source.js');
const run = promisify(execFile);
const SERVER_NAME = 'temporal.test';
/** `get -n` of a namespace without sources: one call through the connection, quick (`get -A` queries every source on the shared server). */
const NO_SOURCES = 'tls-no-sources';

/** The process env without any Temporal connection settings of the test runner. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ARENA_SOURCE_LOG_LEVEL: 'info', HOME: tmpdir(), XDG_CONFIG_HOME: '' };
  for (const k of Object.keys(env)) if (k.startsWith('TEMPORAL_') && k !== 'TEMPORAL_CLI_PATH') delete env[k];
  return { ...env, ...extra };
}

/** Runs the CLI to completion: exit code and everything it printed. */
async function cli(args: string[], env: Record<string, string>): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run('node', [BIN, ...args], { env: cleanEnv(env), timeout: 60_000 });
    return { code: 0, out: stdout + stderr };
  } catch (err: any) {
    return { code: typeof err.code === 'number' ? err.code : 1, out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

function sourceYaml(namespace: string, name: string, text: string): string {
  return `apiVersion: v1
kind: ConfigMap
metadata: {name: ${name}, namespace: ${namespace}}
data:
  pack.json: '{"id": "${name}", "text": "${text}"}'
---
apiVersion: omnia.altairalabs.ai/v1alpha1
kind: ArenaSource
metadata: {name: ${name}, namespace: ${namespace}}
spec: {type: configmap, interval: 1h, configMap: {name: ${name}}}
`;
}

describe('Temporal behind HAProxy requiring client certificates (mTLS)', { skip: tlsToolsSkipReason('haproxy', 'openssl') }, () => {
  let dir: string;
  let ca: Ca;
  let otherCa: Ca;
  let server: Issued;
  let client: Issued;
  let otherClient: Issued;
  let proxy: Proxy;
  let mtlsEnv: Record<string, string>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arena-mtls-'));
    ca = await makeCa(dir, 'ca');
    otherCa = await makeCa(dir, 'other-ca');
    server = await issue(ca, 'server', 'server', [SERVER_NAME]);
    client = await issue(ca, 'worker', 'client');
    otherClient = await issue(otherCa, 'worker-next', 'client');
    proxy = await startMtlsProxy({ target: temporalAddress(), server, clientCa: ca.cert, dir });
    mtlsEnv = {
      TEMPORAL_ADDRESS: proxy.address,
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: ca.cert,
      TEMPORAL_TLS_SERVER_NAME: SERVER_NAME,
      TEMPORAL_TLS_CLIENT_CERT_PATH: client.cert,
      TEMPORAL_TLS_CLIENT_KEY_PATH: client.key,
    };
  });

  after(async () => {
    await proxy?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('worker and CLI as processes, configured by TEMPORAL_* variables: a source becomes Ready', async () => {
    const taskQueue = uniqueTaskQueue('mtls-env');
    const ns = `m${taskQueue.replace(/[^a-z0-9]/g, '').slice(-10)}`;
    const common = ['--data-dir', join(dir, 'env-data'), '--task-queue', taskQueue];
    const file = join(dir, 'env-source.yaml');
    await writeFile(file, sourceYaml(ns, 'over-mtls', 'v1'));
    const worker: Proc = startCli([...common, 'worker', '--metrics-port', String(await freePort())], cleanEnv(mtlsEnv) as Record<string, string>);
    try {
      await waitFor('the worker to start', async () => worker.output(), (o) => o.includes('"worker started"') || worker.child.exitCode !== null, 90_000);
      assert.match(worker.output(), /"worker started"/, worker.output());
      assert.match(worker.output(), new RegExp(`"clientCert":"${client.cert}"`), 'the log names the certificate file');
      const applied = await cli([...common, 'apply', '-f', file], mtlsEnv);
      assert.equal(applied.code, 0, applied.out);
      await waitFor(
        'the source to be Ready',
        () => cli([...common, 'get', 'over-mtls', '-n', ns, '-o', 'json'], mtlsEnv),
        (r) => r.code === 0 && JSON.parse(r.out).status?.phase === 'Ready',
        90_000,
        1_000,
      );
    } finally {
      await worker.stop();
    }
  });

  it('the CLI with a temporal.toml profile (TEMPORAL_CONFIG_FILE + TEMPORAL_PROFILE, and the flags)', async () => {
    const toml = join(dir, 'temporal.toml');
    await writeFile(
      toml,
      `[profile.default]
address = "127.0.0.1:1"

[profile.mtls]
address = "${proxy.address}"
namespace = "default"
[profile.mtls.tls]
server_name = "${SERVER_NAME}"
server_ca_cert_path = "${ca.cert}"
client_cert_path = "${client.cert}"
client_key_path = "${client.key}"
`,
    );
    const viaEnv = await cli(['get', '-n', NO_SOURCES], { TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'mtls' });
    assert.equal(viaEnv.code, 0, viaEnv.out);
    const viaFlags = await cli(['--temporal-config-file', toml, '--temporal-profile', 'mtls', 'get', '-n', NO_SOURCES], {});
    assert.equal(viaFlags.code, 0, viaFlags.out);
    // Flags override the profile: the default profile's address is unreachable, the flag's is not.
    const overridden = await cli(['--temporal-config-file', toml, '--temporal-address', proxy.address, '--temporal-tls-ca-file', ca.cert,
      '--temporal-tls-server-name', SERVER_NAME, '--temporal-tls-cert-file', client.cert, '--temporal-tls-key-file', client.key, 'get', '-n', NO_SOURCES], {});
    assert.equal(overridden.code, 0, overridden.out);
    const missing = await cli(['get', '-n', NO_SOURCES], { TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'nope' });
    assert.equal(missing.code, 1);
    assert.match(missing.out, /Profile 'nope' not found/);
  });

  it('a worker with a temporal.toml profile runs sources, and follows a client certificate rotated on disk', async () => {
    // The files the worker reads, replaced in place as cert-manager (or a kubelet updating a Secret volume) does.
    const certFile = join(dir, 'rot', 'tls.crt');
    const keyFile = join(dir, 'rot', 'tls.key');
    await run('mkdir', ['-p', join(dir, 'rot')]);
    await copyFile(client.cert, certFile);
    await copyFile(client.key, keyFile);
    const toml = join(dir, 'rot', 'temporal.toml');
    await writeFile(
      toml,
      `[profile.prod]
address = "${proxy.address}"
[profile.prod.tls]
server_name = "${SERVER_NAME}"
server_ca_cert_path = "${ca.cert}"
client_cert_path = "${certFile}"
client_key_path = "${keyFile}"
`,
    );
    const settings = resolveTemporalSettings(
      { temporalProfile: 'prod', temporalConfigFile: toml, temporalCredentialsRefresh: '200ms' },
      cleanEnv({}),
    );
    const taskQueue = uniqueTaskQueue('mtls-rot');
    const ns = `r${taskQueue.replace(/[^a-z0-9]/g, '').slice(-10)}`;
    let stack: LocalStack | undefined;
    try {
      // An adaptive workflow cache, resized below: its worker then runs on a connection of its own, which must rotate too.
      const workflowCache = { min: 10, max: 20, reviewEveryMs: 3_600_000 };
      stack = await startLocalStack({ dataDir: join(dir, 'rot-data'), temporalAddress: settings.address, temporal: settings, taskQueue, workflowCache });
      const yaml = join(dir, 'rot', 'source.yaml');
      await writeFile(yaml, sourceYaml(ns, 'rotated', 'v1'));
      await applyManifests(stack.client, taskQueue, stack.resources, await loadManifests([yaml]));
      const ref = { namespace: ns, name: 'rotated' };
      await waitFor('Ready over the first certificate', () => getSource(stack!.client, ref), (s) => s.status?.phase === 'Ready', 60_000);
      const first = (await getSource(stack.client, ref)).status!.artifact!.revision;
      await stack.worker!.resizeWorkflowCache(20);
      assert.equal(stack.worker!.cachedWorkflows(), 20);

      // Rotation to a certificate of another CA: the server trusts both for the overlap…
      const bundle = join(dir, 'rot', 'both-cas.crt');
      await writeFile(bundle, (await readFile(ca.cert, 'utf8')) + (await readFile(otherCa.cert, 'utf8')));
      await proxy.stop();
      proxy = await startMtlsProxy({ target: temporalAddress(), server, clientCa: bundle, dir, port: proxy.port });
      // …the new pair lands on disk (key first, then certificate: the pair is taken only once it matches)…
      await writeFile(join(dir, 'rot', 'tls.key.tmp'), await readFile(otherClient.key));
      await rename(join(dir, 'rot', 'tls.key.tmp'), keyFile);
      await writeFile(join(dir, 'rot', 'tls.crt.tmp'), await readFile(otherClient.cert));
      await rename(join(dir, 'rot', 'tls.crt.tmp'), certFile);
      // …and then the old CA is withdrawn: the old certificate no longer gets in.
      await new Promise((r) => setTimeout(r, 1_500));
      await proxy.stop();
      proxy = await startMtlsProxy({ target: temporalAddress(), server, clientCa: otherCa.cert, dir, port: proxy.port });
      const old = await cli(['get', '-n', NO_SOURCES], mtlsEnv);
      assert.equal(old.code, 1, old.out);
      assert.match(old.out, /rejected the client certificate/);

      // The running worker and client carry on with the new certificate (the restart dropped their
      // connections; reconnecting with the old one would fail): a new cycle completes.
      await writeFile(yaml, sourceYaml(ns, 'rotated', 'v2'));
      await applyManifests(stack.client, taskQueue, stack.resources, await loadManifests([yaml]));
      await reconcileSource(stack.client, ref);
      await waitFor(
        'a new revision over the rotated certificate',
        () => getSource(stack!.client, ref),
        (s) => s.status?.phase === 'Ready' && s.status.artifact?.revision !== first,
        90_000,
        500,
      );
    } finally {
      await stack?.close();
      // Later tests expect the first CA again.
      await proxy.stop();
      proxy = await startMtlsProxy({ target: temporalAddress(), server, clientCa: ca.cert, dir, port: proxy.port });
    }
  });

  it('without a client certificate, CLI and worker stop with an error naming the certificate settings', async () => {
    const { TEMPORAL_TLS_CLIENT_CERT_PATH: _c, TEMPORAL_TLS_CLIENT_KEY_PATH: _k, ...noCert } = mtlsEnv;
    const get = await cli(['get', '-n', NO_SOURCES], noCert);
    assert.equal(get.code, 1, get.out);
    assert.match(get.out, /requires a client certificate/);
    assert.match(get.out, /TEMPORAL_TLS_CLIENT_CERT_PATH/);
    const worker = await cli(['--data-dir', join(dir, 'nocert'), 'worker', '--metrics-port', String(await freePort())], noCert);
    assert.notEqual(worker.code, 0, worker.out);
    assert.match(worker.out, /requires a client certificate/);
    assert.match(worker.out, /--temporal-tls-cert-file/);
    assert.doesNotMatch(worker.out, /BEGIN|PRIVATE KEY/, 'no key material');
  });

  it('an unknown server CA, a wrong server name and a rejected certificate each name their setting', async () => {
    const base = cleanEnv({});
    const attempt = async (flags: Record<string, unknown>) => {
      const settings = resolveTemporalSettings({ temporalAddress: proxy.address, ...flags }, base);
      const err = await connectClient(settings, { connectTimeoutMs: 3_000 }).then(
        (c) => (void c.connection.close(), undefined),
        (e: unknown) => e,
      );
      assert.ok(err instanceof TemporalConnectionError, String(err));
      assert.doesNotMatch(err.message, /BEGIN|PRIVATE KEY/);
      return err;
    };
    const pair = { temporalTlsCertFile: client.cert, temporalTlsKeyFile: client.key };
    const unknownCa = await attempt({ temporalTlsServerName: SERVER_NAME, ...pair });
    assert.equal(unknownCa.problem, 'UnknownCA');
    assert.match(unknownCa.message, /TEMPORAL_TLS_SERVER_CA_CERT_PATH/);
    const wrongName = await attempt({ temporalTlsServerName: 'elsewhere.test', temporalTlsCaFile: ca.cert, ...pair });
    assert.equal(wrongName.problem, 'ServerName');
    assert.match(wrongName.message, /TEMPORAL_TLS_SERVER_NAME/);
    const rejected = await attempt({
      temporalTlsServerName: SERVER_NAME,
      temporalTlsCaFile: ca.cert,
      temporalTlsCertFile: otherClient.cert,
      temporalTlsKeyFile: otherClient.key,
    });
    assert.equal(rejected.problem, 'ClientCertificateRejected');
    assert.match(rejected.message, new RegExp(otherClient.cert));
    const plaintext = await attempt({ temporalTls: false });
    assert.equal(plaintext.problem, 'TlsHandshake');
    assert.match(plaintext.message, /TEMPORAL_TLS/);
    // The worker's connection (Core) is explained the same way.
    const workerErr = await openWorkerConnection(
      resolveTemporalSettings({ temporalAddress: proxy.address, temporalTlsCaFile: ca.cert, temporalTlsServerName: SERVER_NAME }, base),
    ).then(
      async (c) => (await c.close(), undefined),
      (e: unknown) => e,
    );
    assert.ok(workerErr instanceof TemporalConnectionError, String(workerErr));
    assert.equal(workerErr.problem, 'ClientCertificateRequired');
  });
});

describe('Temporal behind nginx checking the API key', { skip: tlsToolsSkipReason('nginx', 'openssl') }, () => {
  const KEY = `tk_${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
  const WRONG = `tk_wrong_${Math.random().toString(36).slice(2)}`;
  let dir: string;
  let ca: Ca;
  let nginx: Proxy;
  let server: Issued;
  let env: Record<string, string>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arena-apikey-'));
    ca = await makeCa(dir, 'ca');
    server = await issue(ca, 'server', 'server', [SERVER_NAME]);
    nginx = await startNginxApiKeyProxy({ target: temporalAddress(), server, apiKey: KEY, dir });
    env = { TEMPORAL_ADDRESS: nginx.address, TEMPORAL_TLS_SERVER_CA_CERT_PATH: ca.cert, TEMPORAL_TLS_SERVER_NAME: SERVER_NAME };
  });

  after(async () => {
    await nginx?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('sends TEMPORAL_API_KEY and the key file as the authorization header; a wrong key is named, and no key is printed', async () => {
    const ok = await cli(['get', '-n', NO_SOURCES], { ...env, TEMPORAL_API_KEY: KEY, ARENA_SOURCE_LOG_LEVEL: 'debug' });
    assert.equal(ok.code, 0, ok.out);
    const keyFile = join(dir, 'api-key');
    await writeFile(keyFile, `${KEY}\n`);
    const fromFile = await cli(['--temporal-api-key-file', keyFile, 'get', '-n', NO_SOURCES], env);
    assert.equal(fromFile.code, 0, fromFile.out);
    const none = await cli(['get', '-n', NO_SOURCES], { ...env, TEMPORAL_TLS: 'true' });
    assert.equal(none.code, 1, none.out);
    assert.match(none.out, /requires authentication and no API key is set/);
    const wrong = await cli(['get', '-n', NO_SOURCES], { ...env, TEMPORAL_API_KEY: WRONG });
    assert.equal(wrong.code, 1, wrong.out);
    assert.match(wrong.out, /API key was rejected/);
    assert.match(wrong.out, /TEMPORAL_API_KEY/);
    for (const r of [ok, fromFile, none, wrong]) {
      assert.ok(!r.out.includes(KEY) && !r.out.includes(WRONG), `no key in the output:\n${r.out}`);
    }
  });

  it('a worker process and a client with the key from a file follow a new key; the key is never in the logs', async () => {
    const keyFile = join(dir, 'worker-key');
    await writeFile(keyFile, KEY);
    const port = await freePort();
    const worker = startCli(
      ['--data-dir', join(dir, 'data'), '--task-queue', uniqueTaskQueue('apikey'), 'worker', '--metrics-port', String(port)],
      cleanEnv({ ...env, ARENA_SOURCE_TEMPORAL_API_KEY_FILE: keyFile, ARENA_SOURCE_TEMPORAL_CREDENTIALS_REFRESH: '300ms', ARENA_SOURCE_LOG_LEVEL: 'debug' }) as Record<
        string,
        string
      >,
    );
    const ready = async (what: string) =>
      waitFor(what, async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status, (s) => s === 200, 90_000, 300);
    const client = await connectClient(resolveTemporalSettings({ temporalApiKeyFile: keyFile, temporalCredentialsRefresh: '300ms' }, cleanEnv(env)));
    try {
      await ready('the worker to be ready');
      assert.ok(Array.isArray(await listSourceRefs(client)));
      // The key is replaced: the proxy admits only the new one, the Secret file gets it.
      const next = `${KEY}-next`;
      await nginx.stop();
      nginx = await startNginxApiKeyProxy({ target: temporalAddress(), server, apiKey: next, dir, port: nginx.port });
      await writeFile(`${keyFile}.tmp`, next);
      await rename(`${keyFile}.tmp`, keyFile);
      await waitFor('the client to use the new key', () => listSourceRefs(client), (refs) => Array.isArray(refs), 30_000, 300);
      await ready('the worker to be ready with the new key');
      const stale = await cli(['get', '-n', NO_SOURCES], { ...env, TEMPORAL_API_KEY: KEY });
      assert.match(stale.out, /API key was rejected/, 'the old key no longer gets in');
    } finally {
      await client.connection.close();
      await worker.stop();
      await nginx.stop();
      nginx = await startNginxApiKeyProxy({ target: temporalAddress(), server, apiKey: KEY, dir, port: nginx.port });
    }
    assert.match(worker.output(), /"worker started"/);
    assert.match(worker.output(), new RegExp(`"apiKey":"${keyFile}"`));
    assert.ok(!worker.output().includes(KEY), 'no key in the worker output');
  });
});
