/**
 * Serves stored artifacts over plain HTTP, the way a Flux source-controller
 * does: GET|HEAD {prefix}/{namespace}/{name}/{hex}.tar.gz, plus /healthz.
 *
 * The URL is matched as raw bytes against that one shape and never decoded
 * or normalised: valid names need no escaping, so "%2e", "%2f", "..", "//"
 * and friends simply do not match and are answered 404/400 before the store
 * is asked anything.
 */

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';

import { parseArtifactKey, type ArtifactStore } from '../store/artifact-store.js';
import { artifactRequests, registry } from '../observability/metrics.js';

export interface ArtifactServerOptions {
  /** Path prefix the artifacts are served under, e.g. "/artifacts". Default: none. */
  prefix?: string;
  /** Called for unexpected errors (store failures); default: console.error. */
  onError?: (err: unknown, req: http.IncomingMessage) => void;
  /**
   * Answer GET with a 302 to a short-lived URL of the store itself (an S3
   * presigned GET) instead of streaming the bytes through this server; HEAD,
   * 304 and 404 are still answered here, and status.artifact.url stays this
   * server's URL. Needs a store with `presign`. `true` means 300 s. Default off.
   */
  redirectPresigned?: boolean | { expiresInSeconds?: number };
  /** Answers every request under /hooks/ (the push webhook receiver, src/webhooks/receiver.ts). */
  webhooks?: (req: http.IncomingMessage, res: http.ServerResponse) => void;
}

export interface StartArtifactServerOptions extends ArtifactServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
}

export interface RunningArtifactServer {
  server: http.Server;
  /** Base URL, including the prefix, without a trailing slash: `${url}/${key}` fetches a key. */
  url: string;
  close(): Promise<void>;
}

// Content-addressed: the bytes behind a URL can never change.
const CACHE_CONTROL = 'public, max-age=31536000, immutable';
const ARTIFACT_PATH = /^\/([a-z0-9-]+)\/([a-z0-9.-]+)\/([0-9a-f]{64})\.tar\.gz$/;
const PREFIX = /^(\/[A-Za-z0-9._~-]+)+$/;

export function createArtifactServer(store: ArtifactStore, opts: ArtifactServerOptions = {}): http.Server {
  const prefix = normalisePrefix(opts.prefix);
  const onError = opts.onError ?? ((err: unknown) => console.error('artifact server:', err));
  const redirectSeconds = presignSeconds(opts.redirectPresigned);
  if (redirectSeconds !== null && typeof store.presign !== 'function') {
    throw new Error('artifact server: redirectPresigned needs a store that can presign URLs (the S3 store)');
  }

  return http.createServer((req, res) => {
    if (opts.webhooks && req.url?.startsWith('/hooks/')) return opts.webhooks(req, res);
    res.on('finish', () => artifactRequests.inc({ method: req.method ?? '', code: String(res.statusCode) }));
    if (req.url === '/metrics' && req.method === 'GET') {
      registry
        .metrics()
        .then((text) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(text))
        .catch(() => send(res, 500, 'internal error\n'));
      return;
    }
    handle(store, prefix, redirectSeconds, req, res).catch((err: unknown) => {
      onError(err, req);
      if (!res.headersSent) {
        send(res, 500, 'internal error\n');
      } else {
        res.destroy(); // the body is incomplete; make that visible to the client
      }
    });
  });
}

export async function startArtifactServer(
  store: ArtifactStore,
  opts: StartArtifactServerOptions = {},
): Promise<RunningArtifactServer> {
  const { host = '127.0.0.1', port = 0, ...serverOpts } = opts;
  const server = createArtifactServer(store, serverOpts);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const hostPart = addr.family === 'IPv6' || addr.address.includes(':') ? `[${addr.address}]` : addr.address;
  const url = `http://${hostPart}:${addr.port}${normalisePrefix(opts.prefix)}`;
  return {
    server,
    url,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Idle keep-alive connections would otherwise hold close() open.
        server.closeAllConnections();
      }),
  };
}

function normalisePrefix(prefix: string | undefined): string {
  if (prefix === undefined || prefix === '' || prefix === '/') return '';
  const p = prefix.replace(/\/+$/, '');
  if (!PREFIX.test(p) || p.split('/').some((seg) => seg === '.' || seg === '..')) {
    throw new Error(`artifact server prefix "${prefix}" must look like "/artifacts"`);
  }
  return p;
}

