/**
 * Real TLS in front of the tests' Temporal dev server: a throwaway CA and
 * certificates made by openssl, Debian's HAProxy terminating (m)TLS for gRPC
 * (plain TCP relay, so the handshake the client sees is HAProxy's), and nginx
 * with grpc_pass that lets a call through only with the right
 * `authorization: Bearer <key>` header (401 otherwise, which gRPC clients read
 * as UNAUTHENTICATED). scripts/ensure-tools.sh installs both from apt.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from './free-port.js';
import { findTool } from './manifests.js';
import { issueCert, makeCa as makeTestCa, type TestCa } from './certs.js';

type Tool = 'haproxy' | 'nginx' | 'openssl';

/** The tool on PATH, else in /usr/sbin (nginx lives there, and a non-root PATH may lack it). */
function which(tool: Tool): string | undefined {
  const sbin = `/usr/sbin/${tool}`;
  try {
    return findTool(tool) ?? (accessSync(sbin, constants.X_OK), sbin);
  } catch {
    return undefined;
  }
}

/** For `describe(…, { skip })`: names the missing tools, except under CI (CI=true), where they must be installed. */
export function tlsToolsSkipReason(...tools: Tool[]): string | false {
  const missing = tools.filter((t) => !which(t));
  if (missing.length === 0 || process.env.CI === 'true') return false;
  return `${missing.join(', ')} not installed: run \`bash scripts/ensure-tools.sh test\``;
}

export interface Ca {
  cert: string;
  key: string;
  dir: string;
  /** The same CA as certs.ts makes it (one way to make test certificates). */
  made: TestCa;
}

export interface Issued {
  cert: string;
  key: string;
}

/** A self-signed CA in `dir/<name>` (certs.ts), with paths named as HAProxy and Temporal's settings take them. */
export async function makeCa(dir: string, name: string): Promise<Ca> {
  const d = join(dir, name);
  await mkdir(d, { recursive: true });
  const made = await makeTestCa(d, name);
  return { cert: made.certFile, key: made.keyFile, dir: d, made };
}

/** A certificate signed by `ca`: a server one (with `dnsNames` and 127.0.0.1) or a client one. */
export async function issue(ca: Ca, name: string, kind: 'server' | 'client', dnsNames: string[] = []): Promise<Issued> {
  const use = kind === 'server' ? { server: { ips: ['127.0.0.1'], dns: dnsNames } } : ({ client: true } as const);
  const issued = await issueCert(ca.made, ca.dir, name, use);
  return { cert: issued.certFile, key: issued.keyFile };
}

export interface Proxy {
  /** host:port clients dial. */
  address: string;
  port: number;
  output(): string;
  stop(): Promise<void>;
}

function supervise(child: ChildProcess, what: string): { output(): string; exited: Promise<void> } {
  let out = '';
  child.stdout?.on('data', (d) => (out = (out + d).slice(-50_000)));
  child.stderr?.on('data', (d) => (out = (out + d).slice(-50_000)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.once('error', (err) => (out += `\n${what}: ${err.message}`));
  return { output: () => out, exited };
}

async function waitListening(port: number, proc: { output(): string }, child: ChildProcess): Promise<void> {
  const { connect } = await import('node:net');
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`exited (${child.exitCode}): ${proc.output()}`);
    const ok = await new Promise<boolean>((r) => {
      const s = connect(port, '127.0.0.1', () => (s.destroy(), r(true)));
      s.once('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`not listening on ${port} after 10s: ${proc.output()}`);
}

/** Starts `tool` (found on PATH or in /usr/sbin), returns once it listens on `port`; `stop` sends `stopSignal`. */
async function startProxyProcess(tool: Tool, args: string[], port: number, stopSignal: NodeJS.Signals): Promise<Proxy> {
  const child = spawn(which(tool) ?? tool, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const proc = supervise(child, tool);
  await waitListening(port, proc, child);
  return {
    address: `127.0.0.1:${port}`,
    port,
    output: proc.output,
    stop: async () => {
      if (child.exitCode === null) child.kill(stopSignal);
      await proc.exited;
    },
  };
}

export interface MtlsProxyOptions {
  /** host:port of the plain gRPC server behind it. */
  target: string;
  server: Issued;
  /** CA file client certificates must chain to (required); unset: no client certificate asked for. */
  clientCa?: string;
  /** Listen on this port (to restart in place); default a free one. */
  port?: number;
  dir: string;
}

/**
 * HAProxy in TCP mode: TLS (ALPN h2) on `port`, plain TCP to `target`. A missing or
 * untrusted client certificate fails the handshake with a TLS alert, as Temporal
 * Cloud's does. (stunnel4 cannot stand in: it does not negotiate ALPN, and the
 * worker's gRPC stack (tonic) refuses a TLS connection without h2 negotiated.)
 */
export async function startMtlsProxy(opts: MtlsProxyOptions): Promise<Proxy> {
  const port = opts.port ?? (await freePort());
  await mkdir(opts.dir, { recursive: true });
  const pem = join(opts.dir, `haproxy-${port}.pem`);
  await writeFile(pem, (await readFile(opts.server.cert, 'utf8')) + (await readFile(opts.server.key, 'utf8')), { mode: 0o600 });
  const conf = join(opts.dir, `haproxy-${port}.cfg`);
  const verify = opts.clientCa ? ` ca-file ${opts.clientCa} verify required` : '';
  await writeFile(
    conf,
    `global
  maxconn 256
defaults
  mode tcp
  timeout connect 5s
  timeout client 1h
  timeout server 1h
frontend temporal
  bind 127.0.0.1:${port} ssl crt ${pem} alpn h2${verify}
  default_backend temporal
backend temporal
  server dev ${opts.target}
`,
  );
  return startProxyProcess('haproxy', ['-db', '-f', conf], port, 'SIGTERM');
}

export interface NginxOptions {
  target: string;
  server: Issued;
  /** The one key let through. */
  apiKey: string;
  /** Listen on this port (to restart in place with another key); default a free one. */
  port?: number;
  dir: string;
}

/** nginx with grpc_pass: TLS + HTTP/2 on `port`, 401 unless `authorization: Bearer <apiKey>`. */
export async function startNginxApiKeyProxy(opts: NginxOptions): Promise<Proxy> {
  const port = opts.port ?? (await freePort());
  const prefix = join(opts.dir, `nginx-${port}`);
  await mkdir(join(prefix, 'tmp'), { recursive: true });
  const conf = join(prefix, 'nginx.conf');
  await writeFile(
    conf,
    `daemon off;
master_process off;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log stderr notice;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${prefix}/tmp/body;
  proxy_temp_path ${prefix}/tmp/proxy;
  fastcgi_temp_path ${prefix}/tmp/fastcgi;
  uwsgi_temp_path ${prefix}/tmp/uwsgi;
  scgi_temp_path ${prefix}/tmp/scgi;
  server {
    listen 127.0.0.1:${port} ssl http2;
    ssl_certificate ${opts.server.cert};
    ssl_certificate_key ${opts.server.key};
    location / {
      if ($http_authorization != "Bearer ${opts.apiKey}") { return 401; }
      grpc_pass grpc://${opts.target};
    }
  }
}
`,
  );
  // SIGQUIT: nginx's graceful stop.
  return startProxyProcess('nginx', ['-p', prefix, '-c', conf], port, 'SIGQUIT');
}
