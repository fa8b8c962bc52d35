/** apply, get, suspend, resume, reconcile, delete: the kubectl/flux-like verbs. */
import type { Client } from '@temporalio/client';
import type { ArenaSource } from '../../api/schema.js';
import { DEFAULT_NAMESPACE } from '../../api/validate.js';
import {
  connectClient,
  deleteSource,
  getSource,
  listSourceRefs,
  reconcileSource,
  resumeSource,
  sourceHandle,
  suspendSource,
} from '../../client.js';
import { applyManifests } from '../../local/apply.js';
import { localPaths } from '../../local/paths.js';
import { loadManifests } from '../../manifests/load.js';
import { LocalResourceStore } from '../../resources/local-store.js';
import type { SourceRef } from '../../api/source-ref.js';
import { globalOptions, temporalSettingsFrom, type GlobalOptions } from '../config.js';
import { TemporalConnectionError } from '../../errors.js';
import { UsageError } from '../usage-error.js';
import { formatSources, table, type OutputFormat } from '../format.js';
import { cycleHistory } from '../../history.js';
import { registerSearchAttributes } from '../../search-attributes-setup.js';


async function withClient<T>(flags: Partial<GlobalOptions>, fn: (client: Client, opts: GlobalOptions) => Promise<T>): Promise<T> {
  const opts = globalOptions(flags);
  const temporal = temporalSettingsFrom(flags);
  let client: Client;
  try {
    client = await connectClient(temporal);
  } catch (err) {
    // Unreachable: perhaps nothing runs yet. TLS, certificate and API key problems say what to set.
    if (err instanceof TemporalConnectionError && err.problem !== 'Unreachable') throw err;
    throw new UsageError(`${(err as Error).message}\nStart a local Temporal with \`arena-source dev\`, or point at yours.`);
  }
  try {
    return await fn(client, { ...opts, temporalAddress: temporal.address, temporalNamespace: temporal.namespace });
  } finally {
    await client.connection.close();
  }
}

/** Queries fail fast when no worker answers, instead of hanging. */
async function query(client: Client, ref: SourceRef): Promise<ArenaSource> {
  try {
    // A deleted source's workflow has completed; Temporal would still answer queries from its history.
    const description = await sourceHandle(client, ref).describe();
    if (description.status.name !== 'RUNNING') throw new Error('not found');
    return await client.withDeadline(Date.now() + 10_000, () => getSource(client, ref));
  } catch (err) {
    throw new UsageError(`arenasource ${ref.namespace}/${ref.name}: ${describeQueryError(err)}`);
  }
}

function describeQueryError(err: unknown): string {
  const message = (err as Error).message ?? String(err);
  if (/not found/i.test(message)) return 'not found';
  if (/deadline|timeout/i.test(message)) return 'no worker answered (is `arena-source worker` or `dev` running?)';
  return message;
}

export async function applyCommand(files: string[], flags: Partial<GlobalOptions> & { namespace?: string }): Promise<void> {
  if (files.length === 0) throw new UsageError('apply needs -f FILE (a file or a folder of YAML)');
  const manifests = await loadManifests(files, flags.namespace ?? DEFAULT_NAMESPACE);
  if (manifests.problems.length > 0) {
    throw new UsageError(`nothing applied; fix these first:\n  ${manifests.problems.join('\n  ')}`);
  }
  await withClient(flags, async (client, opts) => {
    const resources = new LocalResourceStore(localPaths(opts.dataDir).resources);
    for (const line of await applyManifests(client, opts.taskQueue, resources, manifests)) console.log(line);
  });
}

export interface GetFlags extends Partial<GlobalOptions> {
  namespace?: string;
  allNamespaces?: boolean;
  output?: string;
  watch?: boolean;
}

export async function getCommand(name: string | undefined, flags: GetFlags): Promise<void> {
  const format = (flags.output ?? 'table') as OutputFormat;
  if (!['table', 'wide', 'json', 'yaml'].includes(format)) throw new UsageError(`-o must be json, yaml or wide (got ${format})`);
  await withClient(flags, async (client) => {
    const namespace = flags.namespace ?? DEFAULT_NAMESPACE;
    if (name) {
      const source = await query(client, { namespace, name });
      process.stdout.write(formatSources([source], format, { single: true }));
      return;
    }
    const list = async () => {
      const refs = await listSourceRefs(client, flags.allNamespaces ? undefined : namespace);
      return (await Promise.allSettled(refs.map((ref) => query(client, ref))))
        .filter((r): r is PromiseFulfilledResult<ArenaSource> => r.status === 'fulfilled')
        .map((r) => r.value);
    };
    const sources = await list();
    if (sources.length === 0 && format !== 'json' && format !== 'yaml' && !flags.watch) {
      console.error(flags.allNamespaces ? 'No ArenaSources found.' : `No ArenaSources found in ${namespace} namespace.`);
      return;
    }
    process.stdout.write(formatSources(sources, format, { allNamespaces: flags.allNamespaces }));
    if (flags.watch) await watchSources(list, sources, format, flags.allNamespaces === true);
  });
}

