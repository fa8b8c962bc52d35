import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { packDirectory } from '../../src/bundle/pack.js';
import { startArtifactServer, type RunningArtifactServer } from '../../src/server/artifact-server.js';
import type { StoredArtifact } from '../../src/store/artifact-store.js';
import { FilesystemArtifactStore } from '../../src/store/fs-store.js';

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** A request with the path sent byte for byte (fetch/URL would normalise "..", "%2e" and "//"). */
function raw(base: string, rawPath: string, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<RawResponse> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: u.hostname, port: u.port, method: opts.method ?? 'GET', path: rawPath, headers: opts.headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

let tmp: string;
let store: FilesystemArtifactStore;
let artifact: StoredArtifact;
let srv: RunningArtifactServer;
let prefixed: RunningArtifactServer;

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'arena-server-test-'));
  const bundle = path.join(tmp, 'bundle');
  await mkdir(path.join(bundle, 'prompts'), { recursive: true });
  await writeFile(path.join(bundle, 'arena.yaml'), 'kind: Arena\n');
  // Enough incompressible-ish content for ranges to be meaningful.
  await writeFile(path.join(bundle, 'prompts', 'system.md'), createHash('sha512').update('seed').digest('hex').repeat(500));
  const packed = path.join(tmp, 'packed.tar.gz');
  const result = await packDirectory(bundle, packed);
  store = new FilesystemArtifactStore(path.join(tmp, 'store'));
  artifact = await store.put({ namespace: 'default', name: 'demo' }, packed, result.checksum);
  // A file right next to the store root: traversal must never reach it.
  await writeFile(path.join(tmp, 'secret.tar.gz'), 'secret');

  srv = await startArtifactServer(store);
  prefixed = await startArtifactServer(store, { prefix: '/artifacts' });
});

after(async () => {
  await srv?.close();
  await prefixed?.close();
  await rm(tmp, { recursive: true, force: true });
});

