/**
 * The options table (options.ts) turned into commander options, and the values a
 * command gets: flag > environment variable > default, in one place. Commander's
 * own `.env()` is not used: it sets a boolean flag whenever the variable exists,
 * even to "false".
 */
import { Option, type Command } from 'commander';
import { env, intOption } from './config.js';
import type { OptionSpec } from './options.js';

const built = new WeakMap<Command, Map<OptionSpec, Option>>();

export function addOptions(cmd: Command, specs: readonly OptionSpec[]): void {
  const map = built.get(cmd) ?? new Map<OptionSpec, Option>();
  for (const spec of specs) {
    const where = [spec.env ? `env ${spec.env}` : '', spec.defaultShown ? `default ${spec.defaultShown.replace(/`/g, '')}` : ''].filter(Boolean);
    const option = new Option(spec.flag, where.length ? `${spec.help} (${where.join('; ')})` : spec.help);
    if (spec.parse === 'int') option.argParser(intOption);
    if (spec.choices) option.choices(spec.choices);
    if (spec.default !== undefined) option.default(spec.default);
    if (spec.required) option.makeOptionMandatory();
    cmd.addOption(option);
    map.set(spec, option);
  }
  built.set(cmd, map);
}

/** The command's option values with the environment applied where no flag was given. */
export function resolveOptions(cmd: Command, specs: readonly OptionSpec[]): Record<string, unknown> {
  const values: Record<string, unknown> = { ...cmd.opts() };
  const options = built.get(cmd);
  for (const spec of specs) {
    const option = options?.get(spec);
    if (!option || !spec.env) continue;
    const key = option.attributeName();
    const raw = env(spec.env);
    if (raw === undefined || cmd.getOptionValueSource(key) === 'cli') continue;
    values[key] = fromEnv(spec, option, raw);
  }
  return values;
}

function fromEnv(spec: OptionSpec, option: Option, raw: string): unknown {
  if (option.isBoolean()) {
    if (/^(true|1|yes|on)$/i.test(raw)) return true;
    if (/^(false|0|no|off)$/i.test(raw)) return false;
    throw new Error(`${spec.env}: "${raw}" is not true or false`);
  }
  if (spec.parse === 'int') return intOption(raw);
  if (spec.choices && !spec.choices.includes(raw)) throw new Error(`${spec.env}: "${raw}" is not one of ${spec.choices.join(', ')}`);
  return raw;
}