/** Like `kubectl get -w`: after the first table, one more row each time a source's phase or revision changes. */
async function watchSources(list: () => Promise<ArenaSource[]>, first: ArenaSource[], format: OutputFormat, allNamespaces: boolean) {
  const seen = new Map(first.map((s) => [key(s), fingerprint(s)]));
  let stop = false;
  process.once('SIGINT', () => (stop = true));
  while (!stop) {
    await new Promise((r) => setTimeout(r, 1_000));
    for (const s of await list().catch(() => [] as ArenaSource[])) {
      if (seen.get(key(s)) === fingerprint(s)) continue;
      seen.set(key(s), fingerprint(s));
      const rows = formatSources([s], format === 'wide' ? 'wide' : 'table', { allNamespaces }).split('\n');
      process.stdout.write(`${rows[1]}\n`);
    }
  }
}

const key = (s: ArenaSource) => `${s.metadata.namespace}/${s.metadata.name}`;
const fingerprint = (s: ArenaSource) => `${s.status?.phase}|${s.status?.artifact?.revision}|${s.spec.suspend}`;

export async function historyCommand(name: string, flags: Partial<GlobalOptions> & { namespace?: string; limit?: number; output?: string }) {
  await withClient(flags, async (client) => {
    const ref = { namespace: flags.namespace ?? DEFAULT_NAMESPACE, name };
    let records;
    try {
      records = await cycleHistory(client, ref, flags.limit ?? 10);
    } catch (err) {
      throw new UsageError(`arenasource ${ref.namespace}/${name}: ${describeQueryError(err)}`);
    }
    if (flags.output === 'json') {
      process.stdout.write(`${JSON.stringify(records, null, 2)}\n`);
      return;
    }
    const rows = records.map((r) => [r.time, r.result, `${(r.durationMs / 1000).toFixed(2)}s`, r.phase, r.revision, r.result === 'failed' ? r.message : '']);
    process.stdout.write(table([['TIME', 'RESULT', 'DURATION', 'PHASE', 'REVISION', 'MESSAGE'], ...rows]));
  });
}

export async function suspendCommand(name: string, flags: Partial<GlobalOptions> & { namespace?: string }): Promise<void> {
  await withClient(flags, async (client) => {
    const ref = { namespace: flags.namespace ?? DEFAULT_NAMESPACE, name };
    await query(client, ref);
    await suspendSource(client, ref);
    console.log(`arenasource ${ref.namespace}/${name} suspended`);
  });
}

export async function resumeCommand(name: string, flags: Partial<GlobalOptions> & { namespace?: string }): Promise<void> {
  await withClient(flags, async (client) => {
    const ref = { namespace: flags.namespace ?? DEFAULT_NAMESPACE, name };
    await query(client, ref);
    await resumeSource(client, ref);
    console.log(`arenasource ${ref.namespace}/${name} resumed`);
  });
}

export async function reconcileCommand(
  name: string,
  flags: Partial<GlobalOptions> & { namespace?: string; wait?: boolean; timeout?: string },
): Promise<void> {
  await withClient(flags, async (client) => {
    const ref = { namespace: flags.namespace ?? DEFAULT_NAMESPACE, name };
    const before = await query(client, ref);
    if (before.spec.suspend) throw new UsageError(`arenasource ${ref.namespace}/${name} is suspended; resume it first`);
    const requestedAt = new Date().toISOString();
    await reconcileSource(client, ref, requestedAt);
    console.log(`► annotating arenasource ${ref.namespace}/${name} for reconciliation`);
    if (flags.wait === false) return;
    const deadline = Date.now() + Number.parseInt(flags.timeout ?? '120', 10) * 1000;
    for (;;) {
      const now = await query(client, ref);
      if (now.status?.lastHandledReconcileAt === requestedAt) {
        const ready = now.status.conditions?.find((c) => c.type === 'Ready');
        if (now.status.phase === 'Ready') {
          console.log(`✔ fetched revision ${now.status.artifact?.revision ?? ''}`);
          return;
        }
        throw new UsageError(`✗ ${ready?.reason ?? now.status.phase}: ${ready?.message ?? ''}`);
      }
      if (Date.now() > deadline) throw new UsageError('✗ timed out waiting for the reconciliation');
      await new Promise((r) => setTimeout(r, 500));
    }
  });
}

export async function deleteCommand(name: string, flags: Partial<GlobalOptions> & { namespace?: string }): Promise<void> {
  await withClient(flags, async (client) => {
    const ref = { namespace: flags.namespace ?? DEFAULT_NAMESPACE, name };
    const existed = await deleteSource(client, ref);
    if (!existed) throw new UsageError(`arenasource ${ref.namespace}/${name} not found`);
    console.log(`arenasource.omnia.altairalabs.ai "${name}" deleted`);
  });
}


export async function searchAttributesCommand(flags: Partial<GlobalOptions>): Promise<void> {
  await withClient(flags, async (client, opts) => {
    const added = await registerSearchAttributes(client);
    console.log(added.length ? `registered ${added.join(', ')} in ${opts.temporalNamespace}` : `all ArenaSource search attributes exist in ${opts.temporalNamespace}`);
  });
}
