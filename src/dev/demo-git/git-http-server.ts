/**
 * A real git smart-HTTP server for the offline `dev` demo (and the tests).
 *
 * A small node:http server that runs git's own `git http-backend` CGI for
 * every request, so clients talk to the real upload-pack/receive-pack
 * (protocol v0, v1 and v2, gzip request bodies, pushes). It counts requests
 * per repository (advertisements, ls-refs, fetches, pushes) from the real
 * traffic and can require HTTP basic auth. Two protected hooks (accept,
 * intercept) let a subclass drop connections or answer requests itself: the
 * tests' fault injection (test/helpers/faulty-git-server.ts).
 *
 * Only meant for 127.0.0.1: there is no TLS and no rate limiting.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { gunzipSync } from 'node:zlib';

export interface GitHttpServerOptions {
  /** Directory holding the bare repositories (GIT_PROJECT_ROOT). */
  root: string;
  /** Interface to listen on; default 127.0.0.1. */
  host?: string;
  /** Port to listen on; default 0 (a free port). */
  port?: number;
  /** When set, every request must carry these credentials (HTTP basic auth). */
  basicAuth?: { username: string; password: string };
  /** URL path prefix the repositories are served under, e.g. `/git`. */
  pathPrefix?: string;
  /** Speak only protocol v0, as old servers do (the client's Git-Protocol header is not passed on). */
  protocolV0Only?: boolean;
}

export interface GitRepoStats {
  /** GET …/info/refs (ref advertisement / v2 capability advertisement). */
  advertisements: number;
  /** Protocol v2 `command=ls-refs` requests. */
  lsRefs: number;
  /** Protocol v2 `command=fetch` requests, or any v0/v1 upload-pack POST. */
  fetches: number;
  /** receive-pack POSTs. */
  pushes: number;
}

type Service = 'git-upload-pack' | 'git-receive-pack';

interface RequestInfo {
  /** Repository name relative to the root, without a trailing `.git`. */
  repo: string | undefined;
  kind: 'info-refs' | 'rpc' | 'other';
  service: Service | undefined;
}

const RPC_RE = /^\/(.+?)\/(git-upload-pack|git-receive-pack)$/;
const INFO_REFS_RE = /^\/(.+?)\/info\/refs$/;
const OTHER_RE = /^\/(.+?\.git)\/(?:HEAD|objects\/.*|info\/.*)$/;

/** Normalizes a repository name: no leading/trailing slashes, no `.git` suffix. */
function repoKey(name: string): string {
  return name.replace(/^\/+|\/+$/g, '').replace(/\.git$/, '');
}

function zeroStats(): GitRepoStats {
  return { advertisements: 0, lsRefs: 0, fetches: 0, pushes: 0 };
}

/**
 * Reads the protocol v2 command from an upload-pack request body, i.e. the
 * first pkt-line `command=<name>`. Returns undefined for v0/v1 bodies (which
 * start with `want …`) or unparsable data.
 */
export function v2Command(body: Buffer): string | undefined {
  let pos = 0;
  // Only the first few pkt-lines are interesting: the command comes first.
  for (let n = 0; n < 4 && pos + 4 <= body.length; n++) {
    const lenHex = body.toString('latin1', pos, pos + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(lenHex)) return undefined;
    const len = parseInt(lenHex, 16);
    if (len < 4) return undefined; // flush/delim/response-end: no command before it
    const line = body.toString('utf8', pos + 4, Math.min(pos + len, body.length)).replace(/\n$/, '');
    const m = /^command=(.+)$/.exec(line);
    if (m) return m[1];
    pos += len;
  }
  return undefined;
}

function parseRequestPath(pathname: string): RequestInfo {
  let m = RPC_RE.exec(pathname);
  if (m) return { repo: repoKey(m[1] ?? ''), kind: 'rpc', service: m[2] as Service };
  m = INFO_REFS_RE.exec(pathname);
  if (m) return { repo: repoKey(m[1] ?? ''), kind: 'info-refs', service: undefined };
  m = OTHER_RE.exec(pathname);
  if (m) return { repo: repoKey(m[1] ?? ''), kind: 'other', service: undefined };
  return { repo: undefined, kind: 'other', service: undefined };
}