async function handle(
  store: ArtifactStore,
  prefix: string,
  redirectSeconds: number | null,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<void> {
  const method = req.method ?? '';
  if (method !== 'GET' && method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    return send(res, 405, 'method not allowed\n');
  }

  const rawUrl = req.url ?? '';
  // Origin-form only ("/..."); absolute-form ("http://x/...") and "*" are not ours.
  if (!rawUrl.startsWith('/')) return send(res, 400, 'bad request\n');
  const q = rawUrl.indexOf('?');
  const urlPath = q === -1 ? rawUrl : rawUrl.slice(0, q);

  if (urlPath === '/healthz') return send(res, 200, 'ok\n');

  if (prefix !== '' && !urlPath.startsWith(`${prefix}/`)) return send(res, 404, 'not found\n');
  const m = ARTIFACT_PATH.exec(urlPath.slice(prefix.length));
  const key = m ? `${m[1]}/${m[2]}/${m[3]}.tar.gz` : null;
  // Also apply the store's own key rules (DNS-1123), so e.g. "a..b" never reaches it.
  if (key === null || parseArtifactKey(key) === null) return send(res, 404, 'not found\n');
  const hex = m?.[3] as string;

  const info = await store.stat(key);
  if (info === null) return send(res, 404, 'not found\n');

  const etag = `"sha256:${hex}"`;
  res.setHeader('ETag', etag);
  res.setHeader('Cache-Control', CACHE_CONTROL);
  res.setHeader('Accept-Ranges', 'bytes');

  if (etagMatches(req.headers['if-none-match'], etag)) {
    res.statusCode = 304;
    res.end();
    return;
  }

  if (method === 'GET' && redirectSeconds !== null && store.presign) {
    const location = await store.presign(key, redirectSeconds);
    if (location !== null) {
      // The target expires: the redirect itself must not be cached. A Range header
      // is re-sent by the client to the target, which answers it.
      res.removeHeader('Accept-Ranges');
      res.writeHead(302, { Location: location, 'Cache-Control': 'no-store', 'Content-Length': 0 });
      res.end();
      return;
    }
  }

  let range: { start: number; end: number } | null = null;
  const rangeHeader = req.headers.range;
  if (method === 'GET' && rangeHeader !== undefined && ifRangeAllows(req.headers['if-range'], etag)) {
    const parsed = parseRange(rangeHeader, info.size);
    if (parsed === 'unsatisfiable') {
      res.setHeader('Content-Range', `bytes */${info.size}`);
      return send(res, 416, 'range not satisfiable\n');
    }
    range = parsed; // null: malformed or multi-range, which HTTP lets us ignore
  }

  if (method === 'HEAD') {
    res.writeHead(200, { 'Content-Type': 'application/gzip', 'Content-Length': info.size });
    res.end();
    return;
  }

  const opened = await store.open(key, range ?? undefined);
  if (opened === null) return send(res, 404, 'not found\n'); // pruned since stat
  if (range !== null) {
    res.writeHead(206, {
      'Content-Type': 'application/gzip',
      'Content-Length': range.end - range.start + 1,
      'Content-Range': `bytes ${range.start}-${range.end}/${opened.size}`,
    });
  } else {
    res.writeHead(200, { 'Content-Type': 'application/gzip', 'Content-Length': opened.size });
  }
  try {
    await pipeline(opened.stream, res);
  } catch (err) {
    // A client that hangs up mid-download is normal, not a server error.
    if (req.destroyed || res.destroyed) return;
    throw err;
  }
}

function presignSeconds(opt: ArtifactServerOptions['redirectPresigned']): number | null {
  if (opt === undefined || opt === false) return null;
  const seconds = opt === true ? 300 : (opt.expiresInSeconds ?? 300);
  if (!Number.isFinite(seconds) || seconds < 1 || seconds > 7 * 24 * 3600) {
    throw new Error(`artifact server: presigned URL lifetime ${seconds}s must be between 1 s and 7 days`);
  }
  return Math.floor(seconds);
}

function send(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(body);
}

/** If-None-Match uses weak comparison (RFC 9110 §13.1.2): W/ prefixes are ignored. */
function etagMatches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((raw) => {
    const tag = raw.trim();
    return tag === '*' || tag.replace(/^W\//, '') === etag;
  });
}

/** If-Range needs a strong match; a date or a different tag means "send it all". */
function ifRangeAllows(header: string | string[] | undefined, etag: string): boolean {
  return header === undefined || (typeof header === 'string' && header.trim() === etag);
}

/**
 * Parses a single "bytes=" range against `size`. Returns null when the header
 * should be ignored (not bytes, malformed, or several ranges) and
 * 'unsatisfiable' when it is valid but selects nothing.
 */
function parseRange(header: string, size: number): { start: number; end: number } | 'unsatisfiable' | null {
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m) return null;
  const [, first = '', last = ''] = m;
  if (first === '' && last === '') return null;
  if (first === '') {
    // Suffix range: the last N bytes.
    const n = Number(last);
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (last !== '' && Number(last) < start) return null; // invalid per RFC 9110 §14.1.1: ignore
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}
