/**
 * Defaults shared by the CLI's commands and helpers. Flags, their environment
 * variables and documented defaults are declared in options.ts.
 */
import { resolve } from 'node:path';
import { resolveTemporalSettings, type TemporalFlags, type TemporalSettings } from '../temporal/settings.js';

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

/**
 * temporalAddress/temporalNamespace as given (or the defaults); commands that connect
 * resolve the full connection settings (env config, TLS, API key) with temporalSettingsFrom.
 */
export interface GlobalOptions extends Omit<TemporalFlags, 'temporalAddress' | 'temporalNamespace'> {
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
    ...flags,
    temporalAddress: flags.temporalAddress ?? DEFAULTS.temporalAddress,
    temporalNamespace: flags.temporalNamespace ?? DEFAULTS.temporalNamespace,
    taskQueue: flags.taskQueue ?? DEFAULTS.taskQueue,
    dataDir: resolve(flags.dataDir ?? DEFAULTS.dataDir),
  };
}

/** The Temporal connection of a command: Temporal's env config and profile, the flags over them. */
export function temporalSettingsFrom(flags: Partial<GlobalOptions>): TemporalSettings {
  return resolveTemporalSettings(flags);
}

export function intOption(value: string): number {
  const n = Number.parseInt(value, 10);
  if (!Number.isInteger(n) || n < 0 || String(n) !== value.trim()) throw new Error(`not a port or count: ${value}`);
  return n;
}
