/**
 * Credentials for git, prepared inside an activity from the Secret named by
 * `spec.git.secretRef` (see activities/source.ts). The workflow only ever sees
 * the Secret's name; values live in the environment of one git process and,
 * for SSH, in a private temporary directory that `cleanup()` removes.
 *
 * HTTPS / HTTP (keys `username` and `password` together, or `bearerToken`; optional
 * `ca.crt`, `tls.crt`/`tls.key`; see `prepareHttp`):
 *   The credentials travel as an `Authorization: Basic …` header set through
 *   git's GIT_CONFIG_COUNT / GIT_CONFIG_KEY_n / GIT_CONFIG_VALUE_n environment
 *   (`http.extraHeader`), so they are in no argv, no URL and no file. The header
 *   is sent preemptively, so there is no 401 round trip and no prompt. It is
 *   deliberately not URL-scoped (`http.<url>.extraHeader`): each git process we
 *   start talks to exactly one remote (the spec's URL), and a URL inside a config
 *   key trips simple-git's unanchored config-key guards for repository names
 *   containing words like "alias" or "pager". curl drops the header on a
 *   redirect to another host, port or scheme. A `username` alone is refused:
 *   a forgotten `password` would otherwise show up as a puzzling 401.
 *
 * SSH (`ssh://` URLs; keys `identity` and `known_hosts`, both required):
 *   The private key and known_hosts are written to 0600 files in a fresh 0700
 *   directory (`git-auth-*` under `tmpRoot`), and GIT_SSH_COMMAND runs ssh with
 *   no config file, no agent, only that key and strict host key checking against
 *   only that known_hosts: a host key is never trusted on first use. A non-22
 *   port needs known_hosts entries written `[host]:port keytype key`.
 *
 * In every case credential helpers from the worker's own git config are
 * switched off (`credential.helper=`), so a source never borrows the worker's
 * credentials, and ours are never handed to a helper to store.
 *
 * simple-git refuses GIT_CONFIG_COUNT, `credential.helper` and GIT_SSH_COMMAND
 * unless allowed: run.ts allows exactly these (and GIT_ASKPASS).
 */
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GitSource } from '../../api/schema.js';
import { redactUrl } from '../../api/spec-rules.js';
import { AuthenticationFailedError, InvalidSpecError } from '../../errors.js';
import type { SecretObject } from '../../resources/types.js';
import { makeKeyDir, type KeyDir } from '../../secrets/key-dir.js';
import { proxyFromSecret } from '../../secrets/proxy.js';
import { requireSecretKey, secretValue } from '../../secrets/secret-ref.js';
import { TLS_SECRET_KEYS, caBundle, tlsFromSecret } from '../../secrets/tls.js';

/** The Secret keys this module reads. */
export const GIT_SECRET_KEYS = {
  username: 'username',
  password: 'password',
  identity: 'identity',
  knownHosts: 'known_hosts',
  bearerToken: 'bearerToken',
  ...TLS_SECRET_KEYS,
} as const;

/** Name prefix of the temporary directories holding SSH key material. */
export const GIT_AUTH_DIR_PREFIX = 'git-auth-';

export interface GitAuth {
  /** Environment for git (GIT_* variables only). Holds credentials: never log or return it. */
  env: Record<string, string>;
  /** Removes the key material written for this fetch. Idempotent; call it in `finally`. */
  cleanup(): Promise<void>;
  /** Which Secret keys authenticate, for a message when the server refuses them (no values). */
  credentials?: string;
}

export interface GitAuthOptions {
  /** Where the private `git-auth-*` directory is created (default: the OS temp dir). */
  tmpRoot?: string;
  /** The ssh client (default: `ssh` on PATH). */
  sshBinary?: string;
  /** ssh's ConnectTimeout in seconds (default 30). */
  connectTimeoutSeconds?: number;
  /** The Secret named by spec.git.proxySecretRef (HTTP(S) URLs only). */
  proxySecret?: SecretObject;
}

/**
 * Prepares git's environment for `git.url` with the credentials in `secret`
 * (undefined when the spec names no Secret). Errors name the Secret and the
 * key, never a value.
 */
