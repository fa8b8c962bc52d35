/**
 * The worker's connection to Temporal: Core's NativeConnection from the same settings
 * and credentials as the client (connection.ts, whose comment says how certificates
 * and API keys rotate on each side).
 */
import { NativeConnection, type NativeConnectionOptions, type Worker } from '@temporalio/worker';
import type { ConnectOptions } from './connection.js';
import { TemporalCredentials } from './credentials.js';
import { explainConnectError } from './errors.js';
import { describeTemporal, type TemporalSettings } from './settings.js';

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

/**
 * The worker side: the NativeConnection in use (`current`), replaced when the
 * certificate files change, with the Workers `follow` was given moved along. A worker
 * on a connection of its own (`followOnOwn`) gets a new one of its own instead.
 */
export class WorkerConnection {
  private readonly workers = new Set<Worker>();
  private readonly ownConnections = new Map<Worker, NativeConnection>();
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

  /**
   * A connection of its own, same settings and credentials: for a second worker on a task queue
   * this process already polls (the core registers one worker per queue and connection, and the
   * workflow cache's resize runs the new worker beside the draining old one).
   */
  async open(): Promise<NativeConnection> {
    return NativeConnection.connect(nativeOptions(this.settings, this.creds));
  }

  /** Keeps `worker`, on `connection` from open(), on a connection of its own across rotations. */
  followOnOwn(worker: Worker, connection: NativeConnection): void {
    this.ownConnections.set(worker, connection);
  }

  /** Stops following a worker that has stopped, and closes its connection. */
  async unfollowOwn(worker: Worker): Promise<void> {
    const connection = this.ownConnections.get(worker);
    this.ownConnections.delete(worker);
    await connection?.close().catch((err) => this.opts.warn?.(`closing a worker's Temporal connection: ${(err as Error).message}`));
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
    if (apiKey && key && !this.pendingTls) {
      for (const connection of [this.current, ...this.ownConnections.values()]) {
        await connection.setApiKey(key).catch((err) => this.opts.warn?.(`updating the Temporal API key: ${(err as Error).message}`));
      }
    }
    if (!this.pendingTls) return;
    // One rotation at a time; a change during one is picked up by the next check.
    this.rotating ??= this.rotate().finally(() => (this.rotating = undefined));
    await this.rotating;
  }

  private async rotate(): Promise<void> {
    let next: NativeConnection;
    try {
      next = await this.open();
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
    for (const [w, own] of this.ownConnections) {
      const fresh = await this.open().catch(() => undefined);
      try {
        if (!fresh) throw new Error('could not connect');
        w.connection = fresh;
      } catch (err) {
        await fresh?.close().catch(() => undefined);
        this.opts.warn?.(`a worker stays on its Temporal connection (credentials not rotated for it): ${(err as Error).message}`);
        continue;
      }
      this.ownConnections.set(w, fresh);
      await own.close().catch((err) => this.opts.warn?.(`closing the previous Temporal connection: ${(err as Error).message}`));
    }
    this.opts.info?.('Temporal credentials rotated: workers moved to a new connection', describeTemporal(this.settings));
  }

  async close(): Promise<void> {
    this.stopWatching?.();
    await this.rotating;
    this.creds.close();
    for (const w of [...this.ownConnections.keys()]) await this.unfollowOwn(w);
    await this.current.close();
  }
}
