/**
 * Why a Temporal connection failed, in words that name the setting to fix.
 *
 * The SDKs hide TLS causes: grpc-js reports a failed handshake only as "failed
 * to connect before the deadline", Core as a transport error. So after a
 * failure we replay the handshake once with node:tls, with the same address,
 * server name, CA and client certificate, and read its error code (unknown CA,
 * name mismatch, the server's "certificate required" alert, ...). A rejected
 * API key needs no probe: the server (or its proxy) answers UNAUTHENTICATED.
 * Messages carry paths and setting names; an API key that shows up in a
 * message (it should not) is masked.
 */
import { connect as tcpConnect } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions as TlsOptions } from 'node:tls';
import { TemporalConnectionError, type TemporalConnectionProblem } from '../errors.js';
import type { TemporalCredentials } from './credentials.js';
import { SETTING, type TemporalSettings } from './settings.js';

const PROBE_TIMEOUT_MS = 5_000;
/** After a client-side handshake, how long a server's late alert (TLS 1.3 "certificate required") may take. */
const ALERT_WAIT_MS = 1_000;

const UNKNOWN_CA = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
]);

/** Alerts a server sends when it does not accept the client certificate (or got none). */
const CLIENT_CERT_ALERTS = /ALERT_(CERTIFICATE_REQUIRED|HANDSHAKE_FAILURE|UNKNOWN_CA|BAD_CERTIFICATE|ACCESS_DENIED|CERTIFICATE_EXPIRED|CERTIFICATE_REVOKED|CERTIFICATE_UNKNOWN|UNSUPPORTED_CERTIFICATE|DECRYPT_ERROR)/;

/** Not TLS at the other end (or something else speaking first). */
const NOT_TLS = /WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|UNKNOWN_PROTOCOL|RECORD_LAYER_FAILURE|HTTP_REQUEST/;

type ProbeResult = { ok: true } | { ok: false; code: string; message: string; stage: 'tcp' | 'tls' };

function hostPort(address: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(address.replace(/^[a-z]+:\/\//, ''));
  return { host: m?.[1] ?? address, port: m?.[2] ? Number(m[2]) : 7233 };
}

function probeTcp(host: string, port: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const s = tcpConnect({ host, port, timeout: PROBE_TIMEOUT_MS });
    s.once('connect', () => (s.destroy(), resolve({ ok: true })));
    s.once('timeout', () => (s.destroy(), resolve({ ok: false, code: 'ETIMEDOUT', message: 'connection timed out', stage: 'tcp' })));
    s.once('error', (err: NodeJS.ErrnoException) => resolve({ ok: false, code: err.code ?? 'ERROR', message: err.message, stage: 'tcp' }));
  });
}

function probeTls(options: TlsOptions): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: ProbeResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const socket = tlsConnect({ ...options, ALPNProtocols: ['h2'], timeout: PROBE_TIMEOUT_MS });
    const timer = setTimeout(() => finish({ ok: false, code: 'ETIMEDOUT', message: 'TLS handshake timed out', stage: 'tls' }), PROBE_TIMEOUT_MS + ALERT_WAIT_MS);
    socket.once('secureConnect', () => {
      // With TLS 1.3 the server judges the client certificate after our side finished: wait for its alert.
      socket.resume();
      setTimeout(() => finish({ ok: true }), ALERT_WAIT_MS).unref();
    });
    socket.once('error', (err: NodeJS.ErrnoException) => finish({ ok: false, code: err.code ?? 'ERROR', message: err.message, stage: 'tls' }));
    socket.once('close', () => finish({ ok: false, code: 'ECONNRESET', message: 'the server closed the connection during the TLS handshake', stage: 'tls' }));
  });
}

function grpcCode(err: unknown): number | undefined {
  for (let e: any = err, depth = 0; e && depth < 5; e = e.cause, depth++) {
    if (typeof e.code === 'number') return e.code;
  }
  return undefined;
}

function chainMessage(err: unknown): string {
  const parts: string[] = [];
  for (let e: any = err, depth = 0; e && depth < 5; e = e.cause, depth++) {
    if (e.message && !parts.includes(e.message)) parts.push(String(e.message));
  }
  return parts.join(': ') || String(err);
}