function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

/** Environment for the CGI: ours, minus variables that would point git elsewhere. */
function baseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) {
    if (
      k.startsWith('HTTP_') ||
      ['GIT_DIR', 'GIT_WORK_TREE', 'GIT_INDEX_FILE', 'GIT_OBJECT_DIRECTORY', 'GIT_NAMESPACE', 'GIT_PROTOCOL'].includes(k)
    ) {
      delete env[k];
    }
  }
  // Allow pushes over HTTP even without REMOTE_USER: appended to any config
  // the environment already carries.
  const count = Number.parseInt(env.GIT_CONFIG_COUNT ?? '0', 10) || 0;
  env[`GIT_CONFIG_KEY_${count}`] = 'http.receivepack';
  env[`GIT_CONFIG_VALUE_${count}`] = 'true';
  env.GIT_CONFIG_COUNT = String(count + 1);
  return env;
}

export class GitHttpServer {
  readonly url: string;
  private readonly stat = new Map<string, GitRepoStats>();
  private readonly sockets = new Set<Socket>();
  private readonly prefix: string;
  private readonly env: NodeJS.ProcessEnv;

  protected constructor(
    private readonly opts: GitHttpServerOptions,
    private readonly server: http.Server,
  ) {
    const addr = server.address() as AddressInfo;
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    this.url = `http://${host}:${addr.port}`;
    this.prefix = (opts.pathPrefix ?? '').replace(/\/+$/, '').replace(/^(?=[^/])/, '/');
    this.env = baseEnv();
  }

  static async start(opts: GitHttpServerOptions): Promise<GitHttpServer> {
    return GitHttpServer.listen(opts, (server) => new GitHttpServer(opts, server));
  }

