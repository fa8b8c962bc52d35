/**
 * The one way arena-source connects to Temporal: the client (CLI commands,
 * controller, dev) here and the worker's NativeConnection (worker-connection.ts),
 * both from the same TemporalSettings (settings.ts) and credentials (credentials.ts).
 * Apart so that a process with only a client (the controller, the CLI) never loads
 * @temporalio/worker and its native core (≈ 13 MiB of RSS measured).
 *
 * Certificate rotation, honestly: neither SDK connection re-reads files itself.
 * - Client (grpc-js): the channel takes a CertificateProvider (grpc-js's
 *   `experimental.createCertificateProviderChannelCredentials`, its mechanism for
 *   exactly this); every new TLS connection is built from the current files. A
 *   live HTTP/2 connection was authenticated at its handshake and keeps working;
 *   the next one (after the server or network drops it) uses the new certificate.
 * - Worker (Core, Rust): TLS is fixed when the native client is created, so on a
 *   change we connect a new NativeConnection with the new files and move the
 *   running Workers onto it (`worker.connection = next`, Core's replace_client,
 *   SDK ≥ 1.14): polling and in-flight tasks carry on, nothing restarts. If the
 *   new connection fails (e.g. the server does not trust the new certificate
 *   yet) the old one stays and the next check tries again.
 * - API key: the client takes it per call (`apiKey` as a function, or call
 *   credentials when the channel has custom credentials), re-reading the file
 *   when the last read is older than refreshMs; the worker's is updated in
 *   place with NativeConnection.setApiKey.
 */
import { credentials as grpcCredentials, experimental, Metadata } from '@grpc/grpc-js';
import { Client, Connection, type ConnectionOptions } from '@temporalio/client';
import { TemporalCredentials } from './credentials.js';
import { explainConnectError } from './errors.js';
import type { TemporalSettings } from './settings.js';

export interface ConnectOptions {
  /** Where rotation problems go (never with key material). */
  warn?: (message: string) => void;
  /** Told after the worker moved to a connection with rotated credentials. */
  info?: (message: string, fields?: Record<string, unknown>) => void;
  connectTimeoutMs?: number;
}

function clientOptions(settings: TemporalSettings, creds: TemporalCredentials, connectTimeoutMs?: number): ConnectionOptions {
  const base: ConnectionOptions = {
    address: settings.address,
    ...(settings.metadata ? { metadata: settings.metadata } : {}),
    ...(connectTimeoutMs ? { connectTimeout: connectTimeoutMs } : {}),
  };
  const apiKey = settings.apiKey ? () => creds.apiKeyForCall() ?? '' : undefined;
  const tls = settings.tls;
  if (!tls) return { ...base, ...(apiKey ? { apiKey } : {}) };
  if (creds.rotatingClientCert) {
    const serverName = tls.serverName
      ? { channelArgs: { 'grpc.ssl_target_name_override': tls.serverName, 'grpc.default_authority': tls.serverName } }
      : {};
    // The SDK refuses `apiKey` next to custom credentials: the same header as call credentials.
    const callCredentials = apiKey
      ? [
          grpcCredentials.createFromMetadataGenerator((_params, callback) => {
            const metadata = new Metadata();
            const key = apiKey();
            if (key) metadata.set('authorization', `Bearer ${key}`);
            callback(null, metadata);
          }),
        ]
      : [];
    return { ...base, ...serverName, credentials: experimental.createCertificateProviderChannelCredentials(creds, creds), callCredentials };
  }
  const snap = creds.current();
  return {
    ...base,
    ...(apiKey ? { apiKey } : {}),
    tls: {
      ...(tls.serverName ? { serverNameOverride: tls.serverName } : {}),
      ...(snap.ca ? { serverRootCACertificate: snap.ca } : {}),
      ...(snap.cert && snap.key ? { clientCertPair: { crt: snap.cert, key: snap.key } } : {}),
    },
  };
}

/** A client for `settings`; connection failures become a TemporalConnectionError naming the setting to fix. */
export async function connectClient(settings: TemporalSettings, opts: ConnectOptions = {}): Promise<Client> {
  const creds = await TemporalCredentials.load(settings, opts.warn);
  let connection: Connection;
  try {
    connection = await Connection.connect(clientOptions(settings, creds, opts.connectTimeoutMs));
  } catch (err) {
    creds.close();
    throw await explainConnectError(err, settings, creds);
  }
  return new Client({ connection, namespace: settings.namespace });
}
