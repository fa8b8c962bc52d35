/**
 * Bundle validation as the packer runs it: PromptPack schema v1.4.0 for pack files, and
 * config.arena.yaml references checked against the files actually in the bundle.
 */
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bundleValidationOf } from '../../src/api/spec-rules.js';
import { arenaReferences } from '../../src/bundle/arena-project.js';
import { packDirectory } from '../../src/bundle/pack.js';
import { checkPromptPack } from '../../src/bundle/promptpack.js';
import { BundleValidator, SHOWN_PROBLEMS } from '../../src/bundle/validation.js';
import { ARENA_PROJECT_FIXTURE } from '../helpers/arena-project.js';
import { packJson, validPack } from '../helpers/promptpack.js';

let tmp: string;
before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'arena-validation-test-'));
});
after(async () => rm(tmp, { recursive: true, force: true }));

let counter = 0;
async function bundle(files: Record<string, string>, from?: string): Promise<string> {
  const dir = path.join(tmp, `b-${++counter}`);
  if (from) await cp(from, dir, { recursive: true });
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await writeFile(path.join(dir, rel), content);
  }
  await mkdir(dir, { recursive: true });
  return dir;
}

/** Packs `dir` with a validator, as packBundle does. */
async function validate(dir: string, packFiles = ['pack.json']) {
  const validator = new BundleValidator({ packFiles });
  await packDirectory(dir, path.join(tmp, `out-${++counter}.tar.gz`), undefined, validator);
  return validator.report();
}

const pack = (mutate: (p: Record<string, any>) => void): Buffer => {
  const p = validPack() as Record<string, any>;
  mutate(p);
  return Buffer.from(JSON.stringify(p));
};

describe('PromptPack schema v1.4.0', () => {
  it('accepts a valid pack, and the repository examples', async () => {
    assert.deepEqual(checkPromptPack(Buffer.from(packJson(validPack()))), []);
    const { readFile } = await import('node:fs/promises');
    const { repoRoot } = await import('../../src/api/crd.js');
    for (const example of ['customer-support', 'sales']) {
      const file = path.join(repoRoot(), 'examples', 'repos', 'prompt-library', example, 'pack.json');
      assert.deepEqual(checkPromptPack(await readFile(file)), [], example);
    }
  });

  it('names each kind of problem with its JSON pointer', () => {
    const cases: Array<[string, Buffer, { path: string; message: RegExp }]> = [
      ['not JSON', Buffer.from('{"id": '), { path: '/', message: /^not valid JSON: / }],
      ['missing required field', pack((p) => delete p.template_engine), { path: '/', message: /must have required property 'template_engine'/ }],
      ['missing required field of a prompt', pack((p) => delete p.prompts.greeter.system_template), { path: '/prompts/greeter', message: /required property 'system_template'/ }],
      ['unknown property', pack((p) => (p.colour = 'blue')), { path: '/', message: /must NOT have the property 'colour'/ }],
      ['wrong type', pack((p) => (p.prompts = [])), { path: '/prompts', message: /must be object/ }],
      ['pattern (shortened)', pack((p) => (p.version = 'one')), { path: '/version', message: /^must match the pattern \^v\?.{30,}\.\.\.$/ }],
      ['enum', pack((p) => (p.template_engine.features = ['telepathy'])), { path: '/template_engine/features/0', message: /must be one of "basic_substitution", "fragments"/ }],
      ['bad id', pack((p) => (p.id = 'Support Pack')), { path: '/id', message: /must match the pattern \^\[a-z\]\[a-z0-9-\]\*\$/ }],
    ];
    for (const [what, content, want] of cases) {
      const problems = checkPromptPack(content);
      assert.ok(
        problems.some((p) => p.path === want.path && want.message.test(p.message)),
        `${what}: ${JSON.stringify(problems)}`,
      );
    }
  });

  it('reports a failed oneOf once, not once per alternative', () => {
    // skills entries are oneOf(directory source, path source, inline skill).
    const problems = checkPromptPack(pack((p) => (p.skills = [{ unexpected: true }])));
    assert.ok(problems.length >= 1);
    assert.ok(problems.every((p) => p.path.startsWith('/skills/0')), JSON.stringify(problems));
    assert.ok(problems.some((p) => /oneOf/.test(p.message)), JSON.stringify(problems));
  });
});

