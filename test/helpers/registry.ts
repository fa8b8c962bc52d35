/**
 * Real OCI registries for tests: Debian's `docker-registry` (CNCF distribution
 * 2.8) as a child process on 127.0.0.1 (a free port), with a generated config:
 *   - `tls` + `auth`: HTTPS with a certificate signed by a throwaway CA that the
 *     test generates with the openssl CLI, and htpasswd (bcrypt) basic auth;
 *   - neither: anonymous plain HTTP (for `insecure` sources).
 * Its access log (combined format) is parsed so tests can count requests.
 *
 * Needs: docker-registry (or $DOCKER_REGISTRY_PATH), htpasswd (apache2-utils),
 * openssl — `.ci/run` installs them — and oras for pushing (see src/oci/oras.ts).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';
import { withOras, type OrasTarget, type RegistryAuth } from '../../src/oci/oras.js';
import { freePort } from './free-port.js';
export { freePort };

const run = promisify(execFile);

export interface RegistryRequest {
  method: string;
  path: string;
  status: number;
  userAgent: string;
}

export interface TestRegistry {
  /** 127.0.0.1:<port> */
  host: string;
  tls: boolean;
  /** PEM of the CA that signed the server certificate (TLS registries only). */
  caFile?: string;
  auth?: { username: string; password: string };
  dir: string;
  /** oci://host/repository:tag, or @digest when `ref` starts with sha256:. */
  url(repository: string, ref?: string): string;
  /** Requests seen so far, from the access log. */
  requests(): RegistryRequest[];
  /** The registry's own log output (for failure messages). */
  output(): string;
  close(): Promise<void>;
}

export interface RegistryOptions {
  tls?: boolean;
  auth?: { username: string; password: string };
  /** Address to listen on (default 127.0.0.1), e.g. the host end of a test node's veth pair. */
  address?: string;
  /** A notification endpoint (distribution's `notifications:`): every event is POSTed there with these headers. */
  notify?: { url: string; headers?: Record<string, string> };
  /** TLS only: more DNS names for the server certificate (names a proxy resolves). */
  dnsNames?: string[];
  /** TLS only: require client certificates signed by this CA (PEM file): mutual TLS. */
  clientCaFile?: string;
}

export function registryBinary(): string {
  return process.env.DOCKER_REGISTRY_PATH || 'docker-registry';
}

/** Checks the tools exist, with a message that says how to get them. */
export async function requireRegistryTools(): Promise<void> {
  const missing: string[] = [];
  for (const [cmd, args, pkg] of [
    [registryBinary(), ['--version'], 'docker-registry'],
    ['htpasswd', ['-h'], 'apache2-utils'],
    ['openssl', ['version'], 'openssl'],
  ] as const) {
    try {
      await run(cmd, [...args], { timeout: 10_000 });
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { code?: unknown };
      // htpasswd -h exits non-zero; only "not found" matters.
      if (e.code === 'ENOENT') missing.push(`${cmd} (apt-get install -y ${pkg})`);
    }
  }
  if (missing.length > 0) throw new Error(`OCI tests need: ${missing.join(', ')}; .ci/run installs them`);
}

