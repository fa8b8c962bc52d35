/**
 * Every configuration knob, declared once: flag, environment variable, default,
 * help and the commands that take it. src/cli/main.ts registers the commander
 * options from this table (flag > environment > default, resolved by commander),
 * and the README's configuration table is rendered from it (`npm run gen:readme`;
 * a unit test fails when they differ).
 */
import { MIN_CACHED_WORKFLOWS } from '../workflow-cache.js';

export type CommandName =
  | 'dev'
  | 'worker'
  | 'controller'
  | 'serve'
  | 'apply'
  | 'get'
  | 'history'
  | 'suspend'
  | 'resume'
  | 'reconcile'
  | 'delete'
  | 'search-attributes'
  | 'push';

/** The commands that talk to Temporal (all but push) take the global options. */
export const GLOBAL = 'global' as const;

export interface OptionSpec {
  /** Commander's flag syntax: '--content-root <dir>', '-n, --namespace <namespace>', '--no-watch'. */
  flag: string;
  env?: string;
  /** Shown in help and the README; applied by commander unless `defaultShown` says it is computed. */
  default?: string | number | boolean;
  /** Default as prose when it is computed at run time (not applied by commander). */
  defaultShown?: string;
  help: string;
  commands: ReadonlyArray<CommandName> | typeof GLOBAL;
  parse?: 'int';
  choices?: readonly string[];
  required?: boolean;
  /** Kept out of the README's configuration table (per-invocation flags documented with the command). */
  perCommand?: boolean;
}

const S3: ReadonlyArray<CommandName> = ['worker', 'serve'];
const NS_COMMANDS: ReadonlyArray<CommandName> = ['get', 'history', 'suspend', 'resume', 'reconcile', 'delete'];

