/**
 * Where and how to reach Temporal, resolved once per process: Temporal's own
 * client environment configuration (a temporal.toml profile, then the TEMPORAL_*
 * variables over it, loaded by @temporalio/envconfig exactly as the `temporal`
 * CLI and the other SDKs do), then our flags over that. The result names files,
 * not their contents, so it can be re-read when the files change.
 */
import { existsSync } from 'node:fs';
import { loadClientConfigProfile, type ClientConfigProfile, type ConfigDataSource } from '@temporalio/envconfig';
import { TemporalConnectionError } from '../errors.js';
import { parseTtl } from '../store/retention.js';

export const DEFAULT_TEMPORAL_ADDRESS = '127.0.0.1:7233';
export const DEFAULT_TEMPORAL_NAMESPACE = 'default';
export const DEFAULT_CREDENTIALS_REFRESH = '30s';

/** The connection flags (options.ts), environment already folded in by the option parser. */
export interface TemporalFlags {
  temporalAddress?: string;
  temporalNamespace?: string;
  temporalProfile?: string;
  temporalConfigFile?: string;
  temporalTls?: boolean;
  temporalTlsCaFile?: string;
  temporalTlsServerName?: string;
  temporalTlsCertFile?: string;
  temporalTlsKeyFile?: string;
  temporalApiKeyFile?: string;
  temporalCredentialsRefresh?: string;
}

/** A file (re-read when it changes) or inline data (TEMPORAL_TLS_*_DATA, *_data in temporal.toml). */
export type Material = { path: string } | { data: Buffer };

export interface TlsSettings {
  serverName?: string;
  /** Server CA; unset: the system's. */
  ca?: Material;
  /** Client certificate and key (mTLS); both or neither. */
  cert?: Material;
  key?: Material;
}

export interface TemporalSettings {
  address: string;
  namespace: string;
  /** Unset: plaintext. */
  tls?: TlsSettings;
  /** Sent as `authorization: Bearer <key>`; a file is re-read when it changes. */
  apiKey?: { value: string } | { path: string };
  /** gRPC metadata sent with every call (TEMPORAL_GRPC_META_*, grpc_meta in temporal.toml). */
  metadata?: Record<string, string>;
  /** How often certificate and API key files are checked for changes. */
  refreshMs?: number;
}

/** The settings to fix, named in every error message. */
export const SETTING = {
  address: '--temporal-address / TEMPORAL_ADDRESS / address in temporal.toml',
  tls: '--temporal-tls / TEMPORAL_TLS / [profile.<name>.tls] in temporal.toml',
  ca: '--temporal-tls-ca-file / TEMPORAL_TLS_SERVER_CA_CERT_PATH / tls.server_ca_cert_path in temporal.toml',
  serverName: '--temporal-tls-server-name / TEMPORAL_TLS_SERVER_NAME / tls.server_name in temporal.toml',
  clientCert:
    '--temporal-tls-cert-file and --temporal-tls-key-file / TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH / tls.client_cert_path and tls.client_key_path in temporal.toml',
  apiKey: '--temporal-api-key-file / ARENA_SOURCE_TEMPORAL_API_KEY_FILE / TEMPORAL_API_KEY / api_key in temporal.toml',
  profile: '--temporal-profile / TEMPORAL_PROFILE, --temporal-config-file / TEMPORAL_CONFIG_FILE',
} as const;

/** A plain connection to `address` (tests, the embedded dev server). */
export function plainSettings(address: string, namespace = DEFAULT_TEMPORAL_NAMESPACE): TemporalSettings {
  return { address, namespace };
}

/**
 * Flags > TEMPORAL_* environment > temporal.toml profile > defaults. TLS is on when
 * any TLS setting or an API key is present (Temporal's rule), unless turned off
 * with --temporal-tls=false / TEMPORAL_TLS=false / tls.disabled.
 */