export async function prepareGitAuth(git: GitSource, secret: SecretObject | undefined, opts: GitAuthOptions = {}): Promise<GitAuth> {
  let url: URL;
  try {
    url = new URL(git.url);
  } catch {
    throw new InvalidSpecError(`spec.git.url: not a valid URL: ${JSON.stringify(redactUrl(git.url))}`);
  }
  const config: Array<[string, string]> = [['credential.helper', '']];
  switch (url.protocol) {
    case 'https:':
    case 'http:':
      return prepareHttp(git, secret, config, opts);
    case 'ssh:':
      if (opts.proxySecret) {
        throw new InvalidSpecError('spec.git.proxySecretRef: applies to https:// and http:// URLs only; ssh:// URLs connect directly');
      }
      return prepareSsh(git, url, secret, config, opts);
    default:
      throw new InvalidSpecError(`spec.git.url: unsupported scheme "${url.protocol.replace(':', '')}"; use https://, http:// or ssh://`);
  }
}

/**
 * HTTP(S): the Authorization header (basic or bearer), TLS files and the proxy.
 *   - `bearerToken`: `Authorization: Bearer …` (e.g. a GitHub App or GitLab token);
 *     with `username`/`password` too it is refused: which one was meant cannot be guessed.
 *   - `ca.crt`: appended to the system roots in a bundle file (http.sslCAInfo alone
 *     would replace them); `tls.crt` + `tls.key`: the client certificate (http.sslCert/sslKey).
 *     These files live in a 0700 `git-auth-*` directory that `cleanup()` removes.
 *   - proxySecretRef: `http.proxy` with the credentials in its URL (git hands them to curl);
 *     NO_PROXY of the worker is cleared for this process, so the source's proxy is always used.
 */
async function prepareHttp(git: GitSource, secret: SecretObject | undefined, config: Array<[string, string]>, opts: GitAuthOptions): Promise<GitAuth> {
  const tls = secret ? tlsFromSecret(secret) : undefined;
  const auth = secret ? httpAuthorization(secret, git.url, tls !== undefined) : undefined;
  const proxy = opts.proxySecret ? proxyFromSecret(opts.proxySecret, 'spec.git.proxySecretRef') : undefined;
  if (auth) config.push(['http.extraHeader', auth.header]);
  let dir: KeyDir | undefined;
  const files: Record<string, string> = {};
  try {
    if (tls) {
      dir = await makeKeyDir(GIT_AUTH_DIR_PREFIX, opts.tmpRoot);
      // Also as GIT_SSL_* variables: a worker environment's GIT_SSL_CAINFO (common in images) beats config.
      if (tls.ca) files.GIT_SSL_CAINFO = await dir.write('ca-bundle.pem', await caBundle(tls.ca));
      if (tls.cert && tls.key) {
        files.GIT_SSL_CERT = await dir.write('tls.crt', tls.cert);
        files.GIT_SSL_KEY = await dir.write('tls.key', tls.key);
        config.push(['http.sslCertPasswordProtected', 'false']);
      }
      if (files.GIT_SSL_CAINFO) config.push(['http.sslCAInfo', files.GIT_SSL_CAINFO]);
      if (files.GIT_SSL_CERT && files.GIT_SSL_KEY) config.push(['http.sslCert', files.GIT_SSL_CERT], ['http.sslKey', files.GIT_SSL_KEY]);
    }
    if (proxy) config.push(['http.proxy', proxy.url], ['http.proxyAuthMethod', 'basic']);
  } catch (err) {
    await dir?.remove();
    throw err;
  }
  const env = { ...configEnv(config), ...files };
  if (proxy) Object.assign(env, { NO_PROXY: '', no_proxy: '' });
  return {
    env,
    cleanup: async () => {
      await dir?.remove();
    },
    ...(auth ? { credentials: auth.credentials } : {}),
  };
}

