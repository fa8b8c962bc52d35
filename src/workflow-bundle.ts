/**
 * The workflow code bundle. Bundling runs webpack, which leaves a process about
 * 80 MiB bigger for good (measured: RSS 90 → 171 MiB); a long-running worker
 * therefore has a child process bundle into a file and loads that
 * (`workflowBundleFile`), while tests, which start many workers in one process,
 * bundle once in-process (`workflowBundle`).
 */
import { bundleWorkflowCode, type WorkflowBundle } from '@temporalio/worker';
import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createLogger, temporalLogger } from './observability/logger.js';

const WORKFLOWS = fileURLToPath(new URL('../workflows/index.js', import.meta.url));
const MAIN = fileURLToPath(new URL('./workflow-bundle-main.js', import.meta.url));

/**
 * Modules evaluated once per worker thread and shared (frozen) by every workflow, instead of once
 * per workflow: each new or evicted-and-replayed workflow otherwise re-runs them (src/errors.js alone
 * builds an error per reason, each capturing a stack trace in the sandbox). Only modules with no
 * per-workflow state and no workflow API call at module scope belong here; the workflow module
 * itself (arena-source.js) stays per workflow. Measured in benchmark 8 (README).
 */
const SHARED_MODULES = [
  '../src/api/canonical.js',
  '../src/api/duration.js',
  '../src/api/group-version.js',
  '../src/api/repository-key.js',
  '../src/api/search-attributes.js',
  '../src/api/spec-rules.js',
  '../src/api/status.js',
  '../src/errors.js',
  '../workflows/backoff.js',
  '../workflows/definitions.js',
  '../workflows/patches.js',
  '../workflows/source-state.js',
  '../workflows/watch-attributes.js',
].map((m) => fileURLToPath(new URL(m, import.meta.url)));

export function bundle(): Promise<WorkflowBundle> {
  return bundleWorkflowCode({
    workflowsPath: WORKFLOWS,
    preloadModules: ['@temporalio/workflow', ...SHARED_MODULES],
    logger: temporalLogger(createLogger('warn')),
  });
}

let inProcess: Promise<WorkflowBundle> | undefined;

/** Bundles the workflow code once per process (webpack takes seconds; tests start many workers). */
export function workflowBundle(): Promise<WorkflowBundle> {
  inProcess ??= bundle();
  return inProcess;
}

/** Bundles in a child process into `dir`; the caller passes `{ codePath }` to the worker. */
export async function workflowBundleFile(dir: string): Promise<{ codePath: string }> {
  await mkdir(dir, { recursive: true });
  const codePath = join(dir, `workflow-bundle-${process.pid}.js`);
  await promisify(execFile)(process.execPath, [MAIN, codePath], { maxBuffer: 1 << 20 });
  return { codePath };
}
