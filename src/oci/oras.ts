/**
 * The `oras` CLI (https://oras.land) behind a small typed API, the way simple-git
 * wraps git: resolve a reference to a digest (a manifest HEAD, no content), list tags, fetch
 * a manifest or a blob by digest, push files as an artifact.
 *
 * Every call runs `oras` with execFile (no shell), a timeout, and a private
 * registry config: credentials go into a temporary docker config JSON (mode
 * 0600, in a mode 0700 directory, removed afterwards) named by
 * `--registry-config`, never into argv, environment or messages. Anonymous
 * calls get an empty config too, so the worker's own ~/.docker/config.json
 * (and any credential helper it names) is never consulted.
 *
 * Transport: TLS by default, enforced with `--plain-http=false` (oras would
 * otherwise talk plain HTTP to `localhost`). `insecure` tries TLS without
 * verification (`--insecure`) and falls back to `--plain-http` when the
 * registry answers in plain HTTP. A CA file is appended to the system roots
 * (oras's `--ca-file` alone would *replace* them).
 *
 * Failures become typed errors (src/errors.ts) whose messages are redacted.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { constants as fsConstants, createReadStream } from 'node:fs';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { redactUrl } from '../api/spec-rules.js';
import type { ProxySetting } from '../secrets/proxy.js';
import { caBundle, type TlsMaterial } from '../secrets/tls.js';
import {
  type ArenaSourceError,
  AuthenticationFailedError,
  FetchFailedError,
  InvalidSpecError,
} from '../errors.js';

export const ORAS_VERSION = 'v1.3.6';
export const ORAS_MODULE = 'oras.land/oras';
/** Environment variable naming the oras binary (after the `binary` option). */
export const ORAS_PATH_ENV = 'ORAS_PATH';
/** Environment variable naming a PEM file of extra CAs (after the `caFile` option). */
export const OCI_CA_FILE_ENV = 'ARENA_SOURCE_OCI_CA_FILE';

export const DEFAULT_ORAS_TIMEOUT_MS = 60_000;

/** Worker-level settings for registry traffic (ActivityDeps.oras). */
export interface OrasOptions {
  /** The oras binary: else $ORAS_PATH, else ~/.cache/arena-source/bin/oras, else `oras` on PATH. */
  binary?: string;
  /**
   * PEM file with extra CA certificates (private registries); added to the
   * system roots. Else $ARENA_SOURCE_OCI_CA_FILE.
   */
  caFile?: string;
  /** Time budget for the whole session (all calls together). Default 60 s. */
  timeoutMs?: number;
}

/** Credentials for one registry; written to the private docker config only. */
export type RegistryAuth =
  | { username: string; password: string }
  | { identityToken: string }
  | { registryToken: string };

export interface OrasTarget {
  /** host[:port] */
  registry: string;
  repository: string;
  /** Plain HTTP or unverified TLS allowed for this target. */
  insecure?: boolean;
  auth?: RegistryAuth;
  /** Where the credentials came from (e.g. "Secret ns/name"), for messages. */
  credentialSource?: string;
  /** A private CA and/or a client certificate (spec.oci.certSecretRef). */
  tls?: TlsMaterial;
  /** Where `tls` came from, for messages. */
  tlsSource?: string;
  /** An HTTP(S) proxy for this target only (spec.oci.proxySecretRef). */
  proxy?: ProxySetting;
}

export interface PushFile {
  /** Path relative to `cwd`; it becomes the layer's org.opencontainers.image.title. */
  path: string;
  mediaType: string;
}

export interface PushRequest {
  /** Tag to push (required: an artifact nobody can name is of no use). */
  tag: string;
  /** Working directory holding the files and the config. */
  cwd: string;
  files: PushFile[];
  /** Manifest config blob (relative to cwd) and its media type; without it, oras's empty config. */
  config?: { path: string; mediaType: string };
  /** Manifest annotations. Give org.opencontainers.image.created for a reproducible digest. */
  annotations?: Record<string, string>;
  artifactType?: string;
}

