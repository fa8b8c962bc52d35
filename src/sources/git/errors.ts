/**
 * git's and ssh's messages turned into the typed errors of src/errors.ts:
 * AuthenticationFailed (credentials, host keys, unloadable keys) or FetchFailed
 * (no answer in time, no such repository, ref or commit, anything else), with
 * URLs redacted and without ssh's banners or our temporary paths.
 */
import { redactUrl } from '../../api/spec-rules.js';
import type { GitSource } from '../../api/schema.js';
import { AuthenticationFailedError, FetchFailedError } from '../../errors.js';

export function classifyGitError(err: unknown, url: string): Error {
  const raw = err instanceof Error ? err.message : String(err);
  const detail = redactUrl(
    raw
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('hint:'))
      .join('; '),
  );
  const where = redactUrl(url);
  if (/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|host key is known for/i.test(raw)) {
    return new AuthenticationFailedError(
      `git: the SSH host key of ${sshHostOf(url)} did not match known_hosts (host key verification failed; ` +
        `host keys are never trusted on first use)${knownHostsHint(raw, url)}: ${sshHostKeyDetail(raw)}`,
    );
  }
  if (/Load key .*: (invalid format|incorrect passphrase|error in libcrypto)/i.test(raw)) {
    return new AuthenticationFailedError(
      `git: authentication to ${where} failed: ssh could not load the private key from the Secret's 'identity' ` +
        `(not a valid key, or protected by a passphrase): ${detail.replace(/Load key "[^"]*"/g, 'Load key "identity"')}`,
    );
  }
  const transport = classifyTransport(raw, where, detail);
  if (transport) return transport;
  if (/Authentication failed|could not read (Username|Password)|terminal prompts disabled|\b403\b|\b401\b|Permission denied \(publickey/i.test(raw)) {
    return new AuthenticationFailedError(`git: authentication to ${where} failed: ${detail}`);
  }
  if (/timed out/i.test(raw)) {
    return new FetchFailedError(`git: ${where} did not answer in time: ${detail}`);
  }
  if (/repository .* not found|not found|does not appear to be a git repository/i.test(raw)) {
    return new FetchFailedError(`git: repository ${where} not found: ${detail}`);
  }
  return new FetchFailedError(`git: ${where}: ${detail}`);
}

/** TLS (private CA, client certificates) and proxy failures, named by the Secret key that fixes them. */
function classifyTransport(raw: string, where: string, detail: string): Error | undefined {
  if (/Received HTTP code 407|Proxy Authentication Required|CONNECT tunnel failed, response 407|proxy.*\b407\b/i.test(raw)) {
    return new AuthenticationFailedError(
      `git: the proxy refused its credentials (HTTP 407) for ${where}: check keys 'username' and 'password' of the Secret in spec.git.proxySecretRef: ${detail}`,
    );
  }
  if (/Could not resolve proxy|Unsupported proxy|proxy CONNECT aborted|CONNECT tunnel failed|Failed to connect to .* port \d+.*proxy/i.test(raw)) {
    return new FetchFailedError(`git: the proxy (key 'address' of the Secret in spec.git.proxySecretRef) could not reach ${where}: ${detail}`);
  }
  // OpenSSL names the alert; GnuTLS (Debian's git) only says a fatal alert came: during the handshake, that is
  // a server that wants a client certificate it trusts.
  if (/alert certificate required|alert bad certificate|alert unknown ca|peer did not return a certificate|alert handshake failure|TLS fatal alert has been received|gnutls_handshake\(\) failed: (Handshake failed|CA is unknown|Certificate is bad|The certificate is required)/i.test(raw)) {
    return new AuthenticationFailedError(
      `git: ${where} refused the TLS handshake; a server that requires a client certificate (mutual TLS) does this when none it trusts is sent: ` +
        `set keys 'tls.crt' and 'tls.key' in the Secret in spec.git.secretRef: ${detail}`,
    );
  }
  // A server that drops the connection right after the handshake gives no reason. With TLS 1.3 that is how a
  // refused client certificate often looks (the alert races the request: "Broken pipe"), but an overloaded or
  // restarting server looks the same, so it stays a retryable fetch failure that names the likely fix.
  if (/unable to access 'https:/i.test(raw) && /Send failure: Broken pipe|Recv failure: Connection reset by peer|TLS connection was non-properly terminated/i.test(raw)) {
    return new FetchFailedError(
      `git: ${where} closed the connection during or right after the TLS handshake; if it requires a client certificate (mutual TLS), ` +
        `set keys 'tls.crt' and 'tls.key' in the Secret in spec.git.secretRef: ${detail}`,
    );
  }
  if (/could not load PEM client certificate|unable to set private key file|unable to use client certificate/i.test(raw)) {
    return new AuthenticationFailedError(`git: the client certificate for ${where} could not be loaded: check keys 'tls.crt' and 'tls.key' of the Secret in spec.git.secretRef: ${detail}`);
  }
  if (/SSL certificate problem|server certificate verification failed|unable to get local issuer certificate|self[- ]signed certificate|certificate verify failed/i.test(raw)) {
    return new FetchFailedError(
      `git: TLS verification of ${where} failed (its certificate is not signed by a trusted CA, or names another host); ` +
        `for a private CA put its certificate in key 'ca.crt' of the Secret in spec.git.secretRef: ${detail}`,
      { retryable: false },
    );
  }
  return undefined;
}

/**
 * The remote would not send a commit asked for by id: a protocol v0 server
 * without uploadpack.allowReachableSHA1InWant, or a commit force-pushed away.
 * Fetching the ref by name still works then.
 */
export function refusedCommitWant(err: unknown): boolean {
  return err instanceof FetchFailedError && /not our ref|unadvertised object|couldn't find remote ref/i.test(err.message);
}

/** The remote has no ref by the name fetched. */
export function isMissingRef(err: unknown): boolean {
  return err instanceof FetchFailedError && /couldn't find remote ref/i.test(err.message);
}

/** "<what> not found in <url>": final, retrying will not make it appear. */
export function notFound(git: GitSource, what: string, cause?: unknown): FetchFailedError {
  return new FetchFailedError(`${what} not found in ${redactUrl(git.url)}`, { ...(cause !== undefined ? { cause } : {}), retryable: false });
}

/** git's words for "no such commit" from checkout or rev-parse. */
export function isMissingCommit(err: unknown): boolean {
  return /reference is not a tree|unable to read tree|did not match any|bad object|unknown revision|invalid reference/i.test(String(err));
}

/** `host` or `[host]:port`, as known_hosts writes it. */
function sshHostOf(url: string): string {
  try {
    const u = new URL(url);
    return u.port && u.port !== '22' ? `[${u.hostname}]:${u.port}` : u.hostname;
  } catch {
    return redactUrl(url);
  }
}

/** For an unknown host on a non-22 port: how its known_hosts entry must be written. */
function knownHostsHint(raw: string, url: string): string {
  const host = sshHostOf(url);
  return /host key is known for/i.test(raw) && host.startsWith('[')
    ? ` (no entry for ${host}; for a port other than 22 write it as "${host} <keytype> <key>")`
    : '';
}

/** ssh's own lines that say what happened, without its banner or local file paths. */
function sshHostKeyDetail(raw: string): string {
  const keep = raw
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /host key is known for|Host key for .* has changed|fingerprint for|^SHA256:|Host key verification failed/i.test(l));
  return keep.join(' ') || 'Host key verification failed.';
}