/** Turns any connect failure into a TemporalConnectionError. */
export async function explainConnectError(err: unknown, settings: TemporalSettings, creds: TemporalCredentials): Promise<TemporalConnectionError> {
  if (err instanceof TemporalConnectionError) return err;
  const key = creds.apiKey();
  const mask = (text: string) => (key ? text.split(key).join('[redacted]') : text);
  const where = `Temporal at ${settings.address}`;
  const make = (problem: TemporalConnectionProblem, what: string, setting: string) =>
    new TemporalConnectionError(problem, mask(`${where}: ${what}; set ${setting}`), setting, { cause: err });

  const detail = mask(chainMessage(err));
  // gRPC UNAUTHENTICATED (16) / PERMISSION_DENIED (7); Core reports the status by name.
  const code = grpcCode(err);
  if (code === 16 || code === 7 || /Unauthenticated|PermissionDenied|status: 401|401 Unauthorized/i.test(detail)) {
    return settings.apiKey
      ? make('ApiKeyRejected', `the API key was rejected (${key ? `${key.length} characters` : 'empty'}, from ${'path' in settings.apiKey ? settings.apiKey.path : 'TEMPORAL_API_KEY or the profile'})`, SETTING.apiKey)
      : make('ApiKeyRejected', 'the server requires authentication and no API key is set', SETTING.apiKey);
  }

  const { host, port } = hostPort(settings.address);
  const tcp = await probeTcp(host, port);
  if (!tcp.ok) return make('Unreachable', `cannot connect (${tcp.code}: ${tcp.message})`, SETTING.address);

  const tls = settings.tls;
  if (!tls) {
    const probe = await probeTls({ host, port, servername: host, rejectUnauthorized: false });
    if (probe.ok || !NOT_TLS.test(probe.code + probe.message)) {
      return make('TlsHandshake', `the server expects TLS and the connection is plaintext (${detail})`, SETTING.tls);
    }
    return make('Unreachable', `the connection failed (${detail})`, SETTING.address);
  }

  const snap = creds.current();
  // node:tls checks the certificate against `servername` when set, else the host it dialled.
  const serverName = tls.serverName ?? (/^[\d.]+$|:/.test(host) ? undefined : host);
  const probe = await probeTls({
    host,
    port,
    ...(serverName ? { servername: serverName } : {}),
    ...(snap.ca ? { ca: snap.ca } : {}),
    ...(snap.cert && snap.key ? { cert: snap.cert, key: snap.key } : {}),
  });
  if (probe.ok) return make('Unreachable', `TLS works but the connection failed (${detail})`, `${SETTING.address}, ${SETTING.apiKey}`);
  const why = `${probe.code}: ${mask(probe.message)}`;
  if (UNKNOWN_CA.has(probe.code)) {
    return make('UnknownCA', `the server's certificate is not signed by a trusted CA (${why}; CA in use: ${caName(settings)})`, SETTING.ca);
  }
  if (probe.code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return make('ServerName', `the server's certificate does not name ${tls.serverName ?? host} (${why})`, SETTING.serverName);
  }
  if (CLIENT_CERT_ALERTS.test(probe.code)) {
    return snap.cert
      ? make('ClientCertificateRejected', `the server rejected the client certificate ${certName(settings)} (${why})`, SETTING.clientCert)
      : make('ClientCertificateRequired', `the server requires a client certificate (mTLS) and none is set (${why})`, SETTING.clientCert);
  }
  if (NOT_TLS.test(probe.code + probe.message)) {
    return make('TlsHandshake', `TLS handshake failed: the server does not speak TLS on this port (${why})`, `${SETTING.tls}, ${SETTING.address}`);
  }
  if (probe.code === 'ECONNRESET' && !snap.cert) {
    // A server that wants a certificate may just hang up when none comes.
    return make('ClientCertificateRequired', `the server closed the TLS connection; it may require a client certificate (${why})`, SETTING.clientCert);
  }
  return make('TlsHandshake', `TLS handshake failed (${why})`, `${SETTING.tls}, ${SETTING.ca}, ${SETTING.serverName}`);
}

function caName(s: TemporalSettings): string {
  const ca = s.tls?.ca;
  return ca === undefined ? 'the system CAs' : 'path' in ca ? ca.path : 'inline data';
}

function certName(s: TemporalSettings): string {
  const cert = s.tls?.cert;
  return cert === undefined ? '' : 'path' in cert ? cert.path : '(inline data)';
}