function httpAuthorization(secret: SecretObject, url: string, hasTls: boolean): { header: string; credentials: string } | undefined {
  const name = `Secret ${secret.namespace}/${secret.name}`;
  const present = (k: string) => (secretValue(secret, k) ?? '') !== '';
  const basic = present(GIT_SECRET_KEYS.username) || present(GIT_SECRET_KEYS.password);
  if (present(GIT_SECRET_KEYS.bearerToken)) {
    if (basic) {
      throw new AuthenticationFailedError(
        `${name}: set either key '${GIT_SECRET_KEYS.bearerToken}' or keys '${GIT_SECRET_KEYS.username}'/'${GIT_SECRET_KEYS.password}', not both`,
      );
    }
    const token = requireSecretKey(secret, GIT_SECRET_KEYS.bearerToken, `HTTP bearer auth to ${redactUrl(url)}`).trim();
    if (/[\r\n]/.test(token)) throw new AuthenticationFailedError(`${name}: key '${GIT_SECRET_KEYS.bearerToken}' must be a single line`);
    return { header: `Authorization: Bearer ${token}`, credentials: `key '${GIT_SECRET_KEYS.bearerToken}' of ${name}` };
  }
  // A Secret that only carries TLS material authenticates with its client certificate (or not at all).
  if (!basic && hasTls) return undefined;
  return {
    header: `Authorization: Basic ${basicCredentials(secret, url)}`,
    credentials: `keys '${GIT_SECRET_KEYS.username}'/'${GIT_SECRET_KEYS.password}' of ${name}`,
  };
}

function basicCredentials(secret: SecretObject, url: string): string {
  const purpose = `HTTP basic auth to ${redactUrl(url)}; or set key '${GIT_SECRET_KEYS.bearerToken}' for a token, or only TLS keys`;
  const username = requireSecretKey(secret, GIT_SECRET_KEYS.username, purpose);
  const password = requireSecretKey(secret, GIT_SECRET_KEYS.password, purpose);
  if (username.includes(':')) {
    // RFC 7617: the user-id cannot contain a colon; the server would split it wrongly.
    throw new AuthenticationFailedError(
      `Secret ${secret.namespace}/${secret.name}: key '${GIT_SECRET_KEYS.username}' must not contain ':' (HTTP basic auth cannot carry it)`,
    );
  }
  return Buffer.from(`${username}:${password}`, 'utf8').toString('base64');
}

