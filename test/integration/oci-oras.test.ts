/**
 * The oras wrapper and pushBundle against real registries (distribution 2.8):
 * credentials never in argv or environment, the private config is 0600 and
 * removed, transport choices (TLS by default even for localhost, insecure,
 * CA file), typed errors for outages, timeouts, unknown tags and corrupted
 * blobs, and reproducible Flux-compatible pushes.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ArenaSourceError, AuthenticationFailedError, FetchFailedError } from '../../src/errors.js';
import { orasBinary, withOras } from '../../src/oci/oras.js';
import { FLUX_CONFIG_MEDIA_TYPE, FLUX_CONTENT_MEDIA_TYPE, pushBundle } from '../../src/oci/push.js';
import { fetchOciArtifact, resolveOciRevision, type OciContext } from '../../src/sources/oci.js';
import type { SecretObject } from '../../src/resources/types.js';
import { requireRegistryTools, startRegistry, type TestRegistry } from '../helpers/registry.js';

const USER = 'pusher';
const PASSWORD = 'oras-wrapper-pw-7f3a91';

function expectError(type: new (...a: never[]) => ArenaSourceError, message: RegExp, extra?: (e: ArenaSourceError) => void) {
  return (err: unknown) => {
    assert.ok(err instanceof type, `expected ${type.name}, got ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
    assert.match(err.message, message);
    assert.ok(!err.message.includes(PASSWORD), 'password in message');
    extra?.(err);
    return true;
  };
}

describe('oras wrapper and pushBundle', () => {
  let secure: TestRegistry;
  let plain: TestRegistry;
  let work: string;
  let bundle: string;
  const secrets = new Map<string, SecretObject>();
  const ctx = (over: Partial<OciContext> = {}): OciContext => ({
    namespace: 'ns',
    resources: { getSecret: async (_ns, name) => secrets.get(name) ?? null },
    timeoutMs: 30_000,
    oras: { caFile: secure.caFile as string },
    ...over,
  });
  const creds = { username: USER, password: PASSWORD };

  before(async () => {
    await requireRegistryTools();
    [secure, plain] = await Promise.all([startRegistry({ tls: true, auth: creds }), startRegistry()]);
    work = await mkdtemp(join(tmpdir(), 'arena-oras-test-'));
    bundle = join(work, 'bundle');
    await mkdir(join(bundle, 'prompts'), { recursive: true });
    await writeFile(join(bundle, 'pack.json'), '{"id":"wrapper"}');
    await writeFile(join(bundle, 'prompts', 'a.md'), 'A');
    secrets.set('basic', { namespace: 'ns', name: 'basic', data: { username: Buffer.from(USER), password: Buffer.from(PASSWORD) } });
  });
  after(async () => {
    await Promise.allSettled([secure?.close(), plain?.close()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('pushes a Flux-compatible artifact; the same content twice gives the same digest', async () => {
    const opts = { ...creds, caFile: secure.caFile!, sourceUrl: 'https://git.example/acme/prompts', revision: 'main@sha1:0123' };
    const first = await pushBundle(bundle, secure.url('acme/prompts', 'v1'), opts);
    const again = await pushBundle(bundle, secure.url('acme/prompts', 'v1-copy'), opts);
    assert.equal(again.digest, first.digest, 'reproducible manifest digest');
    assert.equal(first.reference, `oci://${secure.host}/acme/prompts@${first.digest}`);
    assert.match(first.checksum, /^sha256:[0-9a-f]{64}$/);

    const manifest = JSON.parse(
      (
        await withOras({ registry: secure.host, repository: 'acme/prompts', auth: creds }, { caFile: secure.caFile! }, (s) => s.fetchManifest(first.digest))
      ).toString('utf8'),
    ) as { config: { mediaType: string }; layers: { mediaType: string; digest: string }[]; annotations: Record<string, string> };
    assert.equal(manifest.config.mediaType, FLUX_CONFIG_MEDIA_TYPE);
    assert.equal(manifest.layers.length, 1);
    assert.equal(manifest.layers[0]!.mediaType, FLUX_CONTENT_MEDIA_TYPE);
    assert.equal(manifest.layers[0]!.digest, first.checksum, 'the layer is the packed bundle');
    assert.equal(manifest.annotations['org.opencontainers.image.source'], 'https://git.example/acme/prompts');
    assert.equal(manifest.annotations['org.opencontainers.image.revision'], 'main@sha1:0123');
    assert.equal(manifest.annotations['org.opencontainers.image.created'], '1970-01-01T00:00:00Z');

    // A different revision annotation is a different artifact.
    const other = await pushBundle(bundle, secure.url('acme/prompts', 'v2'), { ...opts, revision: 'main@sha1:4567' });
    assert.notEqual(other.digest, first.digest);
    await assert.rejects(pushBundle(bundle, `oci://${secure.host}/acme/prompts@${first.digest}`, opts), /cannot push to a digest/);
  });

  it('never puts credentials in argv or the environment; the config is 0600 and removed afterwards', async () => {
    await pushBundle(bundle, secure.url('acme/argv', 'v1'), { ...creds, caFile: secure.caFile! });
    const real = await orasBinary();
    const log = join(work, 'shim.log');
    const shim = join(work, 'oras-shim');
    await writeFile(
      shim,
      [
        '#!/bin/sh',
        `log=${JSON.stringify(log)}`,
        'prev=""',
        'for a in "$@"; do',
        '  printf "ARG %s\\n" "$a" >> "$log"',
        '  if [ "$prev" = "--registry-config" ]; then',
        '    printf "CONFIG %s %s\\n" "$a" "$(stat -c %a "$a") $(stat -c %a "$(dirname "$a")")" >> "$log"',
        '  fi',
        '  prev="$a"',
        'done',
        'env | sed "s/^/ENV /" >> "$log"',
        `exec ${JSON.stringify(real)} "$@"`,
        '',
      ].join('\n'),
    );
    await chmod(shim, 0o755);
    const oci = { url: secure.url('acme/argv', 'v1'), secretRef: { name: 'basic' } };
    const c = ctx({ oras: { binary: shim, caFile: secure.caFile! } });
    const { digest } = await resolveOciRevision(oci, c);
    await fetchOciArtifact(oci, digest, join(work, 'argv-content'), c);
    const text = await readFile(log, 'utf8');
    assert.ok(text.includes('ARG resolve') && text.includes('ARG blob'), 'the shim saw the calls');
    assert.ok(!text.includes(PASSWORD), 'password in argv or environment');
    assert.ok(!text.includes(Buffer.from(`${USER}:${PASSWORD}`).toString('base64')), 'encoded credentials in argv or environment');
    const configs = [...text.matchAll(/^CONFIG (\S+) (\d+) (\d+)$/gm)];
    assert.ok(configs.length >= 3, 'every call got --registry-config');
    for (const [, path, mode, dirMode] of configs) {
      assert.equal(mode, '600', `${path} mode`);
      assert.equal(dirMode, '700', `${path} directory mode`);
      assert.ok(!existsSync(path!), `${path} removed after the call`);
    }
    assert.ok(text.includes('ARG --plain-http=false'), 'TLS enforced explicitly');
  });

  it('anonymous plain-HTTP registries: refused without insecure (also for localhost), fine with it', async () => {
    const pushed = await pushBundle(bundle, plain.url('open/app', 'v1'), { insecure: true });
    const port = plain.host.split(':')[1];
    for (const host of [plain.host, `localhost:${port}`]) {
      await assert.rejects(
        resolveOciRevision({ url: `oci://${host}/open/app:v1` }, ctx()),
        expectError(FetchFailedError, /answers plain HTTP, not HTTPS; set spec\.oci\.insecure: true/, (e) => assert.equal(e.retryable, false)),
      );
      const r = await resolveOciRevision({ url: `oci://${host}/open/app:v1`, insecure: true }, ctx());
      assert.equal(r.revision, `v1@${pushed.digest}`);
    }
  });

  it('TLS: unverified without the CA; fine with the CA file, or with insecure', async () => {
    const oci = { url: secure.url('acme/prompts', 'v1'), secretRef: { name: 'basic' } };
    await assert.rejects(
      resolveOciRevision(oci, ctx({ oras: {} })),
      expectError(FetchFailedError, /TLS verification of registry 127\.0\.0\.1:\d+ failed/, (e) => assert.equal(e.retryable, false)),
    );
    const withCa = await resolveOciRevision(oci, ctx());
    const insecure = await resolveOciRevision({ ...oci, insecure: true }, ctx({ oras: {} }));
    assert.equal(insecure.digest, withCa.digest);
  });

  it('typed errors: bad credentials, unknown tag or digest, outages (retryable), timeouts', async () => {
    secrets.set('wrong', { namespace: 'ns', name: 'wrong', data: { username: Buffer.from(USER), password: Buffer.from('nope-nope') } });
    await assert.rejects(
      resolveOciRevision({ url: secure.url('acme/prompts', 'v1'), secretRef: { name: 'wrong' } }, ctx()),
      expectError(AuthenticationFailedError, new RegExp(`registry ${secure.host.replace(/\./g, '\\.')}.*Secret ns/wrong`)),
    );
    await assert.rejects(
      resolveOciRevision({ url: secure.url('acme/prompts', 'no-such-tag'), secretRef: { name: 'basic' } }, ctx()),
      expectError(FetchFailedError, /not found.*no-such-tag/, (e) => assert.equal(e.retryable, false)),
    );
    await assert.rejects(
      resolveOciRevision({ url: secure.url('acme/prompts', `sha256:${'0'.repeat(64)}`), secretRef: { name: 'basic' } }, ctx()),
      expectError(FetchFailedError, /not found/),
    );

    const down: Server = createHttpServer((_req, res) => {
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('maintenance');
    });
    await new Promise<void>((r) => down.listen(0, '127.0.0.1', r));
    const downPort = (down.address() as { port: number }).port;
    try {
      await assert.rejects(
        resolveOciRevision({ url: `oci://127.0.0.1:${downPort}/a/b:v1`, insecure: true }, ctx()),
        expectError(FetchFailedError, /unreachable or failing.*503/, (e) => assert.equal(e.retryable, true)),
      );
    } finally {
      await new Promise((r) => down.close(r));
    }

    // Accepts connections and never answers.
    const silent: TcpServer = createTcpServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const silentPort = (silent.address() as { port: number }).port;
    try {
      const t0 = Date.now();
      await assert.rejects(
        resolveOciRevision({ url: `oci://127.0.0.1:${silentPort}/a/b:v1` }, ctx({ timeoutMs: 1_500 })),
        expectError(FetchFailedError, /did not finish within 1\.5s|1500ms|timeout/, (e) => assert.equal(e.retryable, true)),
      );
      assert.ok(Date.now() - t0 < 10_000, 'the timeout is honoured');
    } finally {
      silent.close();
    }

    await assert.rejects(
      resolveOciRevision({ url: secure.url('acme/prompts', 'v1'), secretRef: { name: 'basic' } }, ctx({ oras: { binary: join(work, 'no-oras') } })),
      expectError(FetchFailedError, /oras CLI was not found/),
    );
  });

  it('ORAS file artifacts: plain files by title, and a pushed directory unpacked below its title', async () => {
    const src = join(work, 'oras-dir-src');
    await mkdir(join(src, 'prompts', 'deep'), { recursive: true });
    await writeFile(join(src, 'pack.json'), '{"id":"dir"}');
    await writeFile(join(src, 'prompts', 'a.md'), 'A');
    await writeFile(join(src, 'prompts', 'deep', 'b.md'), 'B');
    const target = { registry: plain.host, repository: 'open/dir', insecure: true };
    const pushed = await withOras(target, {}, (s) =>
      s.push({
        tag: 'v1',
        cwd: src,
        files: [
          { path: 'pack.json', mediaType: 'application/json' },
          { path: 'prompts', mediaType: 'application/vnd.oci.image.layer.v1.tar' },
        ],
        annotations: { 'org.opencontainers.image.created': '1970-01-01T00:00:00Z' },
      }),
    );
    const manifest = JSON.parse((await withOras(target, {}, (s) => s.fetchManifest(pushed.digest))).toString('utf8')) as {
      layers: { annotations?: Record<string, string> }[];
    };
    assert.equal(manifest.layers[1]?.annotations?.['io.deis.oras.content.unpack'], 'true', 'oras marks directory layers');
    const dir = join(work, 'oras-dir-content');
    const result = await fetchOciArtifact({ url: plain.url('open/dir', 'v1'), insecure: true }, pushed.digest, dir, ctx());
    assert.equal(result.layout, 'files');
    assert.equal(await readFile(join(dir, 'pack.json'), 'utf8'), '{"id":"dir"}');
    assert.equal(await readFile(join(dir, 'prompts', 'deep', 'b.md'), 'utf8'), 'B');
  });

  it('a blob corrupted in the registry is refused (digest verified)', async () => {
    const pushed = await pushBundle(bundle, plain.url('open/corrupt', 'v1'), { insecure: true });
    // distribution's filesystem driver serves blobs as stored: damage one on disk.
    const hex = pushed.checksum.slice('sha256:'.length);
    const blob = join(plain.dir, 'data', 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
    const bytes = await readFile(blob);
    bytes[bytes.length - 5] = (bytes[bytes.length - 5] ?? 0) ^ 0xff;
    await writeFile(blob, bytes);
    const dir = join(work, 'corrupt-content');
    await assert.rejects(
      fetchOciArtifact({ url: plain.url('open/corrupt', 'v1'), insecure: true }, pushed.digest, dir, ctx()),
      (err: unknown) => {
        assert.ok(err instanceof FetchFailedError, String(err));
        assert.match(err.message, /does not match its digest|does not match its descriptor/);
        assert.equal(err.retryable, false);
        return true;
      },
    );
    assert.ok(!existsSync(dir), 'nothing left of a failed fetch');
  });
});
