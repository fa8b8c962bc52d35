/**
 * The options table is the CLI: every documented flag goes through the real
 * commander parser to the command it belongs to, every environment variable
 * does the same when no flag is given (a flag wins), and the README's
 * configuration table is exactly the one the table renders.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Option } from 'commander';
import { repoRoot } from '../../src/api/crd.js';
import { buildProgram, type Handlers } from '../../src/cli/main.js';
import { CONFIG_TABLE_END, CONFIG_TABLE_START, GLOBAL, OPTIONS, renderConfigTable, type CommandName, type OptionSpec } from '../../src/cli/options.js';

const HANDLER: Record<CommandName, keyof Handlers> = {
  dev: 'dev', worker: 'worker', controller: 'controller', serve: 'serve', apply: 'apply', get: 'get', history: 'history',
  suspend: 'suspend', resume: 'resume', reconcile: 'reconcile', delete: 'delete', 'search-attributes': 'searchAttributes', push: 'push',
};
/** Positional arguments and required options each command needs to parse at all. */
const REQUIRED: Record<CommandName, string[]> = {
  dev: ['-s', 'sources.yaml'], worker: [], controller: [], serve: [], apply: ['-f', 'a.yaml'], get: [], history: ['src'],
  suspend: ['src'], resume: ['src'], reconcile: ['src'], delete: ['src'], 'search-attributes': [], push: ['dir', 'oci://r/x:1'],
};

/** Parses `argv` with every handler stubbed; returns the flags the command's handler received. */
async function parse(command: CommandName, argv: string[], env: Record<string, string> = {}, omitRequired = false): Promise<Record<string, unknown>> {
  let received: unknown[] | undefined;
  const stub = (...args: unknown[]) => {
    received = args;
    return Promise.resolve();
  };
  const handlers = Object.fromEntries(Object.values(HANDLER).map((h) => [h, stub])) as unknown as Handlers;
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    const program = buildProgram(handlers).exitOverride();
    for (const sub of program.commands) sub.exitOverride();
    const required = omitRequired ? REQUIRED[command].filter((a) => !a.startsWith('-') && !a.endsWith('.yaml')) : REQUIRED[command];
    await program.parseAsync(['node', 'arena-source', command, ...required, ...argv]);
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
  assert.ok(received, `${command} ${argv.join(' ')}: the handler ran`);
  return received.find((a) => typeof a === 'object' && a !== null && !Array.isArray(a)) as Record<string, unknown>;
}

function sample(spec: OptionSpec): { args: string[]; value: unknown; raw: string } {
  const flag = new Option(spec.flag);
  const long = flag.long!;
  if (flag.negate) return { args: [long], value: false, raw: 'false' };
  if (flag.isBoolean()) return { args: [long], value: true, raw: 'true' };
  if (spec.parse === 'int') return { args: [long, '7'], value: 7, raw: '7' };
  if (spec.choices) {
    const choice = spec.choices.at(-1)!;
    return { args: [long, choice], value: choice, raw: choice };
  }
  if (flag.variadic) return { args: [long, 'one'], value: ['one'], raw: 'one' };
  return { args: [long, 'given-value'], value: 'given-value', raw: 'given-value' };
}

const cases = OPTIONS.flatMap((spec) => {
  const commands = spec.commands === GLOBAL ? (['get', 'worker'] as CommandName[]) : [...spec.commands];
  return commands.map((command) => ({ spec, command, key: new Option(spec.flag).attributeName() }));
});

describe('the options table drives the CLI', () => {
  it('every documented flag reaches its command through the real parser', async () => {
    for (const { spec, command, key } of cases) {
      const { args, value } = sample(spec);
      const flags = await parse(command, args, {}, spec.required === true);
      assert.deepEqual(flags[key], value, `${command} ${args.join(' ')} → ${key}`);
    }
  });

  it('every environment variable sets its option when no flag is given, and a flag wins over it', async () => {
    for (const { spec, command, key } of cases.filter((c) => c.spec.env)) {
      const { value, raw } = sample(spec);
      assert.deepEqual((await parse(command, [], { [spec.env!]: raw }))[key], value, `${spec.env}=${raw} → ${command} ${key}`);
      if (spec.parse === 'int') {
        const flags = await parse(command, [new Option(spec.flag).long!, '9'], { [spec.env!]: raw });
        assert.equal(flags[key], 9, `${command}: the flag wins over ${spec.env}`);
      }
    }
  });

  it('a boolean variable can say false, and a bad one is refused', async () => {
    assert.equal((await parse('worker', [], { ARENA_SOURCE_S3_FORCE_PATH_STYLE: 'false' })).s3ForcePathStyle, false);
    await assert.rejects(parse('worker', [], { ARENA_SOURCE_S3_FORCE_PATH_STYLE: 'maybe' }), /ARENA_SOURCE_S3_FORCE_PATH_STYLE: "maybe" is not true or false/);
  });

  it('defaults are applied: worker --shutdown-grace 30s, dev ports, and no Temporal address unless given', async () => {
    const worker = await parse('worker', []);
    assert.equal(worker.shutdownGrace, '30s');
    assert.equal(worker.metricsHost, '127.0.0.1');
    const dev = await parse('dev', [], { TEMPORAL_ADDRESS: '' });
    assert.deepEqual([dev.temporalPort, dev.uiPort, dev.artifactPort, dev.gitPort], [7233, 8233, 9090, 9480]);
    assert.equal(dev.temporalAddress, undefined, 'dev starts its own server');
  });

  it("the README's configuration table is the rendered table (npm run gen:readme)", () => {
    const readme = readFileSync(join(repoRoot(), 'README.md'), 'utf8');
    const start = readme.indexOf(CONFIG_TABLE_START);
    const end = readme.indexOf(CONFIG_TABLE_END);
    assert.ok(start >= 0 && end > start, 'README has the config-table markers');
    assert.equal(readme.slice(start + CONFIG_TABLE_START.length, end).trim(), renderConfigTable());
  });

  it('every environment variable the CLI reads is in the table', () => {
    const documented = new Set([...OPTIONS.map((o) => o.env), ...['TEMPORAL_CLI_PATH', 'ARENA_SOURCE_LOG_LEVEL', 'ARENA_SOURCE_GIT_CACHE', 'ARENA_SOURCE_OCI_PASSWORD']]);
    const cli = ['commands/worker.ts', 'commands/controller.ts', 'commands/serve.ts', 'commands/dev.ts', 'commands/push.ts', 'commands/sources.ts', 'config.ts', 'main.ts'].map((f) =>
      readFileSync(join(repoRoot(), 'src', 'cli', f), 'utf8'),
    );
    for (const text of cli) for (const m of text.matchAll(/env\('([A-Z0-9_]+)'\)/g)) assert.ok(documented.has(m[1]), `${m[1]} is documented`);
  });
});
