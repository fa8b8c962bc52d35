/**
 * The one way arena-source connects to Temporal: the client (CLI commands,
 * controller, dev) and the worker's NativeConnection, both from the same
 * TemporalSettings (settings.ts) and credentials (credentials.ts).
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
import { NativeConnection, type NativeConnectionOptions, type Worker } from '@temporalio/worker';
import { TemporalCredentials } from './credentials.js';
import { explainConnectError } from './errors.js';
import { describeTemporal, type TemporalSettings } from './settings.js';

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

function nativeOptions(settings: TemporalSettings, creds: TemporalCredentials): NativeConnectionOptions {
  const snap = creds.current();
  const tls = settings.tls;
  return {
    address: settings.address,
    ...(settings.metadata ? { metadata: settings.metadata } : {}),
    ...(snap.apiKey ? { apiKey: snap.apiKey } : {}),
    ...(tls
      ? {
          tls: {
            ...(tls.serverName ? { serverNameOverride: tls.serverName } : {}),
            ...(snap.ca ? { serverRootCACertificate: snap.ca } : {}),
            ...(snap.cert && snap.key ? { clientCertPair: { crt: snap.cert, key: snap.key } } : {}),
          },
        }
      : {}),
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

/**
 * The worker side: the NativeConnection in use (`current`), replaced when the
 * certificate files change, with the Workers `follow` was given moved along.
 */
export class WorkerConnection {
  private readonly workers = new Set<Worker>();
  private stopWatching: (() => void) | undefined;
  private rotating: Promise<void> | undefined;
  private pendingTls = false;

  private constructor(
    readonly settings: TemporalSettings,
    private readonly creds: TemporalCredentials,
    public current: NativeConnection,
    private readonly opts: ConnectOptions,
  ) {}

  static async connect(settings: TemporalSettings, opts: ConnectOptions = {}): Promise<WorkerConnection> {
    const creds = await TemporalCredentials.load(settings, opts.warn);
    let native: NativeConnection;
    try {
      native = await NativeConnection.connect(nativeOptions(settings, creds));
    } catch (err) {
      creds.close();
      throw await explainConnectError(err, settings, creds);
    }
    const wc = new WorkerConnection(settings, creds, native, opts);
    if (creds.watchable) wc.stopWatching = creds.onChange((change) => void wc.onChange(change.tls, change.apiKey));
    return wc;
  }

  /** Moves these workers to every new connection until they stop. */
  follow(workers: Worker[]): void {
    for (const w of workers) this.workers.add(w);
  }

  unfollow(workers: Worker[]): void {
    for (const w of workers) this.workers.delete(w);
  }

  /** Checks the files now instead of at the next interval (tests, SIGHUP). */
  async refresh(): Promise<void> {
    await this.creds.refresh();
    await this.rotating;
  }

  // TemporalPingable (observability/health.ts), always on the current connection.
  withDeadline<R>(deadline: number | Date, fn: () => Promise<R>): Promise<R> {
    return this.current.withDeadline(deadline, fn);
  }

  get workflowService() {
    return this.current.workflowService;
  }

  private async onChange(tls: boolean, apiKey: boolean): Promise<void> {
    if (tls) this.pendingTls = true;
    const key = this.creds.apiKey();
    if (apiKey && key && !this.pendingTls) await this.current.setApiKey(key).catch((err) => this.opts.warn?.(`updating the Temporal API key: ${(err as Error).message}`));
    if (!this.pendingTls) return;
    // One rotation at a time; a change during one is picked up by the next check.
    this.rotating ??= this.rotate().finally(() => (this.rotating = undefined));
    await this.rotating;
  }

  private async rotate(): Promise<void> {
    let next: NativeConnection;
    try {
      next = await NativeConnection.connect(nativeOptions(this.settings, this.creds));
    } catch (err) {
      const explained = await explainConnectError(err, this.settings, this.creds);
      this.opts.warn?.(`rotated Temporal credentials not in use yet (the current connection stays; retrying at the next check): ${explained.message}`);
      return;
    }
    this.pendingTls = false;
    const previous = this.current;
    this.current = next;
    for (const w of this.workers) {
      if (w.getState() === 'STOPPED' || w.getState() === 'FAILED') {
        this.workers.delete(w);
        continue;
      }
      w.connection = next;
    }
    await previous.close().catch((err) => this.opts.warn?.(`closing the previous Temporal connection: ${(err as Error).message}`));
    this.opts.info?.('Temporal credentials rotated: workers moved to a new connection', describeTemporal(this.settings));
  }

  async close(): Promise<void> {
    this.stopWatching?.();
    await this.rotating;
    this.creds.close();
    await this.current.close();
  }
}
