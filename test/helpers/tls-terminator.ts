/**
 * A real TLS terminator in front of a plain TCP server (the git smart-HTTP
 * server): Debian's stunnel (OpenSSL) with a server certificate and, when
 * `clientCaFile` is given, a required client certificate signed by that CA, as an
 * ingress would. It ends refused handshakes with a proper TLS alert, which is what
 * clients report (node:tls may close before the alert is flushed).
 *
 * Needs stunnel4; scripts/ensure-tools.sh installs it.
 */
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from './free-port.js';
import { waitFor } from './wait.js';

export const STUNNEL_BINARY = process.env.STUNNEL_PATH || 'stunnel4';

export interface TlsTerminator {
  port: number;
  /** Subjects of the client certificates stunnel accepted (from its log). */
  clientNames(): Promise<string[]>;
  close(): Promise<void>;
}

export async function startTlsTerminator(opts: {
  /** Where its config and log go (the caller removes it). */
  dir: string;
  name: string;
  backendPort: number;
  certFile: string;
  keyFile: string;
  clientCaFile?: string;
}): Promise<TlsTerminator> {
  const port = await freePort();
  const log = join(opts.dir, `${opts.name}-stunnel.log`);
  const conf = join(opts.dir, `${opts.name}-stunnel.conf`);
  await writeFile(
    conf,
    [
      'foreground = yes',
      'pid =',
      `output = ${log}`,
      'debug = notice',
      'syslog = no',
      `[${opts.name}]`,
      `accept = 127.0.0.1:${port}`,
      `connect = 127.0.0.1:${opts.backendPort}`,
      `cert = ${opts.certFile}`,
      `key = ${opts.keyFile}`,
      // TLS 1.2 when a client certificate is required: the server then refuses it inside the handshake,
      // so the client always reports the alert. Under TLS 1.3 the refusal comes after the client's
      // Finished, and curl says "alert", "Broken pipe" or "not properly terminated" by timing.
      ...(opts.clientCaFile ? [`CAfile = ${opts.clientCaFile}`, 'verifyChain = yes', 'requireCert = yes', 'sslVersionMax = TLSv1.2'] : []),
      '',
    ].join('\n'),
  );
  const child = spawn(STUNNEL_BINARY, [conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let exited = false;
  child.on('exit', () => (exited = true));
  const listening = () =>
    new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
  await waitFor('stunnel to listen', async () => (exited ? 'exited' : (await listening()) ? 'up' : 'starting'), (s) => s !== 'starting');
  if (exited) throw new Error(`stunnel exited: ${stderr}${await readFile(log, 'utf8').catch(() => '')}`);
  return {
    port,
    clientNames: async () => [...(await readFile(log, 'utf8').catch(() => '')).matchAll(/Certificate accepted at depth=0: (.*)/g)].map((m) => m[1]!.trim()),
    close: async () => {
      if (!exited) {
        child.kill('SIGKILL');
        await new Promise((r) => child.once('exit', r));
      }
    },
  };
}