async function prepareSsh(
  git: GitSource,
  url: URL,
  secret: SecretObject | undefined,
  config: Array<[string, string]>,
  opts: GitAuthOptions,
): Promise<GitAuth> {
  const where = redactUrl(git.url);
  if (!secret) {
    throw new InvalidSpecError(
      `spec.git.secretRef: required for ssh:// URLs (${where}): name a Secret with keys ` +
        `'${GIT_SECRET_KEYS.identity}' (private key) and '${GIT_SECRET_KEYS.knownHosts}' (host keys are never trusted on first use)`,
    );
  }
  const identity = requireSecretKey(secret, GIT_SECRET_KEYS.identity, `SSH authentication to ${where}`);
  const knownHosts = requireSecretKey(
    secret,
    GIT_SECRET_KEYS.knownHosts,
    `verifying the SSH host key of ${hostPort(url)}; host keys are never trusted on first use`,
  );
  if (!/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(identity)) {
    const what = /^\s*(ssh-|ecdsa-|sk-)\S+\s+AAAA/.test(identity) ? 'a public key' : 'no PEM/OpenSSH private key';
    throw new AuthenticationFailedError(
      `Secret ${secret.namespace}/${secret.name}: key '${GIT_SECRET_KEYS.identity}' holds ${what}; it must hold the private key (-----BEGIN … PRIVATE KEY-----)`,
    );
  }
  if (!knownHosts.split('\n').some((l) => l.trim() !== '' && !l.trim().startsWith('#'))) {
    throw new AuthenticationFailedError(
      `Secret ${secret.namespace}/${secret.name}: key '${GIT_SECRET_KEYS.knownHosts}' has no host key lines`,
    );
  }

  const root = opts.tmpRoot ?? tmpdir();
  await mkdir(root, { recursive: true });
  const dir = await mkdtemp(join(root, GIT_AUTH_DIR_PREFIX));
  const cleanup = async (): Promise<void> => {
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  };
  try {
    await chmod(dir, 0o700);
    const keyFile = join(dir, 'identity');
    const knownHostsFile = join(dir, 'known_hosts');
    // OpenSSH rejects a key without its final newline ("invalid format"); CRLF from Windows editors too.
    await writeFile(keyFile, withFinalNewline(identity.replace(/\r\n/g, '\n')), { mode: 0o600, flag: 'wx' });
    await writeFile(knownHostsFile, withFinalNewline(knownHosts.replace(/\r\n/g, '\n')), { mode: 0o600, flag: 'wx' });
    const sshArgs = [
      opts.sshBinary ?? 'ssh',
      '-F', '/dev/null', // neither ~/.ssh/config nor /etc/ssh/ssh_config
      // Not `-i`: it stats the literal path, then expands %-tokens in it; IdentityFile is consistent.
      '-o', `IdentityFile=${sshOptionPath(keyFile)}`,
      '-o', 'IdentitiesOnly=yes',
      '-o', 'IdentityAgent=none',
      '-o', 'PreferredAuthentications=publickey',
      '-o', 'PasswordAuthentication=no',
      '-o', 'KbdInteractiveAuthentication=no',
      '-o', 'BatchMode=yes',
      '-o', 'StrictHostKeyChecking=yes',
      '-o', `UserKnownHostsFile=${sshOptionPath(knownHostsFile)}`,
      '-o', 'GlobalKnownHostsFile=/dev/null',
      '-o', 'UpdateHostKeys=no',
      '-o', 'CheckHostIP=no',
      '-o', 'ForwardAgent=no',
      '-o', 'ForwardX11=no',
      '-o', 'ClearAllForwardings=yes',
      '-o', 'PermitLocalCommand=no',
      '-o', 'ControlMaster=no',
      '-o', 'ControlPath=none',
      '-o', `ConnectTimeout=${Math.max(1, Math.round(opts.connectTimeoutSeconds ?? 30))}`,
      '-o', 'LogLevel=ERROR',
    ];
    return {
      env: {
        ...configEnv(config),
        // git runs this through `sh -c`; every word is single-quoted.
        GIT_SSH_COMMAND: sshArgs.map(shellQuote).join(' '),
        GIT_SSH_VARIANT: 'ssh', // so git passes the port as `-p` and GIT_PROTOCOL via SendEnv
      },
      cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/**
 * `GIT_CONFIG_COUNT` and friends (git ≥ 2.31): config for this process only, read after
 * every config file. Appended after entries the worker's own environment may carry (git's
 * client gets process.env merged under this), so an operator's settings stay and ours win.
 */
function configEnv(entries: Array<[string, string]>): Record<string, string> {
  const ambient = Number.parseInt(process.env.GIT_CONFIG_COUNT ?? '0', 10);
  const base = Number.isSafeInteger(ambient) && ambient > 0 ? ambient : 0;
  const env: Record<string, string> = { GIT_CONFIG_COUNT: String(base + entries.length) };
  entries.forEach(([key, value], i) => {
    env[`GIT_CONFIG_KEY_${base + i}`] = key;
    env[`GIT_CONFIG_VALUE_${base + i}`] = value;
  });
  return env;
}

function hostPort(url: URL): string {
  return url.port && url.port !== '22' ? `[${url.hostname}]:${url.port}` : url.hostname;
}

function withFinalNewline(text: string): string {
  return text.endsWith('\n') ? text : `${text}\n`;
}

/** IdentityFile and UserKnownHostsFile expand %-tokens and split on blanks: escape and quote. */
function sshOptionPath(path: string): string {
  const escaped = path.replace(/%/g, '%%');
  if (!/\s/.test(escaped)) return escaped;
  if (escaped.includes('"')) throw new Error(`cannot pass ${JSON.stringify(path)} to ssh (blank and double quote)`);
  return `"${escaped}"`;
}

export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
