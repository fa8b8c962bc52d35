/**
 * Starts a local Temporal dev server (with its Web UI) for `arena-source dev`:
 * the `temporal` CLI from TEMPORAL_CLI_PATH, the CI cache or PATH; failing that,
 * the SDK downloads its own copy (which needs internet access).
 */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { accessSync, constants } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { SEARCH_ATTRIBUTES } from '../api/search-attributes.js';
import { installRuntime } from '../worker.js';
import { DEV_SERVER_FLAGS } from './server-settings.js';

export interface DevTemporalOptions {
  ip: string;
  port: number;
  uiPort: number;
  /** SQLite file: workflows survive a restart of `dev`. */
  dbFilename: string;
  namespace: string;
}

export interface DevTemporal {
  address: string;
  uiUrl: string;
  binary: string;
  stop(): Promise<void>;
}

export function findTemporalCli(): string | undefined {
  const candidates = [
    process.env.TEMPORAL_CLI_PATH,
    join(homedir(), '.cache', 'arena-source', 'bin', 'temporal'),
    ...(process.env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, 'temporal')),
  ];
  for (const candidate of candidates) {
    if (!candidate) continue;
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // try the next one
    }
  }
  return undefined;
}

export async function startDevTemporal(opts: DevTemporalOptions): Promise<DevTemporal> {
  installRuntime();
  const binary = findTemporalCli();
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: binary ? { type: 'existing-path', path: binary } : { type: 'cached-download' },
      ip: opts.ip,
      port: opts.port,
      ui: true,
      uiPort: opts.uiPort,
      dbFilename: opts.dbFilename,
      namespace: opts.namespace,
      log: { format: 'pretty', level: 'error' },
      searchAttributes: [...SEARCH_ATTRIBUTES],
      extraArgs: [...DEV_SERVER_FLAGS],
    },
  });
  return {
    address: env.address,
    uiUrl: `http://${opts.ip}:${opts.uiPort}`,
    binary: binary ?? 'downloaded by the Temporal SDK',
    stop: () => env.teardown(),
  };
}
