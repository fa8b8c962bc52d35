/**
 * The `arena-source` command line: thin — parse flags, call the modules.
 * Every flag also reads an environment variable where a deployment needs one.
 */
import { Command, Option } from 'commander';
import { DEFAULTS, intOption } from './config.js';
import { devCommand } from './commands/dev.js';
import { pushCommand } from './commands/push.js';
import { DEFAULT_SHUTDOWN_GRACE, controllerCommand, serveCommand, workerCommand } from './commands/services.js';
import {
  applyCommand,
  deleteCommand,
  getCommand,
  historyCommand,
  searchAttributesCommand,
  reconcileCommand,
  resumeCommand,
  suspendCommand,
} from './commands/sources.js';
import { UsageError } from './usage-error.js';

const program = new Command();
program
  .name('arena-source')
  .description('A source controller for PromptKit bundles on Temporal: git, OCI and ConfigMap sources → reproducible artifacts.')
  .version('0.1.0')
  .option('--temporal-address <host:port>', `Temporal frontend (env TEMPORAL_ADDRESS, default ${DEFAULTS.temporalAddress})`)
  .option('--temporal-namespace <ns>', `Temporal namespace (env TEMPORAL_NAMESPACE, default ${DEFAULTS.temporalNamespace})`)
  .option('--task-queue <name>', `Temporal task queue (env ARENA_SOURCE_TASK_QUEUE, default ${DEFAULTS.taskQueue})`)
  .option('--data-dir <dir>', `local state: artifacts, status, ConfigMaps/Secrets (env ARENA_SOURCE_DATA_DIR, default ${DEFAULTS.dataDir})`)
  .showHelpAfterError();

const globals = () => program.opts();
const ns = () => new Option('-n, --namespace <namespace>', 'Kubernetes namespace of the source').default('default');

program
  .command('dev')
  .description('run everything locally: Temporal dev server + UI, worker, artifact server; apply and watch YAML sources')
  .requiredOption('-s, --sources <paths...>', 'YAML files or folders with ArenaSource, ConfigMap and Secret documents')
  .option('--temporal-port <port>', 'port of the embedded Temporal server', intOption, 7233)
  .option('--ui-port <port>', 'port of the Temporal Web UI', intOption, DEFAULTS.temporalUiPort)
  .option('--artifact-port <port>', 'port of the artifact server', intOption, DEFAULTS.artifactPort)
  .option('--git-repos <dir>', 'serve each folder of DIR as a demo git repository (offline examples)')
  .option('--git-port <port>', 'port of the demo git server', intOption, DEFAULTS.demoGitPort)
  .option('--no-watch', 'do not re-apply files when they change')
  .option('--once', 'exit after the first cycle of every source (non-zero unless all are Ready)')
  .option('--content-root <dir>', "Omnia's workspace content volume (default <data-dir>/workspace-content)")
  .action((flags) => devCommand({ ...globals(), ...flags }));