export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'arena-registry-'));
  const tls = opts.tls ?? false;
  const address = opts.address ?? '127.0.0.1';
  let certFile: string | undefined;
  let keyFile: string | undefined;
  let caFile: string | undefined;
  if (tls) ({ certFile, keyFile, caFile } = await makeCertificates(dir, address, opts.dnsNames ?? []));
  let htpasswdFile: string | undefined;
  if (opts.auth) {
    htpasswdFile = join(dir, 'htpasswd');
    const { stdout } = await run('htpasswd', ['-Bbn', opts.auth.username, opts.auth.password]);
    await writeFile(htpasswdFile, stdout.trim() + '\n', { mode: 0o600 });
  }
  await mkdir(join(dir, 'data'));

  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const configFile = join(dir, 'config.yml');
    await writeFile(
      configFile,
      registryConfig({ dir, address, port, certFile, keyFile, htpasswdFile, notify: opts.notify, ...(opts.clientCaFile ? { clientCaFile: opts.clientCaFile } : {}) }),
    );
    const child = spawn(registryBinary(), ['serve', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let partial = '';
    const keep = (d: Buffer) => {
      const text = partial + d.toString('utf8');
      const parts = text.split('\n');
      partial = parts.pop() ?? '';
      lines.push(...parts);
      if (lines.length > 50_000) lines.splice(0, lines.length - 50_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let exited = false;
    child.on('exit', () => {
      exited = true;
    });
    child.on('error', (err) => {
      exited = true;
      lines.push(`spawn error: ${err.message}`);
    });
    const ready = await waitListening(address, port, () => exited, 15_000);
    if (!ready) {
      child.kill('SIGKILL');
      if (attempt < 3) continue; // port taken meanwhile: try another
      await rm(dir, { recursive: true, force: true });
      throw new Error(`docker-registry did not start on ${address}:${port}:\n${lines.slice(-30).join('\n')}`);
    }
    const host = `${address}:${port}`;
    return {
      host,
      tls,
      ...(caFile ? { caFile } : {}),
      ...(opts.auth ? { auth: opts.auth } : {}),
      dir,
      url: (repository, ref = 'latest') => `oci://${host}/${repository}${ref.startsWith('sha256:') ? '@' : ':'}${ref}`,
      requests: () => parseAccessLog(lines),
      output: () => lines.slice(-200).join('\n'),
      close: () => stop(child, dir),
    };
  }
}

function registryConfig(o: {
  dir: string;
  address: string;
  port: number;
  certFile?: string;
  keyFile?: string;
  htpasswdFile?: string;
  notify?: RegistryOptions['notify'];
  clientCaFile?: string;
}): string {
  const y = [
    'version: 0.1',
    'log:',
    '  level: warn', // app logs quiet; the access log below is what tests read
    '  formatter: text',
    '  accesslog:',
    '    disabled: false',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${JSON.stringify(join(o.dir, 'data'))}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: ${o.address}:${o.port}`,
    `  secret: ${randomBytes(16).toString('hex')}`,
  ];
  if (o.certFile && o.keyFile) {
    y.push('  tls:', `    certificate: ${JSON.stringify(o.certFile)}`, `    key: ${JSON.stringify(o.keyFile)}`);
    if (o.clientCaFile) y.push('    clientcas:', `      - ${JSON.stringify(o.clientCaFile)}`);
  }
  if (o.htpasswdFile) y.push('auth:', '  htpasswd:', '    realm: arena-test', `    path: ${JSON.stringify(o.htpasswdFile)}`);
  if (o.notify) {
    y.push('notifications:', '  endpoints:', '    - name: test', `      url: ${JSON.stringify(o.notify.url)}`, '      timeout: 2s', '      threshold: 5', '      backoff: 200ms');
    const headers = Object.entries(o.notify.headers ?? {});
    if (headers.length > 0) y.push('      headers:', ...headers.map(([k, v]) => `        ${k}: [${JSON.stringify(v)}]`));
  }
  return y.join('\n') + '\n';
}

/** A CA and a server certificate for the address (and localhost), made with the openssl CLI (EC keys: fast). */
async function makeCertificates(dir: string, address: string, dnsNames: string[]): Promise<{ caFile: string; certFile: string; keyFile: string }> {
  const p = (name: string) => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', [
    'req', '-x509', ...ec, '-keyout', p('ca.key'), '-out', p('ca.crt'), '-days', '2',
    '-subj', '/CN=arena-source test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  await run('openssl', ['req', ...ec, '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', `/CN=${address}`]);
  await writeFile(
    p('server.ext'),
    `subjectAltName=IP:${address},DNS:localhost${dnsNames.map((d) => `,DNS:${d}`).join('')}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n`,
  );
  await run('openssl', [
    'x509', '-req', '-in', p('server.csr'), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-CAcreateserial',
    '-out', p('server.crt'), '-days', '2', '-extfile', p('server.ext'),
  ]);
  return { caFile: p('ca.crt'), certFile: p('server.crt'), keyFile: p('server.key') };
}

const ACCESS_LINE = /"(GET|HEAD|PUT|POST|PATCH|DELETE) (\S+) HTTP\/[\d.]+" (\d{3}) \S+ "[^"]*" "([^"]*)"/;

function parseAccessLog(lines: readonly string[]): RegistryRequest[] {
  const out: RegistryRequest[] = [];
  for (const line of lines) {
    const m = ACCESS_LINE.exec(line);
    if (m?.[1] && m[2] && m[3]) out.push({ method: m[1], path: m[2], status: Number(m[3]), userAgent: m[4] ?? '' });
  }
  return out;
}

async function stop(child: ChildProcess, dir: string): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(killer);
  }
  await rm(dir, { recursive: true, force: true });
}


async function waitListening(host: string, port: number, exited: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exited()) return false;
    const ok = await new Promise<boolean>((resolve) => {
      const sock = connect({ host, port });
      const done = (v: boolean) => {
        sock.destroy();
        resolve(v);
      };
      sock.setTimeout(1000, () => done(false));
      sock.once('connect', () => done(true));
      sock.once('error', () => done(false));
    });
    if (ok && !exited()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

// --- pushing test content with the real oras CLI ------------------------------------

export interface PushedArtifact {
  digest: string;
}

function targetOf(reg: TestRegistry, repository: string, auth?: RegistryAuth | null): OrasTarget {
  const a = auth === null ? undefined : (auth ?? reg.auth);
  return { registry: reg.host, repository, insecure: !reg.tls, ...(a ? { auth: a } : {}) };
}

/** Pushes files as a plain ORAS artifact: one layer per file, titled by its relative path. */
export async function pushFiles(
  reg: TestRegistry,
  repository: string,
  tag: string,
  files: Record<string, string | Buffer>,
  opts: { mediaType?: string; annotations?: Record<string, string> } = {},
): Promise<PushedArtifact> {
  const work = await mkdtemp(join(tmpdir(), 'arena-pushfiles-'));
  try {
    const names = Object.keys(files).sort();
    for (const name of names) {
      await mkdir(join(work, name, '..'), { recursive: true });
      await writeFile(join(work, name), files[name] as string | Buffer);
    }
    const pushed = await withOras(targetOf(reg, repository), { ...(reg.caFile ? { caFile: reg.caFile } : {}), timeoutMs: 60_000 }, (s) =>
      s.push({
        tag,
        cwd: work,
        files: names.map((n) => ({ path: n, mediaType: opts.mediaType ?? 'application/vnd.oci.image.layer.v1.tar' })),
        annotations: { 'org.opencontainers.image.created': '1970-01-01T00:00:00Z', ...(opts.annotations ?? {}) },
      }),
    );
    return { digest: pushed.digest };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Pushes one raw layer (e.g. a hand-made, hostile tar+gzip) as a Flux-style artifact. */
export async function pushLayer(
  reg: TestRegistry,
  repository: string,
  tag: string,
  layer: Buffer,
  opts: { mediaType?: string; title?: string } = {},
): Promise<PushedArtifact> {
  const work = await mkdtemp(join(tmpdir(), 'arena-pushlayer-'));
  try {
    const title = opts.title ?? 'bundle.tar.gz';
    await writeFile(join(work, title), layer);
    await writeFile(join(work, 'config.json'), '{}');
    const pushed = await withOras(targetOf(reg, repository), { ...(reg.caFile ? { caFile: reg.caFile } : {}), timeoutMs: 60_000 }, (s) =>
      s.push({
        tag,
        cwd: work,
        config: { path: 'config.json', mediaType: 'application/vnd.cncf.flux.config.v1+json' },
        files: [{ path: title, mediaType: opts.mediaType ?? 'application/vnd.cncf.flux.content.v1.tar+gzip' }],
        annotations: { 'org.opencontainers.image.created': '1970-01-01T00:00:00Z' },
      }),
    );
    return { digest: pushed.digest };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

export type TarSpec = Partial<tar.Header> & { name: string; body?: string | Buffer; zeros?: number };

/** A .tar.gz from raw headers, for archives no well-behaved packer would write. */
export async function makeTarGz(entries: TarSpec[], opts: { trailingZeros?: number } = {}): Promise<Buffer> {
  const pack = tar.pack();
  const trailing = opts.trailingZeros ?? 0;
  const trailer = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      cb(null, chunk);
    },
    flush(cb) {
      // Junk after the tar's end: a gzip bomb once compressed.
      const zero = Buffer.alloc(1024 * 1024);
      for (let left = trailing; left > 0; left -= zero.length) this.push(left >= zero.length ? zero : zero.subarray(0, left));
      cb();
    },
  });
  const chunks: Buffer[] = [];
  const collect = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      cb();
    },
  });
  const done = pipeline(pack, trailer, createGzip(), collect);
  for (const { body, zeros, ...header } of entries) {
    const base = { mode: 0o644, mtime: new Date(0), ...header };
    if (zeros !== undefined) {
      // A large, highly compressible body, written in pieces.
      await new Promise<void>((resolve, reject) => {
        const sink = pack.entry({ ...base, size: zeros }, (err) => (err ? reject(err) : resolve()));
        const piece = Buffer.alloc(1024 * 1024);
        let left = zeros;
        const write = () => {
          while (left > 0) {
            const n = Math.min(left, piece.length);
            left -= n;
            if (!sink.write(n === piece.length ? piece : piece.subarray(0, n))) {
              sink.once('drain', write);
              return;
            }
          }
          sink.end(undefined);
        };
        write();
      });
    } else {
      const data = body === undefined ? undefined : Buffer.from(body);
      await new Promise<void>((resolve, reject) => {
        const cb = (err?: Error | null) => (err ? reject(err) : resolve());
        if (data) pack.entry({ ...base, size: data.length }, data, cb);
        else pack.entry(base, cb).end(undefined);
      });
    }
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}
