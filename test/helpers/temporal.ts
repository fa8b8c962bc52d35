/**
 * Test helpers for the Temporal dev server that scripts/run-tests.mjs starts
 * (it exports TEMPORAL_ADDRESS before running the test files).
 */
import { randomUUID } from 'node:crypto';

/** host:port of the Temporal frontend the tests must use. */
export function temporalAddress(): string {
  const addr = process.env.TEMPORAL_ADDRESS;
  if (!addr) {
    throw new Error(
      'TEMPORAL_ADDRESS is not set: run the tests with `npm test` (scripts/run-tests.mjs starts a Temporal dev server ' +
        'and sets it), or point TEMPORAL_ADDRESS at a running server, e.g. `temporal server start-dev` → 127.0.0.1:7233.',
    );
  }
  return addr;
}

/** Namespace for tests: TEMPORAL_NAMESPACE or `default`. */
export function temporalNamespace(): string {
  return process.env.TEMPORAL_NAMESPACE || 'default';
}

/** A task queue name no other test (or earlier run against the same server) uses. */
export function uniqueTaskQueue(prefix: string): string {
  return `${prefix}-${process.pid}-${randomUUID().slice(0, 8)}`;
}