export const OPTIONS: readonly OptionSpec[] = [
  // ---- global ----
  // No applied default: `dev` starts its own server unless an address is given.
  { flag: '--temporal-address <host:port>', env: 'TEMPORAL_ADDRESS', defaultShown: '`127.0.0.1:7233`', help: 'Temporal frontend', commands: GLOBAL },
  // Connection settings: Temporal's environment configuration (TEMPORAL_* and the temporal.toml profile,
  // as the `temporal` CLI reads them; src/temporal/settings.ts), these flags over it. No applied
  // defaults here, so a profile's values are not overridden by them.
  { flag: '--temporal-namespace <ns>', env: 'TEMPORAL_NAMESPACE', defaultShown: '`default`', help: 'Temporal namespace', commands: GLOBAL },
  {
    flag: '--temporal-profile <name>',
    env: 'TEMPORAL_PROFILE',
    defaultShown: '`default` (if the file has it)',
    help: 'profile of the Temporal client configuration file to start from (address, namespace, TLS, API key, gRPC metadata)',
    commands: GLOBAL,
  },
  {
    flag: '--temporal-config-file <file>',
    env: 'TEMPORAL_CONFIG_FILE',
    defaultShown: '~/.config/temporalio/temporal.toml (if present)',
    help: "Temporal's client configuration file (TOML, as the `temporal` CLI uses)",
    commands: GLOBAL,
  },
  {
    flag: '--temporal-tls',
    env: 'TEMPORAL_TLS',
    defaultShown: 'on when a TLS setting or an API key is set',
    help: 'connect to Temporal over TLS; TEMPORAL_TLS=false turns it off',
    commands: GLOBAL,
  },
  { flag: '--temporal-tls-ca-file <file>', env: 'TEMPORAL_TLS_SERVER_CA_CERT_PATH', defaultShown: 'system CAs', help: "CA certificate(s) of the Temporal server's certificate", commands: GLOBAL },
  { flag: '--temporal-tls-server-name <name>', env: 'TEMPORAL_TLS_SERVER_NAME', defaultShown: 'the address host', help: "name to verify the Temporal server's certificate against (SNI)", commands: GLOBAL },
  {
    flag: '--temporal-tls-cert-file <file>',
    env: 'TEMPORAL_TLS_CLIENT_CERT_PATH',
    help: 'mTLS client certificate (PEM); re-read when it changes, e.g. when cert-manager renews it',
    commands: GLOBAL,
  },
  { flag: '--temporal-tls-key-file <file>', env: 'TEMPORAL_TLS_CLIENT_KEY_PATH', help: 'private key of the mTLS client certificate (PEM)', commands: GLOBAL },
  {
    flag: '--temporal-api-key-file <file>',
    env: 'ARENA_SOURCE_TEMPORAL_API_KEY_FILE',
    defaultShown: 'TEMPORAL_API_KEY',
    help: 'file holding the Temporal API key (e.g. a mounted Secret); re-read when it changes. Sent as `authorization: Bearer …`, never logged',
    commands: GLOBAL,
  },
  {
    flag: '--temporal-credentials-refresh <duration>',
    env: 'ARENA_SOURCE_TEMPORAL_CREDENTIALS_REFRESH',
    defaultShown: '30s',
    help: 'how often certificate, key and API key files are checked for changes',
    commands: GLOBAL,
  },
  { flag: '--task-queue <name>', env: 'ARENA_SOURCE_TASK_QUEUE', default: 'arena-source', help: 'task queue of workflows and shared activities', commands: GLOBAL },
  {
    flag: '--data-dir <dir>',
    env: 'ARENA_SOURCE_DATA_DIR',
    default: '.arena-source',
    help: 'local mode: artifacts/, status/, resources/ (ConfigMaps, Secrets mode 0600, Namespaces), work/, workspace-content/, temporal.db, git/',
    commands: GLOBAL,
  },

  // ---- dev ----
  { flag: '-s, --sources <paths...>', help: 'YAML files or folders with ArenaSource, ConfigMap, Secret and Namespace documents', commands: ['dev'], required: true, perCommand: true },
  { flag: '--temporal-port <port>', default: 7233, help: 'port of the embedded Temporal server', commands: ['dev'], parse: 'int' },
  { flag: '--ui-port <port>', default: 8233, help: 'port of the Temporal Web UI', commands: ['dev'], parse: 'int' },
  { flag: '--artifact-port <port>', default: 9090, help: 'port of the artifact server', commands: ['dev'], parse: 'int' },
  { flag: '--git-repos <dir>', help: 'serve each folder of DIR as a demo git repository (offline examples)', commands: ['dev'] },
  { flag: '--git-port <port>', default: 9480, help: 'port of the demo git server', commands: ['dev'], parse: 'int' },
  { flag: '--no-watch', help: 'do not re-apply files when they change', commands: ['dev'], perCommand: true },
  { flag: '--once', help: 'exit after the first cycle of every source (non-zero unless all are Ready)', commands: ['dev'], perCommand: true },

  // ---- worker ----
  {
    flag: '--artifact-base-url <url>',
    env: 'ARENA_SOURCE_ARTIFACT_BASE_URL',
    defaultShown: 'http://127.0.0.1:9090',
    help: 'public base URL of the artifact server: the start of status.artifact.url',
    commands: ['worker'],
  },
  { flag: '--max-bundle-bytes <n>', defaultShown: '104857600 (100 MiB)', help: 'largest unpacked bundle accepted', commands: ['worker'], parse: 'int' },
  { flag: '--max-bundle-files <n>', defaultShown: '10000', help: 'most entries in a bundle', commands: ['worker'], parse: 'int' },
  { flag: '--work-dir <dir>', defaultShown: '<data-dir>/work', help: 'scratch space for checkouts', commands: ['worker'] },
  { flag: '--concurrency <n>', defaultShown: '20', help: 'remote activities run at once, and as many local ones (resolve, fetch, pack, upload, status, prune)', commands: ['worker'], parse: 'int' },
  {
    flag: '--max-cached-workflows <n>',
    env: 'ARENA_SOURCE_MAX_CACHED_WORKFLOWS',
    defaultShown: 'from the pod memory limit (cgroup v2 memory.max or v1 memory.limit_in_bytes): (¾ of it − 200 MiB) / 384 KiB; without a limit, as if it were ¼ of the machine memory (at most 2 GiB)',
    help: 'the most source workflows kept in memory between cycles; an evicted one is replayed from its (short) run history at its next cycle. The worker holds this many only while its sources fit and that saves ≥ 4 replays a second (5% of a core), else --min-cached-workflows',
    commands: ['worker'],
    parse: 'int',
  },
  {
    flag: '--min-cached-workflows <n>',
    env: 'ARENA_SOURCE_MIN_CACHED_WORKFLOWS',
    default: MIN_CACHED_WORKFLOWS,
    help: 'the workflow cache kept while a larger one would not pay for itself (sources that do not fit, or cycle too seldom); the same as --max-cached-workflows for a fixed cache',
    commands: ['worker'],
    parse: 'int',
  },
  {
    flag: '--cache-review-interval <duration>',
    env: 'ARENA_SOURCE_CACHE_REVIEW_INTERVAL',
    default: '1m',
    help: 'how often the worker weighs its cycles to choose between the two cache sizes; a change replaces the SDK worker running the workflows (the old one drains)',
    commands: ['worker'],
  },
  {
    flag: '--role <role>',
    env: 'ARENA_SOURCE_WORKER_ROLE',
    default: 'all',
    help: 'tasks this process polls: workflows (workflow code and the local activities it calls: resolve, status, prune), activities (fetch, pack and upload for workflows workers) or all (everything; the fetch, pack and upload then run as local activities too)',
    commands: ['worker'],
    choices: ['all', 'workflows', 'activities'],
  },
  { flag: '--kubernetes', help: 'read ConfigMaps/Secrets/Namespaces from the API server and write status to the ArenaSource resources', commands: ['worker'] },
  { flag: '--kubeconfig <file>', defaultShown: 'in-cluster service account, else KUBECONFIG or ~/.kube/config', help: 'kubeconfig', commands: ['worker', 'controller'] },
  { flag: '--store <kind>', env: 'ARENA_SOURCE_STORE', default: 'fs', help: 'artifact store: fs (<data-dir>/artifacts) or s3', commands: S3, choices: ['fs', 's3'] },
  { flag: '--s3-bucket <bucket>', env: 'ARENA_SOURCE_S3_BUCKET', help: 'S3 bucket of the artifacts', commands: S3 },
  { flag: '--s3-prefix <prefix>', env: 'ARENA_SOURCE_S3_PREFIX', defaultShown: 'none', help: 'key prefix inside the bucket', commands: S3 },
  { flag: '--s3-region <region>', env: 'ARENA_SOURCE_S3_REGION', defaultShown: 'AWS_REGION, else us-east-1', help: 'S3 region', commands: S3 },
  { flag: '--s3-endpoint <url>', env: 'ARENA_SOURCE_S3_ENDPOINT', help: 'endpoint of an S3-compatible server, e.g. http://minio:9000', commands: S3 },
  { flag: '--s3-force-path-style', env: 'ARENA_SOURCE_S3_FORCE_PATH_STYLE', help: 'path-style bucket URLs, for MinIO and most S3-compatible servers', commands: S3 },
  {
    flag: '--redirect-presigned',
    env: 'ARENA_SOURCE_S3_REDIRECT_PRESIGNED',
    help: 'answer GET with a 302 to a 5-minute presigned S3 URL instead of streaming',
    commands: ['serve'],
  },
  {
    flag: '--webhook-secret-file <file>',
    env: 'ARENA_SOURCE_WEBHOOK_SECRET_FILE',
    defaultShown: 'off',
    help: 'secret of the push webhook receiver (POST /hooks/github|gitlab|gitea|generic|registry on the artifact port); unset or a missing file: no receiver',
    commands: ['serve', 'dev'],
  },
  {
    flag: '--webhook-port <port>',
    env: 'ARENA_SOURCE_WEBHOOK_PORT',
    defaultShown: 'the artifact port',
    help: 'serve: answer /hooks/… on this port only (and nothing else there), so it can be exposed without the artifacts',
    commands: ['serve'],
    parse: 'int',
  },
  { flag: '--retention-keep <n>', env: 'ARENA_SOURCE_RETENTION_KEEP', defaultShown: '2', help: 'artifacts kept per source whatever their age', commands: ['worker'], parse: 'int' },
  {
    flag: '--retention-ttl <duration>',
    env: 'ARENA_SOURCE_RETENTION_TTL',
    defaultShown: '1h',
    help: 'how long a replaced artifact (or content version) stays readable',
    commands: ['worker'],
  },
  {
    flag: '--content-root <dir>',
    env: 'ARENA_SOURCE_CONTENT_ROOT',
    defaultShown: 'off (dev: <data-dir>/workspace-content)',
    help: "Omnia's workspace content volume: each artifact is also written as {root}/{workspace}/{namespace}/{targetPath}/.arena/versions/{version}/",
    commands: ['worker', 'dev'],
  },
  {
    flag: '--content-keep <n>',
    env: 'ARENA_SOURCE_CONTENT_KEEP',
    defaultShown: '10',
    help: 'content versions kept per source (HEAD and versions replaced less than the retention TTL ago are kept in addition)',
    commands: ['worker'],
    parse: 'int',
  },
  { flag: '--oras-path <file>', env: 'ORAS_PATH', defaultShown: '~/.cache/arena-source/bin/oras, then PATH', help: 'the oras binary for OCI sources', commands: ['worker', 'push'] },
  { flag: '--oci-ca-file <file>', env: 'ARENA_SOURCE_OCI_CA_FILE', defaultShown: 'system CAs', help: 'extra CA certificates for OCI registries (added to the system ones)', commands: ['worker'] },
  {
    flag: '--metrics-port <port>',
    env: 'ARENA_SOURCE_METRICS_PORT',
    defaultShown: '9464 (worker) / 9465 (controller)',
    help: 'port of /metrics, /healthz and /readyz',
    commands: ['worker', 'controller'],
    parse: 'int',
  },
  { flag: '--metrics-host <host>', env: 'ARENA_SOURCE_METRICS_HOST', default: '127.0.0.1', help: 'interface of /metrics, /healthz and /readyz (0.0.0.0 in a pod)', commands: ['worker', 'controller'] },
  {
    flag: '--shutdown-grace <duration>',
    env: 'ARENA_SOURCE_SHUTDOWN_GRACE',
    default: '30s',
    help: 'on SIGTERM, how long in-flight activities may run before they are cancelled (the process exits by grace + 20 s)',
    commands: ['worker'],
  },

  // ---- controller ----
  { flag: '--watch-namespaces <list>', env: 'ARENA_SOURCE_WATCH_NAMESPACES', defaultShown: 'all', help: 'comma-separated namespaces to watch', commands: ['controller'] },
  { flag: '--resync-seconds <n>', defaultShown: '300', help: 'full re-list interval', commands: ['controller'], parse: 'int' },
  {
    flag: '--reconcile-workers <n>',
    env: 'ARENA_SOURCE_RECONCILE_WORKERS',
    defaultShown: '16',
    help: 'ArenaSources reconciled at once (each is a few API calls and one signal-with-start; never two at once for one source)',
    commands: ['controller'],
    parse: 'int',
  },

  // ---- serve ----
  { flag: '--host <host>', default: '127.0.0.1', help: 'interface the artifact server listens on', commands: ['serve'] },
  { flag: '--port <port>', default: 9090, help: 'port the artifact server listens on', commands: ['serve'], parse: 'int' },

  // ---- per-invocation flags of the client commands ----
  { flag: '-f, --filename <paths...>', help: 'files or folders of YAML', commands: ['apply'], required: true, perCommand: true },
  { flag: '-n, --namespace <namespace>', help: 'Kubernetes namespace of the source (apply: of documents without one)', commands: ['apply', ...NS_COMMANDS], perCommand: true },
  { flag: '-A, --all-namespaces', help: 'list sources in every namespace', commands: ['get'], perCommand: true },
  { flag: '-o, --output <format>', default: 'table', help: 'output format', commands: ['get'], choices: ['table', 'wide', 'json', 'yaml'], perCommand: true },
  { flag: '-o, --output <format>', default: 'table', help: 'output format', commands: ['history'], choices: ['table', 'json'], perCommand: true },
  { flag: '-w, --watch', help: 'after listing, print a row whenever a source changes phase or revision', commands: ['get'], perCommand: true },
  { flag: '--limit <n>', default: 10, help: 'how many cycles', commands: ['history'], parse: 'int', perCommand: true },
  { flag: '--no-wait', help: 'return once the request is sent', commands: ['reconcile'], perCommand: true },
  { flag: '--timeout <seconds>', default: '120', help: 'how long to wait', commands: ['reconcile'], perCommand: true },
  {
    flag: '--username <user>',
    env: 'ARENA_SOURCE_OCI_USERNAME',
    help: 'registry user; the password comes from --password-stdin or ARENA_SOURCE_OCI_PASSWORD',
    commands: ['push'],
    perCommand: true,
  },
  { flag: '--password-stdin', help: 'read the registry password from standard input', commands: ['push'], perCommand: true },
  { flag: '--docker-config <file>', help: 'credentials as a Docker config.json ({"auths": …})', commands: ['push'], perCommand: true },
  { flag: '--insecure', help: 'allow plain HTTP or unverified TLS', commands: ['push'], perCommand: true },
  { flag: '--ca-file <file>', help: 'extra CA certificate(s) for the registry', commands: ['push'], perCommand: true },
  { flag: '--source <url>', help: 'org.opencontainers.image.source annotation (e.g. the git URL)', commands: ['push'], perCommand: true },
  { flag: '--revision <rev>', help: 'org.opencontainers.image.revision annotation (e.g. main@sha1:…)', commands: ['push'], perCommand: true },
];

