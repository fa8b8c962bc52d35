/**
 * The TLS material and API key of a Temporal connection, read from their files
 * and re-read every `refreshMs`: cert-manager (and a kubelet updating a mounted
 * Secret) replaces the files in place, and a long-running worker or controller
 * must use the new ones without a restart. Polling, not fs.watch: a Secret volume
 * is updated by swapping a symlink, which inotify on the files does not report.
 *
 * A changed certificate is taken only once it parses and matches its key (the
 * two files may be replaced one after the other); until then the last good pair
 * stays in use. Nothing here logs or returns file contents in messages.
 *
 * It is also a grpc-js CertificateProvider, so the client's channel builds every
 * new TLS connection from the current files (see connection.ts).
 */
import { readFile } from 'node:fs/promises';
import { createSecureContext, rootCertificates } from 'node:tls';
import type { experimental } from '@grpc/grpc-js';
import { TemporalConnectionError } from '../errors.js';
import { SETTING, type Material, type TemporalSettings } from './settings.js';

type CaListener = experimental.CaCertificateUpdateListener;
type IdentityListener = experimental.IdentityCertificateUpdateListener;

export interface Snapshot {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  apiKey?: string;
}

export interface CredentialChange {
  /** The certificate, key or CA changed: TLS connections must be rebuilt. */
  tls: boolean;
  /** The API key changed: the header can be updated in place. */
  apiKey: boolean;
}

const same = (a?: Buffer, b?: Buffer) => (a === undefined ? b === undefined : b !== undefined && a.equals(b));

