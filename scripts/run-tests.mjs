#!/usr/bin/env node
/**
 * Test runner behind `npm test` (after `tsc`).
 *
 *   node scripts/run-tests.mjs [filter…] [--node-test-flag…]
 *
 * Starts a Temporal dev server on 127.0.0.1 (free ports, throwaway SQLite
 * file), waits until its `default` namespace answers, exports
 * TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE, runs node's test runner on every
 * dist/test/**\/*.test.js (or only those whose path contains one of the
 * filters), stops the server and exits with the tests' exit code.
 *
 * Environment:
 *   TEMPORAL_CLI_PATH      temporal binary (else ~/.cache/arena-source/bin/temporal, else PATH)
 *   TEMPORAL_ADDRESS       if set, use that server instead of starting one
 *   TEST_CONCURRENCY       test files run at once (default 2)
 *   TEST_TIMEOUT_MS        per-test timeout (default 600000)
 *   TEMPORAL_STARTUP_TIMEOUT_MS  how long to wait for the dev server (default 90000)
 *   TEST_EXCLUDE           comma-separated path substrings of test files not to run (each is logged)
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIST_TEST = path.join(ROOT, 'dist', 'test');
const SRC_TEST = path.join(ROOT, 'test');
const TEMPORAL_VERSION = 'v1.5.1';

function log(msg) {
  process.stderr.write(`[run-tests] ${msg}\n`);
}

/** Lists dist/test/**\/*.test.js, sorted, skipping files whose test/ source is gone (and TEST_EXCLUDE's). */
function findTestFiles(filters) {
  const excluded = (process.env.TEST_EXCLUDE ?? '').split(',').map((x) => x.trim()).filter(Boolean);
  const out = [];
  const walk = (dir) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && e.name.endsWith('.test.js')) out.push(p);
    }
  };
  walk(DIST_TEST);
  out.sort();
  return out.filter((file) => {
    const rel = path.relative(DIST_TEST, file);
    const srcBase = path.join(SRC_TEST, rel.replace(/\.js$/, ''));
    if (!['.ts', '.mts', '.js', '.mjs'].some((ext) => existsSync(srcBase + ext))) {
      log(`skipping stale ${path.relative(ROOT, file)} (no source in test/)`);
      return false;
    }
    if (excluded.some((x) => rel.includes(x))) {
      log(`not run here: ${path.relative(ROOT, file)} (TEST_EXCLUDE)`);
      return false;
    }
    return filters.length === 0 || filters.some((f) => rel.includes(f));
  });
}

/** State the signal handlers need: installed before anything is started. */
const state = { starting: new AbortController(), child: undefined, signalled: undefined };

function onSignal(sig) {
  state.signalled ??= sig;
  if (state.child && state.child.exitCode === null) {
    state.child.kill(sig); // main() stops the server once the tests exit
    return;
  }
  // Still starting up: the dev server is stopped as its start is aborted.
  log(`interrupted by ${sig}`);
  state.starting.abort();
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => onSignal(sig));