/** Knobs read from the environment only (no flag). */
export const ENV_ONLY: ReadonlyArray<{ env: string; default: string; help: string }> = [
  { env: 'TEMPORAL_CLI_PATH', default: '~/.cache/arena-source/bin/temporal, then PATH', help: 'the temporal binary `dev` starts' },
  { env: 'ARENA_SOURCE_LOG_LEVEL', default: 'info (worker, controller), warn (dev, tests)', help: 'pino level of the JSON logs' },
  { env: 'ARENA_SOURCE_GIT_CACHE', default: 'on', help: '`off` disables the per-worker repository cache (src/sources/git/cache.ts) and the archive memo built on it (src/bundle/archive-memo.ts)' },
  { env: 'ARENA_SOURCE_GIT_CACHE_MAX_BYTES', default: '2147483648 (2 GiB)', help: 'soft bound on the bytes of a worker\'s git mirrors: least recently used ones are removed beyond it' },
  { env: 'ARENA_SOURCE_OCI_PASSWORD', default: '—', help: '`push`: the registry password (or --password-stdin)' },
  { env: 'TEMPORAL_API_KEY', default: '—', help: 'Temporal API key (e.g. Temporal Cloud); implies TLS. A file is better for rotation: --temporal-api-key-file' },
  {
    env: 'TEMPORAL_TLS_CLIENT_CERT_DATA, TEMPORAL_TLS_CLIENT_KEY_DATA, TEMPORAL_TLS_SERVER_CA_CERT_DATA',
    default: '—',
    help: 'the PEM itself instead of a path (not re-read)',
  },
  { env: 'TEMPORAL_GRPC_META_<NAME>', default: '—', help: 'gRPC metadata header <name> (lower-cased, `_` → `-`) sent with every Temporal call; also `grpc_meta` in temporal.toml' },
];

