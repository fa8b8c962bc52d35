/**
 * Defaults shared by the CLI's commands and helpers. Flags, their environment
 * variables and documented defaults are declared in options.ts.
 */
import { resolve } from 'node:path';

export const DEFAULTS = {
  temporalAddress: '127.0.0.1:7233',
  temporalNamespace: 'default',
  taskQueue: 'arena-source',
  dataDir: '.arena-source',
  artifactHost: '127.0.0.1',
  artifactPort: 9090,
  temporalUiPort: 8233,
  demoGitPort: 9480,
} as const;

export interface GlobalOptions {
  temporalAddress: string;
  temporalNamespace: string;
  taskQueue: string;
  dataDir: string;
}

export function env(name: string): string | undefined {
  const value = process.env[name];
  return value === undefined || value === '' ? undefined : value;
}

export function globalOptions(flags: Partial<GlobalOptions>): GlobalOptions {
  return {
    temporalAddress: flags.temporalAddress ?? DEFAULTS.temporalAddress,
    temporalNamespace: flags.temporalNamespace ?? DEFAULTS.temporalNamespace,
    taskQueue: flags.taskQueue ?? DEFAULTS.taskQueue,
    dataDir: resolve(flags.dataDir ?? DEFAULTS.dataDir),
  };
}

export function intOption(value: string): number {
  const n = Number.parseInt(value, 10);
  if (!Number.isInteger(n) || n < 0 || String(n) !== value.trim()) throw new Error(`not a port or count: ${value}`);
  return n;
}