program
  .command('worker')
  .description('run a worker: executes the fetch, pack, upload and status activities and the source workflows')
  .option('--artifact-base-url <url>', 'public base URL of the artifact server (env ARENA_SOURCE_ARTIFACT_BASE_URL)')
  .option('--max-bundle-bytes <n>', 'largest unpacked bundle accepted (default 100 MiB)', intOption)
  .option('--max-bundle-files <n>', 'most entries in a bundle (default 10000)', intOption)
  .option('--work-dir <dir>', 'scratch space for checkouts (default <data-dir>/work)')
  .option('--concurrency <n>', 'activities run at once (default 20)', intOption)
  .option('--max-cached-workflows <n>', 'source workflows kept in memory between cycles (env ARENA_SOURCE_MAX_CACHED_WORKFLOWS; default: the SDK\'s, sized to the heap)', intOption)
  .option('--kubernetes', 'read ConfigMaps/Secrets from the API server and write status to the ArenaSource resources')
  .option('--kubeconfig <file>', 'kubeconfig (default: in-cluster service account, else KUBECONFIG or ~/.kube/config)')
  .addOption(new Option('--store <kind>', 'artifact store: fs (<data-dir>/artifacts) or s3 (env ARENA_SOURCE_STORE; default fs)').choices(['fs', 's3']))
  .option('--s3-bucket <bucket>', 'S3 bucket of the artifacts (env ARENA_SOURCE_S3_BUCKET)')
  .option('--s3-prefix <prefix>', 'key prefix inside the bucket (env ARENA_SOURCE_S3_PREFIX; default none)')
  .option('--s3-region <region>', 'S3 region (env ARENA_SOURCE_S3_REGION, else AWS_REGION; default us-east-1)')
  .option('--s3-endpoint <url>', 'endpoint of an S3-compatible server, e.g. http://minio:9000 (env ARENA_SOURCE_S3_ENDPOINT)')
  .option('--s3-force-path-style', 'path-style bucket URLs, for MinIO and most S3-compatible servers (env ARENA_SOURCE_S3_FORCE_PATH_STYLE=true)')
  .option('--retention-keep <n>', 'artifacts kept per source whatever their age (env ARENA_SOURCE_RETENTION_KEEP; default 2)', intOption)
  .option('--retention-ttl <duration>', 'how long a replaced artifact or content version stays (env ARENA_SOURCE_RETENTION_TTL; default 1h)')
  .option('--content-root <dir>', "write each artifact's files as a version on Omnia's workspace content volume under DIR (env ARENA_SOURCE_CONTENT_ROOT; default off)")
  .option('--content-keep <n>', 'content versions kept per source, besides HEAD and young replaced ones (env ARENA_SOURCE_CONTENT_KEEP; default 10)', intOption)
  .option('--oras-path <file>', 'the oras binary (env ORAS_PATH)')
  .option('--oci-ca-file <file>', 'extra CA certificate(s) for OCI registries (env ARENA_SOURCE_OCI_CA_FILE)')
  .option('--metrics-port <port>', 'port of /metrics, /healthz and /readyz (env ARENA_SOURCE_METRICS_PORT; default 9464)', intOption)
  .option('--metrics-host <host>', 'interface of /metrics, /healthz and /readyz (env ARENA_SOURCE_METRICS_HOST; default 127.0.0.1)')
  .option('--shutdown-grace <duration>', `on SIGTERM, how long in-flight activities may run before they are cancelled (env ARENA_SOURCE_SHUTDOWN_GRACE; default ${DEFAULT_SHUTDOWN_GRACE})`)
  .action((flags) => workerCommand({ ...globals(), ...flags }));

program
  .command('controller')
  .description('watch ArenaSource resources in Kubernetes and map them onto workflows (finalizers, suspend, reconcile annotation)')
  .option('--kubeconfig <file>', 'kubeconfig (default: in-cluster service account, else KUBECONFIG or ~/.kube/config)')
  .option('--watch-namespaces <list>', 'comma-separated namespaces to watch (env ARENA_SOURCE_WATCH_NAMESPACES; default all)')
  .option('--resync-seconds <n>', 'full re-list interval (default 300)', intOption)
  .option('--metrics-port <port>', 'port of /metrics, /healthz and /readyz (env ARENA_SOURCE_METRICS_PORT; default 9465)', intOption)
  .option('--metrics-host <host>', 'interface of /metrics, /healthz and /readyz (env ARENA_SOURCE_METRICS_HOST; default 127.0.0.1)')
  .action((flags) => controllerCommand({ ...globals(), ...flags }));

program
  .command('serve')
  .description('run the artifact server: GET /<namespace>/<name>/<sha256>.tar.gz, /healthz')
  .option('--host <host>', 'interface to listen on', DEFAULTS.artifactHost)
  .option('--port <port>', 'port to listen on', intOption, DEFAULTS.artifactPort)
  .addOption(new Option('--store <kind>', 'artifact store: fs (<data-dir>/artifacts) or s3 (env ARENA_SOURCE_STORE; default fs)').choices(['fs', 's3']))
  .option('--s3-bucket <bucket>', 'S3 bucket of the artifacts (env ARENA_SOURCE_S3_BUCKET)')
  .option('--s3-prefix <prefix>', 'key prefix inside the bucket (env ARENA_SOURCE_S3_PREFIX; default none)')
  .option('--s3-region <region>', 'S3 region (env ARENA_SOURCE_S3_REGION, else AWS_REGION; default us-east-1)')
  .option('--s3-endpoint <url>', 'endpoint of an S3-compatible server, e.g. http://minio:9000 (env ARENA_SOURCE_S3_ENDPOINT)')
  .option('--s3-force-path-style', 'path-style bucket URLs, for MinIO and most S3-compatible servers (env ARENA_SOURCE_S3_FORCE_PATH_STYLE=true)')
  .option('--redirect-presigned', 'answer GET with a 302 to a 5-minute presigned S3 URL instead of streaming (env ARENA_SOURCE_S3_REDIRECT_PRESIGNED=true)')
  .action((flags) => serveCommand({ ...globals(), ...flags }));