  /** Listens, then builds the instance with `make` (a subclass's start passes its own constructor). */
  protected static async listen<T extends GitHttpServer>(opts: GitHttpServerOptions, make: (server: http.Server) => T): Promise<T> {
    const server = http.createServer();
    server.keepAliveTimeout = 5_000;
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1');
    await once(server, 'listening');
    const self = make(server);
    server.on('connection', (socket: Socket) => {
      if (!self.accept(socket)) {
        socket.destroy();
        return;
      }
      self.sockets.add(socket);
      socket.on('close', () => self.sockets.delete(socket));
    });
    server.on('request', (req, res) => {
      self.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) {
          res.writeHead(500, { 'Content-Type': 'text/plain' });
          res.end(`internal error: ${String(err)}\n`);
        } else {
          res.destroy();
        }
      });
    });
    return self;
  }

  /** Clone URL of a repository; `name` may be given with or without `.git`. */
  repoUrl(name: string, opts?: { withCredentials?: boolean }): string {
    const path = `${this.prefix}/${repoKey(name)}.git`;
    if (opts?.withCredentials && this.opts.basicAuth) {
      const u = new URL(this.url + path);
      u.username = encodeURIComponent(this.opts.basicAuth.username);
      u.password = encodeURIComponent(this.opts.basicAuth.password);
      return u.toString();
    }
    return this.url + path;
  }

  /** Request counts for a repository since start or the last resetStats(). */
  stats(repo: string): GitRepoStats {
    return { ...(this.stat.get(repoKey(repo)) ?? zeroStats()) };
  }

  resetStats(): void {
    this.stat.clear();
  }

  async close(): Promise<void> {
    this.dropConnections();
    await new Promise<void>((resolve, reject) =>
      this.server.close((err) => (err ? reject(err) : resolve())),
    );
  }

  /** Destroys every open connection (kept-alive ones included). */
  protected dropConnections(): void {
    for (const s of this.sockets) s.destroy();
  }

  /** Hook: false destroys a new connection at once. */
  protected accept(_socket: Socket): boolean {
    return true;
  }

  /**
   * Hook, before authentication and counting: true when the request has been
   * answered (or dropped) here; false serves it normally.
   */
  protected async intercept(_req: http.IncomingMessage, _res: http.ServerResponse): Promise<boolean> {
    return false;
  }

  private bump(repo: string | undefined, key: keyof GitRepoStats): void {
    if (repo === undefined) return;
    let s = this.stat.get(repo);
    if (!s) {
      s = zeroStats();
      this.stat.set(repo, s);
    }
    s[key]++;
  }

  private authorized(req: http.IncomingMessage): boolean {
    const want = this.opts.basicAuth;
    if (!want) return true;
    const h = req.headers.authorization;
    if (!h) return false;
    const m = /^Basic\s+(\S+)$/i.exec(h);
    if (!m) return false;
    const decoded = Buffer.from(m[1] ?? '', 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i < 0) return false;
    // Both compared, so timing does not tell which one was wrong.
    const userOk = safeEqual(decoded.slice(0, i), want.username);
    const passOk = safeEqual(decoded.slice(i + 1), want.password);
    return userOk && passOk;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (await this.intercept(req, res)) return;

    if (!this.authorized(req)) {
      req.resume();
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="git"', 'Content-Type': 'text/plain' });
      res.end('authentication required\n');
      return;
    }

    const reqUrl = new URL(req.url ?? '/', 'http://localhost');
    let pathname: string;
    try {
      pathname = decodeURIComponent(reqUrl.pathname);
    } catch {
      res.writeHead(400, { 'Content-Type': 'text/plain' }).end('bad path\n');
      return;
    }
    if (this.prefix) {
      if (pathname !== this.prefix && !pathname.startsWith(this.prefix + '/')) {
        req.resume();
        res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
        return;
      }
      pathname = pathname.slice(this.prefix.length) || '/';
    }
    if (pathname.split('/').includes('..')) {
      req.resume();
      res.writeHead(400, { 'Content-Type': 'text/plain' }).end('bad path\n');
      return;
    }

    const method = req.method ?? 'GET';
    const body = method === 'POST' || method === 'PUT' ? await readBody(req) : Buffer.alloc(0);
    if (method !== 'POST' && method !== 'PUT') req.resume();

    const info = parseRequestPath(pathname);
    if (info.kind === 'info-refs' && (method === 'GET' || method === 'HEAD')) {
      this.bump(info.repo, 'advertisements');
    } else if (info.kind === 'rpc' && method === 'POST' && !isProbe(body)) {
      if (info.service === 'git-receive-pack') {
        this.bump(info.repo, 'pushes');
      } else {
        let plain = body;
        if (/gzip/i.test(String(req.headers['content-encoding'] ?? ''))) {
          try {
            plain = gunzipSync(body);
          } catch {
            plain = Buffer.alloc(0);
          }
        }
        const cmd = v2Command(plain);
        if (cmd === 'ls-refs') this.bump(info.repo, 'lsRefs');
        else if (cmd === 'fetch' || cmd === undefined) this.bump(info.repo, 'fetches');
        // other v2 commands (object-info, bundle-uri) are not counted
      }
    }

    await this.runBackend(req, res, pathname, reqUrl.search.replace(/^\?/, ''), body);
  }

  private async runBackend(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    pathInfo: string,
    query: string,
    body: Buffer,
  ): Promise<void> {
    const env: NodeJS.ProcessEnv = {
      ...this.env,
      GIT_PROJECT_ROOT: this.opts.root,
      GIT_HTTP_EXPORT_ALL: '1',
      GATEWAY_INTERFACE: 'CGI/1.1',
      SERVER_PROTOCOL: `HTTP/${req.httpVersion}`,
      SERVER_SOFTWARE: 'arena-source-devgit',
      REQUEST_METHOD: req.method ?? 'GET',
      PATH_INFO: pathInfo,
      QUERY_STRING: query,
      REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
    };
    if (this.opts.basicAuth) {
      env.REMOTE_USER = this.opts.basicAuth.username;
      env.AUTH_TYPE = 'Basic';
    }
    const ct = req.headers['content-type'];
    if (ct) env.CONTENT_TYPE = ct;
    if (req.method === 'POST' || req.method === 'PUT') env.CONTENT_LENGTH = String(body.length);
    // Pass the request headers through as CGI HTTP_* variables; this carries
    // Content-Encoding (http-backend gunzips bodies itself) and Git-Protocol.
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined || name === 'authorization' || name === 'proxy-authorization') continue;
      if (name === 'git-protocol' && this.opts.protocolV0Only) continue;
      const key = 'HTTP_' + name.toUpperCase().replace(/-/g, '_');
      env[key] = Array.isArray(value) ? value.join(', ') : value;
    }
    const proto = req.headers['git-protocol'];
    if (typeof proto === 'string' && proto && !this.opts.protocolV0Only) env.GIT_PROTOCOL = proto;

    const child = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      if (stderr.length < 8192) stderr += d;
    });
    child.stdin.on('error', () => {
      /* backend may exit before reading everything (e.g. on errors) */
    });
    child.stdin.end(body);

    const closed = once(child, 'close').catch(() => undefined);
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));

    const onClientGone = (): void => {
      if (!res.writableFinished) child.kill('SIGKILL');
    };
    res.on('close', onClientGone);

    let head = Buffer.alloc(0);
    let headersDone = false;

    const writeBody = (chunk: Buffer): void => {
      if (chunk.length === 0) return;
      if (!res.write(chunk)) {
        child.stdout.pause();
        res.once('drain', () => child.stdout.resume());
      }
    };

    child.stdout.on('data', (chunk: Buffer) => {
      if (headersDone) {
        writeBody(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const parsed = parseCgiHead(head);
      if (!parsed) {
        if (head.length > 64 * 1024) {
          child.kill('SIGKILL');
          if (!res.headersSent) res.writeHead(502, { 'Content-Type': 'text/plain' }).end('bad CGI response\n');
        }
        return;
      }
      headersDone = true;
      res.writeHead(parsed.status, parsed.statusText, parsed.headers);
      writeBody(head.subarray(parsed.bodyOffset));
    });

    const result = await Promise.race([closed.then(() => null), spawnError]);
    res.off('close', onClientGone);
    if (result instanceof Error) {
      if (!res.headersSent) {
        res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`cannot run git http-backend: ${result.message}\n`);
      }
      return;
    }
    if (res.destroyed) return;
    if (!headersDone) {
      res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end(`git http-backend failed: ${stderr.trim() || `exit ${child.exitCode ?? child.signalCode}`}\n`);
      return;
    }
    res.end();
  }
}