describe('config.arena.yaml references', () => {
  it('lists the files of the fixture project (the ones promptarena run loads), with their fields', async () => {
    const { readFile } = await import('node:fs/promises');
    const read = arenaReferences(await readFile(path.join(ARENA_PROJECT_FIXTURE, 'config.arena.yaml'), 'utf8'));
    assert.ok(read.ok);
    assert.deepEqual(
      read.references.map((r) => `${r.field}=${r.path}`),
      [
        'spec.prompt_configs[0].file=prompts/greeter.yaml',
        'spec.prompt_configs[1].file=prompts/summarizer.yaml',
        'spec.providers[0].file=providers/mock.provider.yaml',
        'spec.scenarios[0].file=scenarios/greeting.scenario.yaml',
        'spec.scenarios[1].file=scenarios/summarize-note.scenario.yaml',
      ],
    );
  });

  it('follows personas (unless self-play is off), pack_file and skill directories', () => {
    const read = arenaReferences(
      [
        'kind: Arena',
        'spec:',
        '  tools: [{file: tools/search.yaml}]',
        '  evals: [{file: ""}]',
        '  self_play: {personas: [{file: personas/a.yaml}]}',
        '  pack_file: app.pack.json',
        '  skills: [skills/, {dir: more}, {name: inline, instructions: x}]',
      ].join('\n'),
    );
    assert.ok(read.ok);
    assert.deepEqual(
      read.references.map((r) => `${r.field}=${r.path}:${r.kind}`),
      [
        'spec.tools[0].file=tools/search.yaml:file',
        'spec.self_play.personas[0].file=personas/a.yaml:file',
        'spec.pack_file=app.pack.json:file',
        'spec.skills[0]=skills/:directory',
        'spec.skills[1]=more:directory',
      ],
    );
    const off = arenaReferences('kind: Arena\nspec:\n  self_play: {enabled: false, personas: [{file: p.yaml}]}\n');
    assert.ok(off.ok);
    assert.deepEqual(off.references, []);
  });

  it('says when the file is not YAML or not an arena config', () => {
    const bad = arenaReferences('kind: Arena\nspec: [unclosed\n');
    assert.ok(!bad.ok && /^not valid YAML: /.test(bad.problem));
    const other = arenaReferences('kind: Scenario\nspec: {}\n');
    assert.ok(!other.ok && /not a PromptKit arena config/.test(other.problem));
  });
});