describe('artifact server', () => {
  it('listens on 127.0.0.1 and answers /healthz', async () => {
    assert.match(srv.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${srv.url}/healthz`);
    assert.equal(res.status, 200);
    assert.equal((await res.text()).trim(), 'ok');
  });

  it('GET serves the artifact: body hashes to the checksum, with content-addressed headers', async () => {
    const res = await fetch(`${srv.url}/${artifact.key}`);
    assert.equal(res.status, 200);
    const body = Buffer.from(await res.arrayBuffer());
    assert.equal(sha256(body), artifact.checksum);
    assert.equal(body.length, artifact.size);
    assert.equal(res.headers.get('content-type'), 'application/gzip');
    assert.equal(res.headers.get('content-length'), String(artifact.size));
    assert.equal(res.headers.get('etag'), `"${artifact.checksum}"`);
    assert.equal(res.headers.get('accept-ranges'), 'bytes');
    assert.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable');
  });

  it('HEAD gives the same headers and no body', async () => {
    const res = await raw(srv.url, `/${artifact.key}`, { method: 'HEAD' });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-length'], String(artifact.size));
    assert.equal(res.headers['etag'], `"${artifact.checksum}"`);
    assert.equal(res.headers['content-type'], 'application/gzip');
    assert.equal(res.body.length, 0);
  });

  it('answers If-None-Match with 304', async () => {
    const etag = `"${artifact.checksum}"`;
    for (const inm of [etag, `W/${etag}`, `"sha256:${'0'.repeat(64)}", ${etag}`, '*']) {
      const res = await raw(srv.url, `/${artifact.key}`, { headers: { 'If-None-Match': inm } });
      assert.equal(res.status, 304, inm);
      assert.equal(res.headers['etag'], etag);
      assert.equal(res.body.length, 0);
    }
    const miss = await raw(srv.url, `/${artifact.key}`, { headers: { 'If-None-Match': `"sha256:${'0'.repeat(64)}"` } });
    assert.equal(miss.status, 200);
    assert.equal(sha256(miss.body), artifact.checksum);
  });

  it('serves single byte ranges with 206 and rejects unsatisfiable ones with 416', async () => {
    const full = (await raw(srv.url, `/${artifact.key}`)).body;
    const size = full.length;
    const cases: Array<[string, number, number]> = [
      ['bytes=0-9', 0, 9],
      ['bytes=10-', 10, size - 1],
      ['bytes=-20', size - 20, size - 1],
      [`bytes=5-${size + 1000}`, 5, size - 1],
    ];
    for (const [header, start, end] of cases) {
      const res = await raw(srv.url, `/${artifact.key}`, { headers: { Range: header } });
      assert.equal(res.status, 206, header);
      assert.equal(res.headers['content-range'], `bytes ${start}-${end}/${size}`, header);
      assert.equal(res.headers['content-length'], String(end - start + 1), header);
      assert.deepEqual(res.body, full.subarray(start, end + 1), header);
    }

    for (const header of [`bytes=${size}-`, `bytes=${size + 10}-${size + 20}`, 'bytes=-0']) {
      const res = await raw(srv.url, `/${artifact.key}`, { headers: { Range: header } });
      assert.equal(res.status, 416, header);
      assert.equal(res.headers['content-range'], `bytes */${size}`, header);
    }

    // Multi-range, non-byte units and a stale If-Range are ignored: the whole body comes back.
    const ignored: Array<Record<string, string>> = [
      { Range: 'bytes=0-1,5-6' },
      { Range: 'items=0-1' },
      { Range: 'bytes=0-1', 'If-Range': '"sha256:stale"' },
    ];
    for (const headers of ignored) {
      const res = await raw(srv.url, `/${artifact.key}`, { headers });
      assert.equal(res.status, 200, JSON.stringify(headers));
      assert.equal(res.body.length, size);
    }
    const ifRange = await raw(srv.url, `/${artifact.key}`, { headers: { Range: 'bytes=0-1', 'If-Range': `"${artifact.checksum}"` } });
    assert.equal(ifRange.status, 206);
  });

  it('answers 404 for unknown artifacts and other paths', async () => {
    const unknown = [
      `/default/demo/${'0'.repeat(64)}.tar.gz`,
      `/default/other/${artifact.key.split('/')[2]}`,
      '/',
      '/default/demo',
      `/${artifact.key}.sig`,
      `/${artifact.key.toUpperCase()}`,
    ];
    for (const p of unknown) {
      const res = await raw(srv.url, p);
      assert.equal(res.status, 404, p);
    }
    const head = await raw(srv.url, `/default/demo/${'0'.repeat(64)}.tar.gz`, { method: 'HEAD' });
    assert.equal(head.status, 404);
  });

  it('answers 405 to other methods', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const res = await raw(srv.url, `/${artifact.key}`, { method });
      assert.equal(res.status, 405, method);
      assert.equal(res.headers['allow'], 'GET, HEAD');
    }
    assert.equal((await store.verify({ namespace: 'default', name: 'demo' }, artifact.checksum)), true, 'DELETE did nothing');
  });

  it('never serves anything outside the store for traversal attempts', async () => {
    const hex = artifact.key.split('/')[2] as string;
    const attempts = [
      '/../etc/passwd',
      '/%2e%2e/%2e%2e/etc/passwd',
      '/ns/name/..%2f..%2fx.tar.gz',
      '//etc/passwd',
      '/default/demo/../../../secret.tar.gz',
      '/default/demo/..%2f..%2f..%2fsecret.tar.gz',
      '/default/%2e%2e/%2e%2e/secret.tar.gz',
      `/default/demo%2f${hex}`,
      `/default//demo/${hex}`,
      `/default/demo/${hex}%00.tar.gz`,
      `/./default/demo/${hex}`,
      `/default/demo/./${hex}`,
      '/..%5c..%5csecret.tar.gz',
      `/default/demo/${hex}.tar.gz/..`,
      'http://127.0.0.1/../secret.tar.gz',
      '*',
      '/etc/passwd',
    ];
    for (const p of attempts) {
      const res = await raw(srv.url, p);
      assert.ok(res.status === 400 || res.status === 404, `${p} -> ${res.status}`);
      assert.ok(!res.body.includes('root:'), p);
      assert.ok(!res.body.includes('secret'), p);
    }
  });

  it('serves under a path prefix', async () => {
    assert.match(prefixed.url, /\/artifacts$/);
    const res = await raw(prefixed.url, `/artifacts/${artifact.key}`);
    assert.equal(res.status, 200);
    assert.equal(sha256(res.body), artifact.checksum);
    const viaFetch = await fetch(`${prefixed.url}/${artifact.key}`);
    assert.equal(viaFetch.status, 200);
    await viaFetch.arrayBuffer();

    for (const p of [`/${artifact.key}`, `/artifactsx/${artifact.key}`, `/artifacts/../${artifact.key}`, `/artifacts//${artifact.key}`]) {
      assert.equal((await raw(prefixed.url, p)).status, 404, p);
    }
    assert.equal((await raw(prefixed.url, '/healthz')).status, 200);
  });

  it('stops serving an artifact once it is pruned', async () => {
    const res = await raw(srv.url, `/${artifact.key}`);
    assert.equal(res.status, 200);
    const src = { namespace: 'default', name: 'demo' };
    // Prune with another "current": the served artifact goes, and the server says so.
    await store.prune(src, 0, `sha256:${'f'.repeat(64)}`);
    assert.equal((await raw(srv.url, `/${artifact.key}`)).status, 404);
  });
});
