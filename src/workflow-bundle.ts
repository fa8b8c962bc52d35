/**
 * The workflow code bundle. The build writes it once (dist/workflow-bundle.js, with a
 * fingerprint of the code it was made from) and workers load that. Without a current
 * one, bundling runs webpack, which leaves a process about 80 MiB bigger for good
 * (measured: RSS 90 → 171 MiB): a long-running worker then has a child process bundle
 * into a file (`workflowBundleFile`), while tests, which start many workers in one
 * process, bundle once in-process (`workflowBundle`).
 */
import { bundleWorkflowCode, type WorkflowBundle } from '@temporalio/worker';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
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
  '../workflows/pass-scope.js',
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

/**
 * The bundle made at build time (`npm run build`, the image's build stage), as Temporal advises
 * for production: a worker then starts without webpack (seconds of CPU per start, per test file).
 * It is used only while its fingerprint matches the compiled code it was made from; otherwise the
 * worker bundles as before.
 */
const DIST = fileURLToPath(new URL('..', import.meta.url));
/** Where the build puts the bundle and its fingerprint, in a `dist` directory. */
const prebuiltPaths = (dist: string) => ({ bundle: join(dist, 'workflow-bundle.js'), fingerprint: join(dist, 'workflow-bundle.fingerprint') });
export const PREBUILT_BUNDLE = prebuiltPaths(DIST).bundle;

/** sha256 of every compiled file a bundle can contain (`dist`'s workflows/ and src/), and of the SDK's version. */
export function bundleInputsFingerprint(dist = DIST): string {
  const hash = createHash('sha256');
  const sdk = JSON.parse(readFileSync(fileURLToPath(import.meta.resolve('@temporalio/workflow/package.json')), 'utf8')) as { version: string };
  hash.update(`@temporalio/workflow@${sdk.version}\n`);
  for (const root of ['workflows', 'src']) {
    const files = (readdirSync(join(dist, root), { recursive: true, encoding: 'utf8' }) as string[]).filter((f) => f.endsWith('.js')).sort();
    for (const file of files) hash.update(`${root}/${file}\n`).update(readFileSync(join(dist, root, file)));
  }
  return hash.digest('hex');
}

/** The prebuilt bundle's path when it was made from exactly this code, else undefined. */
export function currentPrebuiltBundle(dist = DIST, fingerprint = bundleInputsFingerprint(dist)): string | undefined {
  const paths = prebuiltPaths(dist);
  try {
    return readFileSync(paths.fingerprint, 'utf8').trim() === fingerprint ? paths.bundle : undefined;
  } catch {
    return undefined;
  }
}

/** Writes the prebuilt bundle and its fingerprint (the build runs this: workflow-bundle-main.js --prebuilt). */
export async function writePrebuiltBundle(): Promise<void> {
  const fingerprint = bundleInputsFingerprint();
  if (currentPrebuiltBundle(DIST, fingerprint)) return;
  const paths = prebuiltPaths(DIST);
  const { code } = await bundle();
  // Bundle first, fingerprint last: a reader never pairs a new fingerprint with an old bundle.
  await writeFile(`${paths.bundle}.tmp`, code);
  await rename(`${paths.bundle}.tmp`, paths.bundle);
  await writeFile(paths.fingerprint, `${fingerprint}\n`);
}

let inProcess: Promise<WorkflowBundle> | undefined;

/** The workflow code once per process: the prebuilt bundle if current, else bundled here (webpack takes seconds). */
export function workflowBundle(): Promise<WorkflowBundle> {
  if (!inProcess) {
    const prebuilt = currentPrebuiltBundle();
    inProcess = prebuilt ? readFile(prebuilt, 'utf8').then((code) => ({ code })) : bundle();
  }
  return inProcess;
}

/**
 * A bundle file for a long-running worker: the prebuilt one if current (`owned: false`: shared, not
 * to be removed), else bundled by a child process into `dir` (`owned: true`: the caller removes it
 * once the worker has read it).
 */
export async function workflowBundleFile(dir: string): Promise<{ codePath: string; owned: boolean }> {
  const prebuilt = currentPrebuiltBundle();
  if (prebuilt) return { codePath: prebuilt, owned: false };
  await mkdir(dir, { recursive: true });
  const codePath = join(dir, `workflow-bundle-${process.pid}.js`);
  await promisify(execFile)(process.execPath, [MAIN, codePath], { maxBuffer: 1 << 20 });
  return { codePath, owned: true };
}