describe('bundle validation while packing', () => {
  it('a valid pack plus a complete arena project is valid, and says what it checked', async () => {
    const dir = await bundle({ 'pack.json': packJson(validPack()) }, ARENA_PROJECT_FIXTURE);
    const report = await validate(dir);
    assert.deepEqual(report, {
      valid: true,
      message: 'checked pack.json (PromptPack schema v1.4.0), config.arena.yaml (5 referenced paths present)',
    });
  });

  it('an arena project with a missing referenced file names the field and the file', async () => {
    const dir = await bundle({}, ARENA_PROJECT_FIXTURE);
    await unlink(path.join(dir, 'scenarios', 'summarize-note.scenario.yaml'));
    const report = await validate(dir);
    assert.equal(report.valid, false);
    assert.equal(
      report.message,
      '1 problem: config.arena.yaml spec.scenarios[1].file: "scenarios/summarize-note.scenario.yaml" is not in the bundle',
    );
  });

  it('arena references: outside the bundle, absolute, a directory for a file, links followed, nested configs', async () => {
    const dir = await bundle({
      'arena/config.arena.yaml': [
        'kind: Arena',
        'spec:',
        '  prompt_configs: [{id: a, file: ../shared/a.yaml}, {id: b, file: /etc/passwd}, {id: c, file: prompts}]',
        '  scenarios: [{file: linked.yaml}, {file: ../../outside.yaml}]',
        '  skills: [skills]',
      ].join('\n'),
      'shared/a.yaml': 'x',
      'arena/prompts/p.yaml': 'x',
      'arena/real/s.yaml': 'x',
      'arena/skills/SKILL.md': 'x',
    });
    await symlink('real/s.yaml', path.join(dir, 'arena', 'linked.yaml'));
    const report = await validate(dir);
    assert.equal(report.valid, false);
    assert.match(report.message, /^3 problems: /);
    assert.match(report.message, /arena\/config\.arena\.yaml spec\.prompt_configs\[1\]\.file: "\/etc\/passwd" is an absolute path/);
    assert.match(report.message, /spec\.prompt_configs\[2\]\.file: "prompts" is a directory, not a file/);
    assert.match(report.message, /spec\.scenarios\[1\]\.file: "\.\.\/\.\.\/outside\.yaml" is outside the bundle/);
  });

  it('checks *.pack.json anywhere, and a ConfigMap key named as a pack file', async () => {
    const dir = await bundle({
      'packs/a.pack.json': packJson(validPack('a')),
      'packs/b.pack.json': '{"id": "b"}',
      'bundle.json': '[]',
      'other.json': '{"not": "a pack"}',
    });
    const report = await validate(dir, bundleValidationOf({ type: 'configmap', interval: '1m', configMap: { name: 'x', key: 'bundle.json' } }).packFiles);
    assert.equal(report.valid, false);
    assert.match(report.message, /bundle\.json \/: must be object/);
    assert.match(report.message, /packs\/b\.pack\.json \/: must have required property 'name'/);
    assert.doesNotMatch(report.message, /other\.json|a\.pack\.json/);
  });

  it(`shows the first ${SHOWN_PROBLEMS} problems and counts the rest`, async () => {
    const report = await validate(await bundle({ 'pack.json': '{}' }));
    assert.equal(report.valid, false);
    // id, name, version, template_engine, prompts: exactly five, all shown.
    assert.match(report.message, /^5 problems: (pack\.json \/: must have required property '\w+'(; )?){5}$/);
    const more = await validate(await bundle({ 'pack.json': '{"a":1,"b":2,"c":3}' }));
    assert.match(more.message, /^8 problems: .*; and 3 more$/);
  });

  it('a bundle with nothing to check is valid and says so', async () => {
    const report = await validate(await bundle({ 'README.md': '# hi\n' }));
    assert.deepEqual(report, { valid: true, message: 'nothing to check: no pack.json, *.pack.json or config.arena.yaml in the bundle' });
  });

  it('does not change the archive: same bytes with or without validation', async () => {
    const dir = await bundle({ 'pack.json': packJson(validPack()), 'prompts/x.md': 'x' }, ARENA_PROJECT_FIXTURE);
    const plain = await packDirectory(dir, path.join(tmp, 'plain.tar.gz'));
    const validator = new BundleValidator({ packFiles: ['pack.json'] });
    const checked = await packDirectory(dir, path.join(tmp, 'checked.tar.gz'), undefined, validator);
    assert.equal(checked.checksum, plain.checksum);
    assert.equal(validator.report().valid, true);
  });
});

describe('what a spec asks to validate', () => {
  it('pack.json for git, OCI and workspace; the key for a ConfigMap when it is .json; warn by default', () => {
    assert.deepEqual(bundleValidationOf({ type: 'git', interval: '1m', git: { url: 'https://x/y.git' } }), { mode: 'warn', packFiles: ['pack.json'] });
    assert.deepEqual(bundleValidationOf({ type: 'oci', interval: '1m', validation: 'strict', oci: { url: 'oci://r/x:1' } }), {
      mode: 'strict',
      packFiles: ['pack.json'],
    });
    assert.deepEqual(bundleValidationOf({ type: 'configmap', interval: '1m', configMap: { name: 'x' } }).packFiles, ['pack.json']);
    assert.deepEqual(bundleValidationOf({ type: 'configmap', interval: '1m', configMap: { name: 'x', key: 'arena.yaml' } }).packFiles, []);
  });
});