export function resolveTemporalSettings(flags: TemporalFlags, env: NodeJS.ProcessEnv = process.env): TemporalSettings {
  // Empty variables count as unset (a chart may render `value: ""`).
  const vars = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => !!e[1]));
  const configFile = flags.temporalConfigFile ?? vars.TEMPORAL_CONFIG_FILE;
  if (configFile && !existsSync(configFile)) {
    // envconfig treats a missing file as "no file"; one named explicitly must exist.
    throw new TemporalConnectionError('Config', `Temporal client configuration: ${configFile} does not exist`, SETTING.profile);
  }
  let profile: ClientConfigProfile;
  try {
    profile = loadClientConfigProfile({
      ...(flags.temporalProfile ? { profile: flags.temporalProfile } : {}),
      ...(configFile ? { configSource: { path: configFile } } : {}),
      overrideEnvVars: vars,
    });
  } catch (err) {
    throw new TemporalConnectionError('Config', `Temporal client configuration: ${(err as Error).message}`, SETTING.profile, { cause: err });
  }

  if (/^(1|true)$/i.test(vars.TEMPORAL_TLS_DISABLE_HOST_VERIFICATION ?? '')) {
    // Refused rather than ignored: the TypeScript SDK's TLS settings cannot turn the check off.
    throw new TemporalConnectionError(
      'Config',
      'TEMPORAL_TLS_DISABLE_HOST_VERIFICATION is not supported: the Temporal TypeScript SDK always checks the server certificate and its name; name one the certificate carries instead',
      SETTING.serverName,
    );
  }
  const fromProfile = profile.tls;
  const material = (flag: string | undefined, source: ConfigDataSource | undefined): Material | undefined =>
    flag ? { path: flag } : source && ('path' in source ? { path: source.path } : { data: Buffer.from(source.data) });
  const tls: TlsSettings = {};
  const serverName = flags.temporalTlsServerName ?? fromProfile?.serverName;
  const ca = material(flags.temporalTlsCaFile, fromProfile?.serverCACert);
  const cert = material(flags.temporalTlsCertFile, fromProfile?.clientCert);
  const key = material(flags.temporalTlsKeyFile, fromProfile?.clientKey);
  if (serverName) tls.serverName = serverName;
  if (ca) tls.ca = ca;
  if (cert) tls.cert = cert;
  if (key) tls.key = key;
  if (!cert !== !key) {
    throw new TemporalConnectionError('Config', `Temporal mTLS needs both a client certificate and its key; only the ${cert ? 'certificate' : 'key'} is set`, SETTING.clientCert);
  }

  const apiKey = flags.temporalApiKeyFile ? { path: flags.temporalApiKeyFile } : profile.apiKey ? { value: profile.apiKey } : undefined;
  const anyTls = fromProfile !== undefined || Object.keys(tls).length > 0 || apiKey !== undefined;
  const tlsOn = flags.temporalTls ?? (fromProfile?.disabled === true ? false : anyTls);

  const settings: TemporalSettings = {
    address: flags.temporalAddress ?? profile.address ?? DEFAULT_TEMPORAL_ADDRESS,
    namespace: flags.temporalNamespace ?? profile.namespace ?? DEFAULT_TEMPORAL_NAMESPACE,
    refreshMs: parseTtl(flags.temporalCredentialsRefresh ?? DEFAULT_CREDENTIALS_REFRESH),
  };
  if (tlsOn) settings.tls = tls;
  if (apiKey) settings.apiKey = apiKey;
  if (profile.grpcMeta && Object.keys(profile.grpcMeta).length > 0) settings.metadata = { ...profile.grpcMeta };
  return settings;
}

/** For logs: where things come from, never what they contain. */
export function describeTemporal(s: TemporalSettings): Record<string, unknown> {
  const where = (m?: Material) => (m === undefined ? undefined : 'path' in m ? m.path : 'inline');
  return {
    address: s.address,
    namespace: s.namespace,
    tls: s.tls
      ? {
          ...(s.tls.serverName ? { serverName: s.tls.serverName } : {}),
          ca: where(s.tls.ca) ?? 'system',
          ...(s.tls.cert ? { clientCert: where(s.tls.cert), clientKey: where(s.tls.key) } : {}),
        }
      : false,
    ...(s.apiKey ? { apiKey: 'path' in s.apiKey ? s.apiKey.path : 'set' } : {}),
    ...(s.metadata ? { metadata: Object.keys(s.metadata) } : {}),
  };
}
