/**
 * Throwaway X.509 material for TLS tests, made with the openssl CLI (EC keys: fast):
 * a CA, and server or client certificates it signs.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export interface TestCa {
  certFile: string;
  keyFile: string;
  /** PEM of the CA certificate. */
  pem: string;
}

export interface TestCert {
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
}

export async function makeCa(dir: string, name: string): Promise<TestCa> {
  const certFile = join(dir, `${name}-ca.crt`);
  const keyFile = join(dir, `${name}-ca.key`);
  await run('openssl', [
    'req', '-x509', ...EC, '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', `/CN=arena-source test ${name} CA`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return { certFile, keyFile, pem: await readFile(certFile, 'utf8') };
}

/** A certificate signed by `ca`: for a server (its IP/DNS names) or a client (serverAuth vs clientAuth). */
export async function issueCert(
  ca: TestCa,
  dir: string,
  name: string,
  use: { server: { ips?: string[]; dns?: string[] } } | { client: true },
): Promise<TestCert> {
  const p = (ext: string) => join(dir, `${name}.${ext}`);
  await run('openssl', ['req', ...EC, '-keyout', p('key'), '-out', p('csr'), '-subj', `/CN=${name}`]);
  const lines = ['basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment'];
  if ('server' in use) {
    const sans = [...(use.server.ips ?? []).map((i) => `IP:${i}`), ...(use.server.dns ?? []).map((d) => `DNS:${d}`)];
    lines.push(`subjectAltName=${sans.join(',')}`, 'extendedKeyUsage=serverAuth');
  } else {
    lines.push('extendedKeyUsage=clientAuth');
  }
  await writeFile(p('ext'), lines.join('\n') + '\n');
  // A random serial of its own, not the CA's serial file: certificates issued at once by one CA
  // (Promise.all) raced on that file ("Unable to load number from …srl", a CI run on 2026-12-07).
  const serial = `0x${randomBytes(16).toString('hex')}`;
  await run('openssl', [
    'x509', '-req', '-in', p('csr'), '-CA', ca.certFile, '-CAkey', ca.keyFile, '-set_serial', serial, '-out', p('crt'), '-days', '2', '-extfile', p('ext'),
  ]);
  return { certFile: p('crt'), keyFile: p('key'), cert: await readFile(p('crt'), 'utf8'), key: await readFile(p('key'), 'utf8') };
}