/**
 * git sends a lone flush packet ("0000") before a large chunked request, to
 * see whether auth is needed; it is no fetch or push of its own.
 */
function isProbe(body: Buffer): boolean {
  return body.length === 4 && body.toString('latin1') === '0000';
}

async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

interface CgiHead {
  status: number;
  statusText: string | undefined;
  headers: Record<string, string | string[]>;
  bodyOffset: number;
}

/** Parses the CGI header block (ends at an empty line, LF or CRLF). */
function parseCgiHead(buf: Buffer): CgiHead | undefined {
  let end = -1;
  let sepLen = 0;
  for (let i = 0; i < buf.length; i++) {
    if (buf[i] !== 0x0a) continue;
    if (buf[i + 1] === 0x0a) {
      end = i;
      sepLen = 2;
      break;
    }
    if (buf[i + 1] === 0x0d && buf[i + 2] === 0x0a) {
      end = i;
      sepLen = 3;
      break;
    }
  }
  if (end < 0) return undefined;
  const text = buf.toString('latin1', 0, end);
  let status = 200;
  let statusText: string | undefined;
  const headers: Record<string, string | string[]> = {};
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (!line) continue;
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const name = line.slice(0, i).trim();
    const value = line.slice(i + 1).trim();
    if (name.toLowerCase() === 'status') {
      const m = /^(\d{3})\s*(.*)$/.exec(value);
      if (m) {
        status = Number(m[1]);
        statusText = m[2] || undefined;
      }
      continue;
    }
    const prev = headers[name];
    headers[name] = prev === undefined ? value : [...(Array.isArray(prev) ? prev : [prev]), value];
  }
  return { status, statusText, headers, bodyOffset: end + sepLen };
}