program
  .command('apply')
  .description('create or update sources (and local ConfigMaps/Secrets) from YAML')
  .requiredOption('-f, --filename <paths...>', 'files or folders of YAML')
  .addOption(ns().default(undefined as unknown as string))
  .action((flags) => applyCommand(flags.filename, { ...globals(), ...flags }));

program
  .command('get')
  .description('list sources, or show one (table: NAME TYPE PHASE REVISION AGE)')
  .argument('[name]', 'source name')
  .addOption(ns())
  .option('-A, --all-namespaces', 'list sources in every namespace')
  .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'wide', 'json', 'yaml']).default('table'))
  .option('-w, --watch', 'after listing, print a row whenever a source changes phase or revision')
  .action((name, flags) => getCommand(name, { ...globals(), ...flags }));

program
  .command('history')
  .description("a source's last cycles from Temporal: time, result (fetched/noop/failed), duration, revision")
  .argument('<name>')
  .addOption(ns())
  .option('--limit <n>', 'how many cycles', intOption, 10)
  .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'))
  .action((name, flags) => historyCommand(name, { ...globals(), ...flags }));

program
  .command('suspend')
  .description('stop reconciling a source (its last artifact stays served)')
  .argument('<name>')
  .addOption(ns())
  .action((name, flags) => suspendCommand(name, { ...globals(), ...flags }));

program
  .command('resume')
  .description('resume a suspended source (reconciles at once)')
  .argument('<name>')
  .addOption(ns())
  .action((name, flags) => resumeCommand(name, { ...globals(), ...flags }));

program
  .command('reconcile')
  .description('fetch a source now and wait for the result')
  .argument('<name>')
  .addOption(ns())
  .option('--no-wait', 'return once the request is sent')
  .option('--timeout <seconds>', 'how long to wait', '120')
  .action((name, flags) => reconcileCommand(name, { ...globals(), ...flags }));

program
  .command('delete')
  .description("delete a source: stops its workflow and removes its artifacts")
  .argument('<name>')
  .addOption(ns())
  .action((name, flags) => deleteCommand(name, { ...globals(), ...flags }));

program
  .command('search-attributes')
  .description('register the ArenaSource* search attributes in the Temporal namespace (idempotent)')
  .action(() => searchAttributesCommand(globals()));

program
  .command('push')
  .description('publish a bundle directory as an OCI artifact (reproducible tar.gz layer, Flux media types)')
  .argument('<dir>', 'bundle directory')
  .argument('<url>', 'oci://registry/repository:tag')
  .option('--username <user>', 'registry user (env ARENA_SOURCE_OCI_USERNAME); the password comes from --password-stdin or ARENA_SOURCE_OCI_PASSWORD')
  .option('--password-stdin', 'read the registry password from standard input')
  .option('--docker-config <file>', 'credentials as a Docker config.json ({"auths": …})')
  .option('--insecure', 'allow plain HTTP or unverified TLS')
  .option('--ca-file <file>', 'extra CA certificate(s) for the registry')
  .option('--source <url>', 'org.opencontainers.image.source annotation (e.g. the git URL)')
  .option('--revision <rev>', 'org.opencontainers.image.revision annotation (e.g. main@sha1:…)')
  .option('--oras-path <file>', 'the oras binary (env ORAS_PATH)')
  .action((dir, url, flags) => pushCommand(dir, url, flags));

export async function main(argv: string[]): Promise<void> {
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(err.message);
    } else {
      console.error(`error: ${(err as Error).message ?? String(err)}`);
    }
    process.exitCode = 1;
  }
}