async function read(m: Material | undefined, setting: string, what: string): Promise<Buffer | undefined> {
  if (!m) return undefined;
  if ('data' in m) return m.data;
  try {
    return await readFile(m.path);
  } catch (err) {
    throw new TemporalConnectionError('Config', `cannot read the Temporal ${what} ${m.path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, setting, {
      cause: err,
    });
  }
}

export class TemporalCredentials implements experimental.CertificateProvider {
  private snapshot: Snapshot = {};
  private readAt = Date.now();
  private readingForCall = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly changeListeners = new Set<(change: CredentialChange) => void>();
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();

  private constructor(
    readonly settings: TemporalSettings,
    private readonly warn: (message: string) => void,
  ) {}

  /** Reads every file once; a missing or unreadable one is a TemporalConnectionError naming its setting. */
  static async load(settings: TemporalSettings, warn: (message: string) => void = () => {}): Promise<TemporalCredentials> {
    const c = new TemporalCredentials(settings, warn);
    c.snapshot = await c.readAll();
    return c;
  }

  /** Whether any of it comes from files that can change. */
  get watchable(): boolean {
    const t = this.settings.tls;
    return [t?.ca, t?.cert, t?.key, this.settings.apiKey].some((m) => m !== undefined && 'path' in m);
  }

  /** Whether the client certificate comes from files (then the TLS connection must follow them). */
  get rotatingClientCert(): boolean {
    const cert = this.settings.tls?.cert;
    return cert !== undefined && 'path' in cert;
  }

  current(): Snapshot {
    return this.snapshot;
  }

  apiKey(): string | undefined {
    return this.snapshot.apiKey;
  }

  /**
   * The API key for a call, re-reading its file in the background when the last read is older
   * than refreshMs (the call itself goes with the key in hand): no timer for a client to leak.
   */
  apiKeyForCall(): string | undefined {
    const ms = this.settings.refreshMs;
    if (ms && this.settings.apiKey && 'path' in this.settings.apiKey && !this.readingForCall && Date.now() - this.readAt >= ms) {
      this.readingForCall = true;
      void this.refresh().finally(() => (this.readingForCall = false));
    }
    return this.snapshot.apiKey;
  }

  /** Calls `fn` after each change (polling starts with the first listener). Returns the unsubscribe. */
  onChange(fn: (change: CredentialChange) => void): () => void {
    this.changeListeners.add(fn);
    this.startPolling();
    return () => {
      this.changeListeners.delete(fn);
      this.maybeStopPolling();
    };
  }

  /** Reads the files now and tells the listeners what changed (possibly nothing). */
  async refresh(): Promise<CredentialChange> {
    let next: Snapshot;
    try {
      next = await this.readAll();
    } catch (err) {
      this.warn(`keeping the current Temporal credentials: ${(err as Error).message}`);
      return { tls: false, apiKey: false };
    }
    this.readAt = Date.now();
    const prev = this.snapshot;
    const change = {
      tls: !same(prev.ca, next.ca) || !same(prev.cert, next.cert) || !same(prev.key, next.key),
      apiKey: prev.apiKey !== next.apiKey,
    };
    if (change.tls || change.apiKey) this.snapshot = next;
    if (change.tls) this.publishTls();
    // Told even when nothing changed: a listener may be retrying an earlier change.
    for (const fn of this.changeListeners) fn(change);
    return change;
  }

  close(): void {
    this.changeListeners.clear();
    this.caListeners.clear();
    this.identityListeners.clear();
    this.maybeStopPolling();
  }

  private async readAll(): Promise<Snapshot> {
    const t = this.settings.tls;
    const [ca, cert, key, apiKey] = await Promise.all([
      read(t?.ca, SETTING.ca, 'server CA certificate'),
      read(t?.cert, SETTING.clientCert, 'client certificate'),
      read(t?.key, SETTING.clientCert, 'client key'),
      read(this.settings.apiKey && ('path' in this.settings.apiKey ? this.settings.apiKey : { data: Buffer.from(this.settings.apiKey.value) }), SETTING.apiKey, 'API key file'),
    ]);
    if (cert && key) {
      try {
        createSecureContext({ cert, key });
      } catch (err) {
        // OpenSSL's reason (e.g. "key values mismatch"), never the PEM.
        throw new TemporalConnectionError('Config', `the Temporal client certificate and key do not form a usable pair: ${(err as Error).message}`, SETTING.clientCert, {
          cause: err,
        });
      }
    }
    if (ca) {
      try {
        createSecureContext({ ca });
      } catch (err) {
        throw new TemporalConnectionError('Config', `the Temporal server CA certificate cannot be used: ${(err as Error).message}`, SETTING.ca, { cause: err });
      }
    }
    const snapshot: Snapshot = {};
    if (ca) snapshot.ca = ca;
    if (cert) snapshot.cert = cert;
    if (key) snapshot.key = key;
    const trimmed = apiKey?.toString('utf8').trim();
    if (trimmed) snapshot.apiKey = trimmed;
    return snapshot;
  }

  private startPolling(): void {
    if (this.timer || !this.watchable || !this.settings.refreshMs) return;
    this.timer = setInterval(() => void this.refresh(), this.settings.refreshMs);
    this.timer.unref();
  }

  private maybeStopPolling(): void {
    if (this.changeListeners.size + this.caListeners.size + this.identityListeners.size > 0) return;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  // ---- grpc-js CertificateProvider: the client channel asks for the current material on each handshake ----

  private caUpdate() {
    // No CA configured: the roots Node trusts by default, as grpc-js would use.
    return { caCertificate: this.snapshot.ca ?? Buffer.from(rootCertificates.join('\n')) };
  }

  private identityUpdate() {
    const { cert, key } = this.snapshot;
    return cert && key ? { certificate: cert, privateKey: key } : null;
  }

  private publishTls(): void {
    for (const l of this.caListeners) l(this.caUpdate());
    for (const l of this.identityListeners) l(this.identityUpdate());
  }

  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    this.startPolling();
    process.nextTick(listener, this.caUpdate());
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
    this.maybeStopPolling();
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    this.startPolling();
    process.nextTick(listener, this.identityUpdate());
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
    this.maybeStopPolling();
  }
}
