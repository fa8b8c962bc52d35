/**
 * TLS material from a Secret, under the keys Kubernetes and Flux use:
 * `ca.crt` (a private CA, added to the system roots), `tls.crt` and `tls.key`
 * (a client certificate for mutual TLS, both or neither). Checked here, before
 * any connection, so a wrong value fails with a message naming the key rather
 * than as an opaque handshake error; messages never quote the values.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { AuthenticationFailedError } from '../errors.js';
import type { SecretObject } from '../resources/types.js';
import { secretValue } from './secret-ref.js';

export const TLS_SECRET_KEYS = { ca: 'ca.crt', cert: 'tls.crt', key: 'tls.key' } as const;

export interface TlsMaterial {
  /** PEM of one or more CA certificates. */
  ca?: string;
  /** PEM client certificate (chain) and its unencrypted private key. */
  cert?: string;
  key?: string;
}

const SYSTEM_CA_BUNDLES = [
  '/etc/ssl/certs/ca-certificates.crt', // Debian, Ubuntu, Alpine
  '/etc/pki/tls/certs/ca-bundle.crt', // Fedora, RHEL
  '/etc/ssl/ca-bundle.pem', // openSUSE
  '/etc/ssl/cert.pem', // macOS, BSD
];

/** The TLS keys of `secret` (undefined when it has none), validated. */
export function tlsFromSecret(secret: SecretObject): TlsMaterial | undefined {
  const name = `Secret ${secret.namespace}/${secret.name}`;
  const ca = nonEmpty(secretValue(secret, TLS_SECRET_KEYS.ca));
  const cert = nonEmpty(secretValue(secret, TLS_SECRET_KEYS.cert));
  const key = nonEmpty(secretValue(secret, TLS_SECRET_KEYS.key));
  if (!ca && !cert && !key) return undefined;
  const bad = (k: string, why: string) => new AuthenticationFailedError(`${name}: key '${k}' ${why}`);
  if (ca) certificates(ca, () => bad(TLS_SECRET_KEYS.ca, 'holds no valid PEM certificate (-----BEGIN CERTIFICATE-----)'));
  if (cert && !key) throw bad(TLS_SECRET_KEYS.key, `is missing: '${TLS_SECRET_KEYS.cert}' (a client certificate) needs its private key`);
  if (key && !cert) throw bad(TLS_SECRET_KEYS.cert, `is missing: '${TLS_SECRET_KEYS.key}' (a private key) needs its client certificate`);
  if (cert && key) {
    const [leaf] = certificates(cert, () => bad(TLS_SECRET_KEYS.cert, 'holds no valid PEM certificate (-----BEGIN CERTIFICATE-----)'));
    let privateKey;
    try {
      privateKey = createPrivateKey({ key, format: 'pem' });
    } catch {
      throw bad(TLS_SECRET_KEYS.key, 'holds no unencrypted PEM private key (-----BEGIN … PRIVATE KEY-----; keys with a passphrase are not supported)');
    }
    if (!leaf?.checkPrivateKey(privateKey)) throw bad(TLS_SECRET_KEYS.key, `does not belong to the certificate in '${TLS_SECRET_KEYS.cert}'`);
  }
  return { ...(ca ? { ca } : {}), ...(cert && key ? { cert, key } : {}) };
}

/** The system's trusted roots followed by `extra` (PEM): a private CA is added, public ones stay trusted. */
export async function caBundle(...extra: string[]): Promise<string> {
  let system = '';
  for (const candidate of [process.env.SSL_CERT_FILE, ...SYSTEM_CA_BUNDLES]) {
    if (!candidate) continue;
    try {
      system = await readFile(candidate, 'utf8');
      break;
    } catch {
      // try the next one
    }
  }
  return [system, ...extra].map((p) => p.trim()).filter((p) => p !== '').join('\n') + '\n';
}

function certificates(pem: string, error: () => Error): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw error();
  try {
    return blocks.map((b) => new X509Certificate(b));
  } catch {
    throw error();
  }
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v;
}