/** The applied default of an option, e.g. optionDefault('--shutdown-grace'). */
export function optionDefault(long: string): string | number | boolean | undefined {
  return OPTIONS.find((o) => longFlag(o) === long)?.default;
}

export function optionsFor(command: CommandName): OptionSpec[] {
  return OPTIONS.filter((o) => o.commands !== GLOBAL && o.commands.includes(command));
}

export const GLOBAL_OPTIONS: OptionSpec[] = OPTIONS.filter((o) => o.commands === GLOBAL);

/** The long flag without its argument: '--content-root'. */
export function longFlag(o: Pick<OptionSpec, 'flag'>): string {
  return /(--[a-z0-9-]+)/.exec(o.flag)![1]!;
}

export const CONFIG_TABLE_START = '<!-- config-table:start (generated from src/cli/options.ts: npm run gen:readme) -->';
export const CONFIG_TABLE_END = '<!-- config-table:end -->';

/** The README's configuration table (every knob that is not per-invocation). */
export function renderConfigTable(): string {
  const rows = ['| flag | env | default | commands | meaning |', '|---|---|---|---|---|'];
  for (const o of OPTIONS.filter((x) => !x.perCommand)) {
    const def = o.defaultShown ?? (o.default === undefined ? '—' : `\`${String(o.default)}\``);
    const commands = o.commands === GLOBAL ? 'all but `push`' : o.commands.map((c) => `\`${c}\``).join(', ');
    rows.push(`| \`${longFlag(o)}\` | ${o.env ? `\`${o.env}\`` : '—'} | ${def} | ${commands} | ${o.help} |`);
  }
  for (const e of ENV_ONLY) rows.push(`| — | \`${e.env}\` | ${e.default} | — | ${e.help} |`);
  return rows.join('\n');
}
