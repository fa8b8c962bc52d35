/**
 * The `arena-source` command line: thin — parse flags, call the modules. Options,
 * their environment variables and defaults come from one table (options.ts).
 */
import { Command } from 'commander';
import { addOptions, resolveOptions } from './option-parsing.js';
import { GLOBAL_OPTIONS, optionsFor, type CommandName } from './options.js';
import { devCommand } from './commands/dev.js';
import { pushCommand } from './commands/push.js';
import { controllerCommand, serveCommand, workerCommand } from './commands/services.js';
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

const HANDLERS: Handlers = {
  dev: devCommand,
  worker: workerCommand,
  controller: controllerCommand,
  serve: serveCommand,
  apply: applyCommand,
  get: getCommand,
  history: historyCommand,
  suspend: suspendCommand,
  resume: resumeCommand,
  reconcile: reconcileCommand,
  delete: deleteCommand,
  searchAttributes: searchAttributesCommand,
  push: pushCommand,
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