async function main() {
  const argv = process.argv.slice(2);
  const filters = argv.filter((a) => !a.startsWith('-'));
  const passThrough = argv.filter((a) => a.startsWith('-'));

  if (!existsSync(DIST_TEST)) {
    log(`${path.relative(ROOT, DIST_TEST)} does not exist: build first (npm run build:all)`);
    return 1;
  }
  // The workflow bundle workers load (a no-op when dist/workflow-bundle.js matches the compiled code).
  const bundled = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'src', 'workflow-bundle-main.js'), '--prebuilt'], { stdio: 'inherit' });
  if (bundled.status !== 0) {
    log('could not write dist/workflow-bundle.js (node dist/src/workflow-bundle-main.js --prebuilt)');
    return 1;
  }
  const files = findTestFiles(filters);
  if (files.length === 0) {
    log(filters.length ? `no test files match ${filters.map((f) => JSON.stringify(f)).join(', ')}` : 'no test files found in dist/test');
    return 1;
  }

  let server;
  const env = { ...process.env };
  if (process.env.TEMPORAL_ADDRESS) {
    log(`using existing Temporal server at ${process.env.TEMPORAL_ADDRESS}`);
  } else {
    // Built by `tsc` before this runs: the dev server as `arena-source dev` starts it (same flags).
    const { findTemporalCli, startTemporalDevServer } = await import('../dist/src/dev/temporal-server.js');
    const bin = findTemporalCli();
    if (!bin) {
      log(
        'no `temporal` CLI found (looked at $TEMPORAL_CLI_PATH, ~/.cache/arena-source/bin/temporal and PATH).\n' +
          '  Run `.ci/run` (builds it), or build it yourself:\n' +
          `    GOBIN=$HOME/.cache/arena-source/bin go install github.com/temporalio/cli/cmd/temporal@${TEMPORAL_VERSION}`,
      );
      return 1;
    }
    const { freePort } = await import('../dist/test/helpers/free-port.js');
    const dbDir = mkdtempSync(path.join(tmpdir(), 'arena-source-temporal-'));
    process.on('exit', () => rmSync(dbDir, { recursive: true, force: true }));
    const t0 = Date.now();
    try {
      server = await startTemporalDevServer({
        binary: bin,
        port: await freePort(),
        dbFilename: path.join(dbDir, 'temporal.db'),
        ...(process.env.TEMPORAL_STARTUP_TIMEOUT_MS ? { startupTimeoutMs: Number(process.env.TEMPORAL_STARTUP_TIMEOUT_MS) } : {}),
        signal: state.starting.signal,
      });
    } catch (e) {
      log(e instanceof Error ? e.message : String(e));
      return state.signalled ? 130 : 1;
    }
    process.on('exit', () => server.child.kill('SIGKILL'));
    log(`temporal dev server ready at ${server.address} after ${((Date.now() - t0) / 1000).toFixed(1)}s`);
    env.TEMPORAL_ADDRESS = server.address;
    env.TEMPORAL_CLI_PATH = bin;
  }
  env.TEMPORAL_NAMESPACE ??= 'default';
  // In-process workers log errors only (expected failures would bury the test report);
  // tests that read logs start their worker processes with their own level.
  env.ARENA_SOURCE_LOG_LEVEL ??= 'error';
  env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  const hasTestTimeout = major > 20 || (major === 20 && minor >= 11); // flag added in 20.11
  const hasForceExit = major > 20 || (major === 20 && minor >= 14); // flag added in 20.14
  const nodeArgs = [
    '--test',
    `--test-concurrency=${process.env.TEST_CONCURRENCY ?? 2}`,
    ...(hasTestTimeout ? [`--test-timeout=${process.env.TEST_TIMEOUT_MS ?? 600_000}`] : []),
    // A test file whose tests are done exits even if something it started still holds the event loop
    // (a timed-out test's pending work): the failure is reported at once, not after the file's timeout.
    ...(hasForceExit ? ['--test-force-exit'] : []),
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    ...passThrough,
    ...files.map((f) => path.relative(ROOT, f)),
  ];

  if (state.signalled) {
    if (server) await server.stop();
    return 130;
  }
  log(`node ${nodeArgs.filter((a) => !a.endsWith('.test.js')).join(' ')} <${files.length} file(s)>`);
  const child = spawn(process.execPath, nodeArgs, { cwd: ROOT, env, stdio: 'inherit' });
  state.child = child;

  const code = await new Promise((resolve) => {
    child.on('exit', (c, sig) => resolve(c ?? (sig ? 128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1) : 1)));
    child.on('error', (err) => {
      log(`cannot run node --test: ${err.message}`);
      resolve(1);
    });
  });

  if (server) await server.stop();
  if (state.signalled) {
    log(`interrupted by ${state.signalled}`);
    return code === 0 ? 0 : state.signalled === 'SIGINT' ? 130 : 143;
  }
  return code;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    log(err instanceof Error ? err.stack ?? err.message : String(err));
    process.exit(1);
  },
);
