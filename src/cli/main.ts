/**
 * The `arena-source` command line: thin — parse flags, call the modules. Options,
 * their environment variables and defaults come from one table (options.ts).
 */
import { Command } from 'commander';
import { addOptions, resolveOptions } from './option-parsing.js';
import { GLOBAL_OPTIONS, optionsFor, type CommandName } from './options.js';
import type { devCommand } from './commands/dev.js';
import type { pushCommand } from './commands/push.js';
import type { controllerCommand } from './commands/controller.js';
import type { serveCommand } from './commands/serve.js';
import type { workerCommand } from './commands/worker.js';
import type {
  applyCommand,
  deleteCommand,
  getCommand,
  historyCommand,
  searchAttributesCommand,
  reconcileCommand,
  resumeCommand,
  suspendCommand,
} from './commands/sources.js';
import { keepJemallocToThisProcess } from './preload.js';
import { UsageError } from './usage-error.js';

/** What the commands do; tests swap them to see what the parser hands over. */
export interface Handlers {
  dev: typeof devCommand;
  worker: typeof workerCommand;
  controller: typeof controllerCommand;
  serve: typeof serveCommand;
  apply: typeof applyCommand;
  get: typeof getCommand;
  history: typeof historyCommand;
  suspend: typeof suspendCommand;
  resume: typeof resumeCommand;
  reconcile: typeof reconcileCommand;
  delete: typeof deleteCommand;
  searchAttributes: typeof searchAttributesCommand;
  push: typeof pushCommand;
}

/**
 * Each command's module is loaded when it runs: a process carries only what its command uses
 * (the controller neither the Temporal worker nor the AWS SDK; the CLI no Kubernetes client).
 */
const sources = () => import('./commands/sources.js');
const HANDLERS: Handlers = {
  dev: async (...a) => (await import('./commands/dev.js')).devCommand(...a),
  worker: async (...a) => (await import('./commands/worker.js')).workerCommand(...a),
  controller: async (...a) => (await import('./commands/controller.js')).controllerCommand(...a),
  serve: async (...a) => (await import('./commands/serve.js')).serveCommand(...a),
  apply: async (...a) => (await sources()).applyCommand(...a),
  get: async (...a) => (await sources()).getCommand(...a),
  history: async (...a) => (await sources()).historyCommand(...a),
  suspend: async (...a) => (await sources()).suspendCommand(...a),
  resume: async (...a) => (await sources()).resumeCommand(...a),
  reconcile: async (...a) => (await sources()).reconcileCommand(...a),
  delete: async (...a) => (await sources()).deleteCommand(...a),
  searchAttributes: async (...a) => (await sources()).searchAttributesCommand(...a),
  push: async (...a) => (await import('./commands/push.js')).pushCommand(...a),
};

/** The whole CLI; every option comes from the table in options.ts. */
export function buildProgram(handlers: Handlers = HANDLERS): Command {
  const program = new Command();
  program
    .name('arena-source')
    .description('A source controller for PromptKit bundles on Temporal: git, OCI, ConfigMap and workspace sources → reproducible artifacts.')
    .version('0.1.0')
    .showHelpAfterError();
  addOptions(program, GLOBAL_OPTIONS);
  const globals = () => resolveOptions(program, GLOBAL_OPTIONS);
  // A command's own options, resolved, over the global ones.
  const command = (name: CommandName, description: string) => {
    const cmd = program.command(name).description(description);
    addOptions(cmd, optionsFor(name));
    return cmd;
  };
  const flags = (cmd: Command, name: CommandName): any => ({ ...globals(), ...resolveOptions(cmd, optionsFor(name)) });

  command('dev', 'run everything locally: Temporal dev server + UI, worker, artifact server, content volume; apply and watch YAML sources').action(
    (_opts, cmd: Command) => handlers.dev(flags(cmd, 'dev')),
  );
  command('worker', 'run a worker: executes the fetch, pack, upload and status activities and the source workflows').action((_opts, cmd: Command) =>
    handlers.worker(flags(cmd, 'worker')),
  );
  command('controller', 'watch ArenaSource resources in Kubernetes and map them onto workflows (finalizers, suspend, reconcile annotations)').action(
    (_opts, cmd: Command) => handlers.controller(flags(cmd, 'controller')),
  );
  command('serve', 'run the artifact server: GET /<namespace>/<name>/<sha256>.tar.gz, /healthz').action((_opts, cmd: Command) =>
    handlers.serve(flags(cmd, 'serve')),
  );
  command('apply', 'create or update sources (and local ConfigMaps/Secrets/Namespaces) from YAML').action((_opts, cmd: Command) => {
    const f = flags(cmd, 'apply');
    return handlers.apply(f.filename, f);
  });
  command('get', 'list sources, or show one (table: NAME TYPE PHASE REVISION AGE)')
    .argument('[name]', 'source name')
    .action((name: string | undefined, _opts, cmd: Command) => handlers.get(name, flags(cmd, 'get')));
  command('history', "a source's last cycles from Temporal: time, result (fetched/noop/failed), duration, revision")
    .argument('<name>')
    .action((name: string, _opts, cmd: Command) => handlers.history(name, flags(cmd, 'history')));
  command('suspend', 'stop reconciling a source (its last artifact stays served)')
    .argument('<name>')
    .action((name: string, _opts, cmd: Command) => handlers.suspend(name, flags(cmd, 'suspend')));
  command('resume', 'resume a suspended source (reconciles at once)')
    .argument('<name>')
    .action((name: string, _opts, cmd: Command) => handlers.resume(name, flags(cmd, 'resume')));
  command('reconcile', 'fetch a source now and wait for the result')
    .argument('<name>')
    .action((name: string, _opts, cmd: Command) => handlers.reconcile(name, flags(cmd, 'reconcile')));
  command('delete', 'delete a source: stops its workflow and removes its artifacts and content versions')
    .argument('<name>')
    .action((name: string, _opts, cmd: Command) => handlers.delete(name, flags(cmd, 'delete')));
  command('search-attributes', 'register the ArenaSource* search attributes in the Temporal namespace (idempotent)').action(() =>
    handlers.searchAttributes(globals()),
  );
  command('push', 'publish a bundle directory as an OCI artifact (reproducible tar.gz layer, Flux media types)')
    .argument('<dir>', 'bundle directory')
    .argument('<url>', 'oci://registry/repository:tag')
    .action((dir: string, url: string, _opts, cmd: Command) => handlers.push(dir, url, resolveOptions(cmd, optionsFor('push')) as never));
  return program;
}

export async function main(argv: string[]): Promise<void> {
  keepJemallocToThisProcess();
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(err.message);
    } else {
      console.error(`error: ${(err as Error).message ?? String(err)}`);
    }
    process.exitCode = 1;
  }
}