export interface PushedManifest {
  digest: string;
  mediaType: string;
  size: number;
  /** registry/repository@sha256:… as oras reports it. */
  reference: string;
}

export interface OrasSession {
  /** Digest of the manifest `reference` (a tag or a digest) names: one HEAD request, nothing pulled. */
  resolve(reference: string): Promise<string>;
  /** The repository's tags (one listing; digest-like tags such as cosign's `sha256-…` left out). */
  tags(): Promise<string[]>;
  /** The raw manifest bytes, verified against `digest`. */
  fetchManifest(digest: string): Promise<Buffer>;
  /** Writes the blob to `outFile` and verifies digest (and size, when given). Returns its size. */
  fetchBlob(digest: string, outFile: string, expectedSize?: number): Promise<number>;
  push(request: PushRequest): Promise<PushedManifest>;
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;
const REGISTRY_HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;
const REPOSITORY = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const MAX_OUTPUT = 8 * 1024 * 1024;

/** Which oras binary a call will run. */
export async function orasBinary(options: Pick<OrasOptions, 'binary'> = {}): Promise<string> {
  if (options.binary) return options.binary;
  const fromEnv = process.env[ORAS_PATH_ENV];
  if (fromEnv) return fromEnv;
  const cached = join(homedir(), '.cache', 'arena-source', 'bin', 'oras');
  try {
    await access(cached, fsConstants.X_OK);
    return cached;
  } catch {
    return 'oras';
  }
}

/**
 * Runs `fn` with a session on one repository. The private directory with the
 * registry config (and CA bundle) lives exactly as long as `fn`.
 */
export async function withOras<T>(target: OrasTarget, options: OrasOptions, fn: (session: OrasSession) => Promise<T>): Promise<T> {
  checkTarget(target);
  const binary = await orasBinary(options);
  const timeoutMs = options.timeoutMs ?? DEFAULT_ORAS_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  const caFile = options.caFile ?? (process.env[OCI_CA_FILE_ENV] || undefined);

  const dir = await mkdtemp(join(tmpdir(), 'arena-oras-'));
  try {
    const configPath = join(dir, 'config.json');
    await writeFile(configPath, dockerConfigJson(target.registry, target.auth), { mode: 0o600, flag: 'wx' });
    const caFilePath = caFile || target.tls?.ca ? await writeCaBundle(dir, caFile, target.tls?.ca) : undefined;
    const clientCert = target.tls?.cert && target.tls.key ? await writeClientCert(dir, target.tls.cert, target.tls.key) : undefined;
    const secrets = [...secretStrings(target.auth), ...(target.proxy?.secrets ?? [])];
    const proxyEnv: NodeJS.ProcessEnv | undefined = target.proxy
      ? // Go reads these; the worker's NO_PROXY must not exempt this source's registry from its proxy.
        { HTTPS_PROXY: target.proxy.url, HTTP_PROXY: target.proxy.url, https_proxy: target.proxy.url, http_proxy: target.proxy.url, NO_PROXY: '', no_proxy: '' }
      : undefined;
    // Decided on the first call for insecure targets: TLS (unverified) or plain HTTP.
    let plainHttp = false;

    const transportArgs = (): string[] => {
      const args = ['--registry-config', configPath];
      if (target.insecure) args.push(plainHttp ? '--plain-http' : '--insecure');
      else args.push('--plain-http=false');
      if (caFilePath && !plainHttp) args.push('--ca-file', caFilePath);
      if (clientCert && !plainHttp) args.push('--cert-file', clientCert.cert, '--key-file', clientCert.key);
      return args;
    };

    const call = async (what: string, args: string[], positional: string[], cwd?: string): Promise<string> => {
      for (;;) {
        const remaining = deadline - Date.now();
        if (remaining <= 0) {
          throw new FetchFailedError(`oci: ${what} on ${target.registry}: no time left (timeout ${formatMs(timeoutMs)})`);
        }
        const result = await runOras(binary, [...args, ...transportArgs(), '--', ...positional], {
          timeoutMs: remaining,
          home: dir,
          ...(cwd ? { cwd } : {}),
          ...(proxyEnv ? { env: proxyEnv } : {}),
        });
        if (result.ok) return result.stdout;
        if (result.timedOut) {
          throw new FetchFailedError(
            `oci: ${what} on ${target.registry} did not finish within ${formatMs(timeoutMs)} (spec.timeout); the registry is slow or unreachable`,
          );
        }
        if (result.notFound) {
          throw new FetchFailedError(
            `oci: the oras CLI was not found at "${binary}": install it (GOBIN=$HOME/.cache/arena-source/bin go install ${ORAS_MODULE}/cmd/oras@${ORAS_VERSION}) or set ${ORAS_PATH_ENV}`,
            { retryable: false },
          );
        }
        if (target.insecure && !plainHttp && /server gave HTTP response to HTTPS client/i.test(result.stderr)) {
          plainHttp = true; // an insecure target that only speaks HTTP
          continue;
        }
        throw classifyOrasError(result.stderr, {
          registry: target.registry,
          what,
          insecure: !!target.insecure,
          plainHttp,
          ...(target.credentialSource ? { credentialSource: target.credentialSource } : {}),
          ...(target.tlsSource ? { tlsSource: target.tlsSource } : {}),
          ...(target.proxy ? { proxySource: `${target.proxy.source} (${target.proxy.display})` } : {}),
          secrets,
        });
      }
    };

    const repo = `${target.registry}/${target.repository}`;
    const session: OrasSession = {
      async resolve(reference) {
        const sep = DIGEST.test(reference) ? '@' : ':';
        if (sep === ':' && !TAG.test(reference)) throw new InvalidSpecError(`oci: "${reference}" is not a valid tag`);
        const what = sep === '@' ? `manifest ${reference} of ${repo}` : `tag '${reference}' of ${repo}`;
        const out = (await call(`resolving ${what}`, ['resolve'], [`${repo}${sep}${reference}`])).trim();
        const digest = out.split(/\s+/).pop() ?? '';
        if (!DIGEST.test(digest)) {
          throw new FetchFailedError(`oci: resolving ${what}: unexpected answer from oras (${JSON.stringify(scrub(out.slice(0, 200), secrets))})`);
        }
        return digest;
      },

      async tags() {
        const out = await call(`listing the tags of ${repo}`, ['repo', 'tags', '--exclude-digest-tags'], [repo]);
        return out.split('\n').map((t) => t.trim()).filter((t) => TAG.test(t));
      },

      async fetchManifest(digest) {
        requireDigest(digest);
        const out = join(dir, `manifest-${digest.slice(7, 19)}.json`);
        try {
          await call(`fetching manifest ${digest} of ${repo}`, ['manifest', 'fetch', '--output', out], [`${repo}@${digest}`]);
          const bytes = await readFile(out);
          const got = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
          if (got !== digest) {
            throw new FetchFailedError(`oci: manifest ${digest} from ${target.registry} does not match its digest (got ${got})`, {
              retryable: false,
            });
          }
          return bytes;
        } finally {
          await rm(out, { force: true });
        }
      },

      async fetchBlob(digest, outFile, expectedSize) {
        requireDigest(digest);
        await rm(outFile, { force: true });
        await call(`fetching blob ${digest} of ${repo}`, ['blob', 'fetch', '--no-tty', '--output', outFile], [`${repo}@${digest}`]);
        const { size, digest: got } = await hashFile(outFile);
        if (got !== digest || (expectedSize !== undefined && size !== expectedSize)) {
          await rm(outFile, { force: true });
          throw new FetchFailedError(
            `oci: blob ${digest} from ${target.registry} does not match its descriptor (got ${got}, ${size} bytes${expectedSize !== undefined ? `, expected ${expectedSize}` : ''})`,
            { retryable: false },
          );
        }
        return size;
      },

      async push(request) {
        if (!TAG.test(request.tag)) throw new InvalidSpecError(`oci: "${request.tag}" is not a valid tag`);
        const args = ['push', '--no-tty', '--format', 'json'];
        if (request.config) args.push('--config', `${request.config.path}:${request.config.mediaType}`);
        if (request.artifactType) args.push('--artifact-type', request.artifactType);
        for (const [key, value] of Object.entries(request.annotations ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
          args.push('--annotation', `${key}=${value}`);
        }
        const files = request.files.map((f) => {
          if (f.path.startsWith('-') || f.path.startsWith('/') || f.path.split('/').includes('..')) {
            throw new InvalidSpecError(`oci: push file "${f.path}" must be a relative path inside the working directory`);
          }
          return `${f.path}:${f.mediaType}`;
        });
        const out = await call(`pushing ${repo}:${request.tag}`, args, [`${repo}:${request.tag}`, ...files], request.cwd);
        let parsed: { digest?: unknown; mediaType?: unknown; size?: unknown; reference?: unknown };
        try {
          parsed = JSON.parse(out) as typeof parsed;
        } catch {
          throw new FetchFailedError(`oci: pushing ${repo}:${request.tag}: oras printed no JSON descriptor`);
        }
        if (typeof parsed.digest !== 'string' || !DIGEST.test(parsed.digest)) {
          throw new FetchFailedError(`oci: pushing ${repo}:${request.tag}: oras reported no digest`);
        }
        return {
          digest: parsed.digest,
          mediaType: typeof parsed.mediaType === 'string' ? parsed.mediaType : '',
          size: typeof parsed.size === 'number' ? parsed.size : 0,
          reference: typeof parsed.reference === 'string' ? parsed.reference : `${repo}@${parsed.digest}`,
        };
      },
    };
    return await fn(session);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function checkTarget(target: OrasTarget): void {
  if (!REGISTRY_HOST.test(target.registry)) {
    throw new InvalidSpecError(`oci: "${target.registry}" is not a registry host[:port]`);
  }
  if (!REPOSITORY.test(target.repository)) {
    throw new InvalidSpecError(`oci: "${target.repository}" is not a valid repository name`);
  }
}

function requireDigest(digest: string): void {
  if (!DIGEST.test(digest)) throw new InvalidSpecError(`oci: "${digest}" is not a sha256 digest`);
}

/**
 * The docker config oras reads: one `auths` entry for the registry (and Docker
 * Hub's legacy key when the registry is Docker Hub). Nothing else, so no
 * credsStore/credHelpers can make oras run a helper program.
 */
export function dockerConfigJson(registry: string, auth: RegistryAuth | undefined): string {
  const auths: Record<string, Record<string, string>> = {};
  if (auth) {
    let entry: Record<string, string>;
    if ('password' in auth) entry = { auth: Buffer.from(`${auth.username}:${auth.password}`, 'utf8').toString('base64') };
    else if ('identityToken' in auth) entry = { identitytoken: auth.identityToken };
    else entry = { registrytoken: auth.registryToken };
    auths[registry] = entry;
    if (isDockerHub(registry)) auths['https://index.docker.io/v1/'] = entry;
  }
  return JSON.stringify({ auths });
}

export function isDockerHub(registry: string): boolean {
  return ['docker.io', 'index.docker.io', 'registry-1.docker.io'].includes(registry.toLowerCase());
}

/** Every string that must never appear in a message: the values and their base64 form. */
function secretStrings(auth: RegistryAuth | undefined): string[] {
  if (!auth) return [];
  if ('password' in auth) {
    return [auth.password, Buffer.from(`${auth.username}:${auth.password}`, 'utf8').toString('base64')].filter((s) => s.length >= 3);
  }
  return ['identityToken' in auth ? auth.identityToken : auth.registryToken].filter((s) => s.length >= 3);
}

function scrub(text: string, secrets: readonly string[]): string {
  let out = redactUrl(text);
  for (const s of secrets) out = out.split(s).join('***');
  return out;
}

/** System roots + the worker's CA file + the source's ca.crt, so private CAs work without breaking public registries. */
async function writeCaBundle(dir: string, caFile: string | undefined, sourceCa: string | undefined): Promise<string> {
  let extra = '';
  if (caFile) {
    try {
      extra = await readFile(caFile, 'utf8');
    } catch (err) {
      throw new FetchFailedError(`oci: the registry CA file "${caFile}" cannot be read: ${(err as NodeJS.ErrnoException).code ?? err}`, {
        retryable: false,
      });
    }
    if (!extra.includes('-----BEGIN CERTIFICATE-----')) {
      throw new FetchFailedError(`oci: the registry CA file "${caFile}" holds no PEM certificate`, { retryable: false });
    }
  }
  const out = join(dir, 'ca-bundle.pem');
  await writeFile(out, await caBundle(extra, sourceCa ?? ''), { mode: 0o600, flag: 'wx' });
  return out;
}

/** The client certificate and key, 0600 in the session's 0700 directory (removed with it). */
async function writeClientCert(dir: string, cert: string, key: string): Promise<{ cert: string; key: string }> {
  const files = { cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key') };
  await writeFile(files.cert, cert, { mode: 0o600, flag: 'wx' });
  await writeFile(files.key, key, { mode: 0o600, flag: 'wx' });
  return files;
}

async function hashFile(file: string): Promise<{ size: number; digest: string }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { size, digest: `sha256:${hash.digest('hex')}` };
}

interface RunResult {
  ok: boolean;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  notFound: boolean;
}

function runOras(binary: string, args: string[], opts: { timeoutMs: number; home: string; cwd?: string; env?: NodeJS.ProcessEnv }): Promise<RunResult> {
  // A private HOME: oras finds no ~/.docker or ~/.oras of the worker's user.
  const env: NodeJS.ProcessEnv = { ...process.env, ...(opts.env ?? {}), HOME: opts.home, DOCKER_CONFIG: opts.home };
  delete env.ORAS_CACHE;
  return new Promise((resolve) => {
    execFile(
      binary,
      args,
      {
        env,
        timeout: Math.max(1, Math.floor(opts.timeoutMs)),
        killSignal: 'SIGKILL',
        maxBuffer: MAX_OUTPUT,
        encoding: 'utf8',
        windowsHide: true,
        ...(opts.cwd ? { cwd: opts.cwd } : {}),
      },
      (err, stdout, stderr) => {
        if (!err) return resolve({ ok: true, stdout, stderr, timedOut: false, notFound: false });
        const e = err as NodeJS.ErrnoException & { killed?: boolean; signal?: string | null };
        resolve({
          ok: false,
          stdout,
          stderr: stderr || e.message,
          timedOut: e.killed === true && e.signal === 'SIGKILL',
          notFound: e.code === 'ENOENT' || e.code === 'EACCES',
        });
      },
    );
  });
}

export interface ErrorContext {
  registry: string;
  /** What was being done, e.g. "resolving tag 'v1' of host/repo". */
  what: string;
  insecure: boolean;
  plainHttp: boolean;
  credentialSource?: string;
  /** Where the TLS material came from (spec.oci.certSecretRef), for messages. */
  tlsSource?: string;
  /** The proxy in use, e.g. "Secret ns/name (http://host:3128)", for messages. */
  proxySource?: string;
  /** Strings to remove from any message. */
  secrets?: readonly string[];
}

/** Turns oras's stderr into a typed error with a message a person can act on. */
export function classifyOrasError(stderr: string, c: ErrorContext): ArenaSourceError {
  const detail = scrub(
    stderr
      .split('\n')
      .map((l) => l.trim().replace(/^(Error: |Error response from registry: )/, ''))
      .filter((l) => l !== '' && !/^(Usage:|Please check|Run 'oras)/.test(l))
      .join('; ')
      .slice(0, 2000),
    c.secrets ?? [],
  );
  const where = `registry ${c.registry}`;
  const creds = c.credentialSource ? `the credentials from ${c.credentialSource}` : 'no credentials (set spec.oci.secretRef)';

  if (/server gave HTTP response to HTTPS client/i.test(stderr)) {
    return new FetchFailedError(
      `oci: ${where} answers plain HTTP, not HTTPS; set spec.oci.insecure: true to allow plain HTTP for this source (${c.what}: ${detail})`,
      { retryable: false },
    );
  }
  if (/proxyconnect|Proxy Authentication Required|\b407\b/i.test(stderr)) {
    const via = c.proxySource ?? 'the proxy';
    return /Proxy Authentication Required|\b407\b/i.test(stderr)
      ? new AuthenticationFailedError(`oci: ${via} refused its credentials (HTTP 407): check keys 'username' and 'password' of spec.oci.proxySecretRef (${c.what}: ${detail})`)
      : new FetchFailedError(`oci: ${via} could not be used to reach ${where}: check key 'address' of spec.oci.proxySecretRef (${c.what}: ${detail})`);
  }
  if (/certificate required|bad certificate|unknown certificate authority|remote error: tls/i.test(stderr)) {
    const from = c.tlsSource ? ` (the one from ${c.tlsSource} was refused)` : '';
    return new AuthenticationFailedError(
      `oci: ${where} requires a client certificate it trusts (mutual TLS)${from}: set keys 'tls.crt' and 'tls.key' in spec.oci.certSecretRef (${c.what}: ${detail})`,
    );
  }
  // With TLS 1.3 a refused client certificate can also surface as the server dropping the connection after
  // the handshake (Go: "write: broken pipe", "connection reset by peer", or HTTP/2 failing to start), which a
  // flaky registry does too: retryable, naming the likely fix.
  if (/write: broken pipe|connection reset by peer|http2: client conn could not be established/i.test(stderr) && /https:\/\//i.test(stderr)) {
    return new FetchFailedError(
      `oci: ${where} closed the connection during or right after the TLS handshake; if it requires a client certificate (mutual TLS), set keys 'tls.crt' and 'tls.key' in spec.oci.certSecretRef (${c.what}: ${detail})`,
    );
  }
  if (/x509:|tls: |certificate (is not|has expired|signed by)/i.test(stderr)) {
    return new FetchFailedError(
      `oci: TLS verification of ${where} failed; put the registry's CA in key 'ca.crt' of spec.oci.certSecretRef (or give the worker oras.caFile / ${OCI_CA_FILE_ENV}), or set spec.oci.insecure: true (${c.what}: ${detail})`,
      { retryable: false },
    );
  }
  if (/mismatched digest|digest mismatch|size mismatch|trailing data|content size/i.test(stderr)) {
    return new FetchFailedError(
      `oci: ${where} served content that does not match its digest (corrupted or tampered with) (${c.what}: ${detail})`,
      { retryable: false },
    );
  }
  if (/status code 401|status code 403|unauthorized|basic credential not found|authentication required|\bdenied\b|forbidden/i.test(stderr)) {
    return new AuthenticationFailedError(`oci: authentication to ${where} failed with ${creds} (${c.what}: ${detail})`);
  }
  if (/status code 5\d\d|connection refused|connection reset|no such host|i\/o timeout|timeout|network is unreachable|\bEOF\b|TOOMANYREQUESTS|status code 429/i.test(stderr)) {
    return new FetchFailedError(`oci: ${where} is unreachable or failing (${c.what}: ${detail})`);
  }
  if (/: not found\b|status code 404|MANIFEST_UNKNOWN|NAME_UNKNOWN|BLOB_UNKNOWN|not found/i.test(stderr)) {
    return new FetchFailedError(`oci: ${c.what}: not found in ${where} (${detail})`, { retryable: false });
  }
  if (c.plainHttp && /status code 400/i.test(stderr)) {
    return new FetchFailedError(`oci: ${where} rejected a plain HTTP request; does it speak HTTPS? (${c.what}: ${detail})`, {
      retryable: false,
    });
  }
  return new FetchFailedError(`oci: ${c.what} on ${where} failed: ${detail}`);
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
