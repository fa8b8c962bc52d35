/**
 * `arena-source dev`: the embedded default. A local Temporal dev server with its
 * Web UI, a worker, the artifact server, local storage, the sources from YAML
 * files (re-applied when they change) and, optionally, an offline demo git server.
 */
import { watch } from 'chokidar';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { ArenaSource } from '../../api/schema.js';
import { getSource } from '../../client.js';
import { startDemoGit } from '../../dev/demo-git/start.js';
import { startTemporalDevServer, type TemporalDevServer } from '../../dev/temporal-server.js';
import { applyManifests } from '../../local/apply.js';
import { startLocalStack, type LocalStack } from '../../local/stack.js';
import { loadManifests } from '../../manifests/load.js';
import { DEFAULTS, globalOptions, temporalSettingsFrom, type GlobalOptions } from '../config.js';
import { formatSources } from '../format.js';
import { UsageError } from '../usage-error.js';
import { loadWebhookSecret } from '../../webhooks/secret.js';

export interface DevFlags extends Partial<GlobalOptions> {
  sources: string[];
  temporalPort?: number;
  uiPort?: number;
  artifactPort?: number;
  artifactHost?: string;
  gitRepos?: string;
  gitPort?: number;
  watch?: boolean;
  /** Exit after the first apply settles (used by tests and CI smoke checks). */
  once?: boolean;
  /** Omnia's workspace content volume; default <data-dir>/workspace-content. */
  contentRoot?: string;
  /** The push webhook receiver's secret; unset: no receiver. */
  webhookSecretFile?: string;
}

export async function devCommand(flags: DevFlags): Promise<void> {
  const opts = globalOptions(flags);
  await mkdir(opts.dataDir, { recursive: true });
  const cleanups: Array<() => Promise<unknown>> = [];
  const stop = async () => {
    // Idempotent: the --once path stops early and the finally block stops again.
    while (cleanups.length > 0) await cleanups.pop()!().catch((err) => console.error(String(err)));
  };
  try {
    const useExisting = flags.temporalAddress;
    let temporal: TemporalDevServer | undefined;
    if (!useExisting) {
      console.log('starting the Temporal dev server…');
      temporal = await startTemporalDevServer({
        ip: '127.0.0.1',
        port: flags.temporalPort ?? 7233,
        uiPort: flags.uiPort ?? DEFAULTS.temporalUiPort,
        dbFilename: join(opts.dataDir, 'temporal.db'),
        namespace: opts.temporalNamespace,
      });
      cleanups.push(() => temporal!.stop());
    }
    const address = temporal?.address ?? opts.temporalAddress;

    let gitUrls: string[] = [];
    if (flags.gitRepos) {
      const demo = await startDemoGit(flags.gitRepos, join(opts.dataDir, 'git'), '127.0.0.1', flags.gitPort ?? DEFAULTS.demoGitPort);
      cleanups.push(() => demo.server.close());
      gitUrls = demo.urls;
    }

    const webhookSecret = await loadWebhookSecret(flags.webhookSecretFile);
    const stack: LocalStack = await startLocalStack({
      dataDir: opts.dataDir,
      temporalAddress: address,
      temporalNamespace: opts.temporalNamespace,
      // An external server: its full connection settings (env config, TLS, API key).
      ...(useExisting ? { temporal: temporalSettingsFrom(flags) } : {}),
      taskQueue: opts.taskQueue,
      artifactHost: flags.artifactHost ?? DEFAULTS.artifactHost,
      artifactPort: flags.artifactPort ?? DEFAULTS.artifactPort,
      contentRoot: resolve(flags.contentRoot ?? join(opts.dataDir, 'workspace-content')),
      ...(webhookSecret ? { webhooks: { secret: webhookSecret } } : {}),
    });
    cleanups.push(() => stack.close());

    const applied = await applyPaths(stack, opts, flags.sources);
    console.log('');
    console.log(`Temporal UI:      ${temporal ? `${temporal.uiUrl}/namespaces/${opts.temporalNamespace}/workflows` : `(existing server at ${address})`}`);
    console.log(`Temporal server:  ${address}   (temporal binary: ${temporal?.binary ?? 'external'})`);
    console.log(`Artifacts:        ${stack.artifactServer.url}/<namespace>/<name>/<sha256>.tar.gz`);
    if (webhookSecret) console.log(`Push webhooks:    ${stack.artifactServer.url}/hooks/{github,gitlab,gitea,generic,registry}`);
    for (const url of gitUrls) console.log(`Demo git repo:    ${url}   (clone, commit, push: the source picks it up)`);
    console.log(`Content volume:   ${stack.content.root}/<workspace>/<namespace>/<status.artifact.contentPath>`);
    console.log(`Data directory:   ${opts.dataDir}`);
    console.log(`Try:              arena-source get -A   |   arena-source get NAME -n NAMESPACE -o yaml`);
    console.log('');

    const settled = await waitUntilSettled(stack, applied, 120_000);
    process.stdout.write(formatSources(settled, 'wide', { allNamespaces: true }));
    for (const s of settled) {
      if (s.status?.artifact?.contentPath) console.log(`content of ${s.metadata.namespace}/${s.metadata.name}: ${s.status.artifact.contentPath}`);
    }
    if (flags.once) {
      await stop();
      const failed = settled.filter((s) => s.status?.phase !== 'Ready');
      if (failed.length > 0) throw new UsageError(`${failed.length} source(s) not Ready`);
      return;
    }

    if (flags.watch !== false) {
      const watcher = watch(flags.sources, { ignoreInitial: true, awaitWriteFinish: { stabilityThreshold: 200, pollInterval: 50 } });
      watcher.on('all', (event, path) => {
        if (!['add', 'change'].includes(event) || !/\.ya?ml$/i.test(path)) return;
        applyPaths(stack, opts, [path]).catch((err) => console.error(`re-apply ${path}: ${(err as Error).message}`));
      });
      cleanups.push(() => watcher.close());
      console.log(`watching ${flags.sources.join(', ')} for changes; Ctrl-C stops everything`);
    }
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    console.log('\nstopping…');
  } finally {
    await stop();
  }
}

async function applyPaths(stack: LocalStack, opts: GlobalOptions, paths: string[]): Promise<ArenaSource[]> {
  const manifests = await loadManifests(paths);
  for (const problem of manifests.problems) console.error(`✗ ${problem}`);
  for (const line of await applyManifests(stack.client, opts.taskQueue, stack.resources, manifests)) console.log(`✔ ${line}`);
  return manifests.sources;
}

/** Waits until every applied source finished its first cycle (Ready or Error), or the timeout. */
async function waitUntilSettled(stack: LocalStack, sources: ArenaSource[], timeoutMs: number): Promise<ArenaSource[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const now = await Promise.all(
      sources.map((s) =>
        getSource(stack.client, { namespace: s.metadata.namespace ?? 'default', name: s.metadata.name }).catch(() => s),
      ),
    );
    const busy = now.filter((s) => !s.spec.suspend && s.status?.phase !== 'Ready' && s.status?.phase !== 'Error');
    if (busy.length === 0 || Date.now() > deadline) return now;
    await new Promise((r) => setTimeout(r, 300));
  }
}
