/**
 * The generated CRD: the committed YAML is what the generator produces now
 * (CI catches drift), the schema is structural, and every way it differs
 * from Omnia's CRD is listed here — so a new difference fails until it is
 * added to the list (and to the README's compatibility notes).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Type } from '@sinclair/typebox';
import { parse } from 'yaml';
import { buildCrd, CRD_FILES, crdOpenApiSchema, renderCrdYaml, repoRoot, toStructural } from '../../src/api/crd.js';
import { durationToMillis, GO_DURATION_PATTERN, parseGoDuration } from '../../src/api/duration.js';
import { ArenaSourceSpecSchema } from '../../src/api/schema.js';
import { MAX_TIMEOUT_MS, MIN_INTERVAL_MS } from '../../src/api/spec-rules.js';

const ROOT = repoRoot();
type Node = Record<string, any>;

const omniaCrd = parse(readFileSync(join(ROOT, '../shared/compat/omnia/arenasources.crd.yaml'), 'utf8')) as Node;
const omniaVersion = omniaCrd.spec.versions[0] as Node;
const omniaSchema = omniaVersion.schema.openAPIV3Schema as Node;
/** Omnia's CRD as it is today (the content volume, type workspace). */
const currentSchema = (parse(readFileSync(join(ROOT, '../shared/compat/omnia-current/arenasources.crd.yaml'), 'utf8')) as Node).spec
  .versions[0].schema.openAPIV3Schema as Node;

/** Every structural difference between Omnia's schema and ours, as readable lines. */
function differences(omnia: Node | undefined, ours: Node | undefined, path: string, out: string[]): string[] {
  if (!ours) {
    out.push(`${path}: missing in ours`);
    return out;
  }
  if (!omnia) {
    out.push(`${path}: only in ours`);
    return out;
  }
  if (omnia.type !== ours.type) out.push(`${path}: type ${ours.type} (Omnia: ${omnia.type})`);
  if (JSON.stringify(omnia.default) !== JSON.stringify(ours.default)) {
    out.push(`${path}: default ${JSON.stringify(ours.default)} (Omnia: ${JSON.stringify(omnia.default)})`);
  }
  if (omnia.format !== ours.format) out.push(`${path}: format ${ours.format} (Omnia: ${omnia.format})`);
  for (const v of omnia.enum ?? []) if (!(ours.enum ?? []).includes(v)) out.push(`${path}: enum lacks ${v}`);
  for (const v of ours.enum ?? []) if (omnia.enum && !omnia.enum.includes(v)) out.push(`${path}: enum adds ${v}`);
  for (const k of ['pattern', 'minLength', 'maxLength', 'minimum', 'maximum'] as const) {
    if (omnia[k] !== ours[k]) out.push(`${path}: ${k} ${ours[k] ?? 'none'} (Omnia: ${omnia[k] ?? 'none'})`);
  }
  for (const r of ours.required ?? []) if (!(omnia.required ?? []).includes(r)) out.push(`${path}: requires ${r}`);
  for (const r of omnia.required ?? []) if (!(ours.required ?? []).includes(r)) out.push(`${path}: does not require ${r}`);
  for (const k of ['x-kubernetes-list-type', 'x-kubernetes-list-map-keys'] as const) {
    if (JSON.stringify(omnia[k]) !== JSON.stringify(ours[k])) out.push(`${path}: ${k} differs`);
  }
  for (const rule of (ours['x-kubernetes-validations'] ?? []) as Node[]) out.push(`${path}: CEL ${rule.rule}`);
  const names = new Set([...Object.keys(omnia.properties ?? {}), ...Object.keys(ours.properties ?? {})]);
  for (const name of [...names].sort()) differences(omnia.properties?.[name], ours.properties?.[name], `${path}.${name}`, out);
  if (omnia.items || ours.items) differences(omnia.items, ours.items, `${path}[]`, out);
  return out;
}

describe('generated CRD', () => {
  for (const file of CRD_FILES) {
    it(`${file} is up to date (npm run gen:crd)`, () => {
      const committed = readFileSync(join(ROOT, file), 'utf8');
      assert.ok(committed === renderCrdYaml(), `${file} is stale: run \`npm run gen:crd\` and commit the result`);
    });
  }

  it('has the names, scope, columns and subresources of Omnia’s CRD (plus shortName as)', () => {
    const crd = buildCrd() as Node;
    assert.equal(crd.metadata.name, omniaCrd.metadata.name);
    assert.equal(crd.spec.group, omniaCrd.spec.group);
    assert.equal(crd.spec.scope, omniaCrd.spec.scope);
    assert.deepEqual(crd.spec.names, { ...omniaCrd.spec.names, shortNames: ['as'] });
    const version = crd.spec.versions[0] as Node;
    assert.equal(version.name, omniaVersion.name);
    assert.deepEqual(version.subresources, omniaVersion.subresources);
    const byName = (cols: Node[]) => Object.fromEntries(cols.map((c) => [c.name, c]));
    assert.deepEqual(byName(version.additionalPrinterColumns), byName(omniaVersion.additionalPrinterColumns));
  });

  it('is structural: a type on every node, no additionalProperties: false, no TypeBox leftovers', () => {
    const walk = (node: Node, path: string): void => {
      assert.equal(typeof node.type, 'string', `${path}: type`);
      assert.ok(!('additionalProperties' in node && node.additionalProperties === false), `${path}: additionalProperties: false`);
      for (const k of Object.keys(node)) assert.ok(!['const', 'anyOf', 'oneOf', 'allOf', '$id', 'patternProperties'].includes(k), `${path}: ${k}`);
      for (const [name, child] of Object.entries((node.properties ?? {}) as Record<string, Node>)) walk(child, `${path}.${name}`);
      if (node.items) walk(node.items as Node, `${path}[]`);
    };
    const schema = crdOpenApiSchema();
    walk(schema, '');
    // Round-trips through JSON: no symbols, functions or undefined.
    assert.deepEqual(JSON.parse(JSON.stringify(schema)), schema);
  });

  it('differs from Omnia’s CRD exactly where documented', () => {
    const ours = crdOpenApiSchema() as Node;
    const diff = differences(omniaSchema.properties.spec, ours.properties.spec, 'spec', []).concat(
      differences(omniaSchema.properties.status, ours.properties.status, 'status', []),
    );
    assert.deepEqual(diff, [
      // Stricter: a section must match the type (Omnia admits `type: git` without `git`, or with `oci` too).
      "spec: CEL !has(self.type) || self.type != 'git' || has(self.git)",
      "spec: CEL !has(self.git) || !has(self.type) || self.type == 'git'",
      "spec: CEL !has(self.type) || self.type != 'oci' || has(self.oci)",
      "spec: CEL !has(self.oci) || !has(self.type) || self.type == 'oci'",
      "spec: CEL !has(self.type) || self.type != 'configmap' || has(self.configMap)",
      "spec: CEL !has(self.configMap) || !has(self.type) || self.type == 'configmap'",
      "spec: CEL !has(self.type) || self.type != 'workspace' || has(self.workspace)",
      "spec: CEL !has(self.workspace) || !has(self.type) || self.type == 'workspace'",
      // Stricter: an empty key is refused (Omnia would store "" and fall back to pack.json).
      'spec.configMap.key: minLength 1 (Omnia: none)',
      // From Omnia's current CRD (the content volume).
      'spec.createVersionOnSync: only in ours',
      // Transport and verification (issue 14): Flux's fields; a proxy is refused with ssh://, Tag modes need a tag.
      "spec.git: CEL !has(self.proxySecretRef) || !self.url.startsWith('ssh://')",
      "spec.git: CEL !has(self.verify) || !has(self.verify.mode) || self.verify.mode == 'HEAD' || (has(self.ref) && (has(self.ref.tag) || has(self.ref.semver)))",
      'spec.git.proxySecretRef: only in ours',
      // One name for the commit at most (issue 14: semver and name refs, as Flux has them).
      'spec.git.ref: CEL [has(self.branch), has(self.tag), has(self.semver), has(self.name)].filter(x, x).size() <= 1',
      'spec.git.ref: CEL !(has(self.commit) && has(self.semver))',
      // Stricter: empty ref names are refused.
      'spec.git.ref.branch: minLength 1 (Omnia: none)',
      'spec.git.ref.commit: minLength 1 (Omnia: none)',
      'spec.git.ref.name: only in ours',
      'spec.git.ref.semver: only in ours',
      'spec.git.ref.tag: minLength 1 (Omnia: none)',
      'spec.git.verify: only in ours',
      'spec.ignore: only in ours',
      // Looser grammar (all of Go's duration syntax, a superset of Omnia's pattern), then at least 1s.
      `spec.interval: pattern ${GO_DURATION_PATTERN} (Omnia: ^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$)`,
      `spec.interval: CEL !self.matches(r'${GO_DURATION_PATTERN}') || (duration(self) >= duration('1s'))`,
      // A tag or digest in the URL, or spec.oci.ref: one or the other.
      "spec.oci: CEL !has(self.ref) || !(self.url.contains('@') || self.url.matches('^oci://[^/]+/.*:[^/]*$'))",
      'spec.oci.certSecretRef: only in ours',
      'spec.oci.proxySecretRef: only in ours',
      'spec.oci.ref: only in ours',
      'spec.oci.verify: only in ours',
      'spec.targetPath: only in ours',
      // Stricter: Omnia takes any string as timeout.
      `spec.timeout: pattern ${GO_DURATION_PATTERN} (Omnia: none)`,
      `spec.timeout: CEL !self.matches(r'${GO_DURATION_PATTERN}') || (duration(self) > duration('0s') && duration(self) <= duration('1h'))`,
      'spec.type: enum adds workspace',
      // Bundle validation (PromptPack schema, arena references): Omnia has none.
      'spec.validation: only in ours',
      'spec.workspace: only in ours',
      'status.artifact.contentPath: only in ours',
      'status.artifact.version: only in ours',
      // Looser (status is ours to write): no pattern on condition types; more status fields.
      'status.conditions[].type: pattern none (Omnia: ^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$)',
      'status.headVersion: only in ours',
      'status.lastHandledReconcileAt: only in ours',
      'status.lastSyncRevision: only in ours',
      'status.lastVersionCreated: only in ours',
      'status.phase: enum adds Initializing',
      'status.versionCount: only in ours',
    ]);
  });

  it('differs from Omnia’s current CRD exactly where documented (a superset of what its consumers read)', () => {
    const ours = crdOpenApiSchema() as Node;
    const diff = differences(currentSchema.properties.spec, ours.properties.spec, 'spec', []).concat(
      differences(currentSchema.properties.status, ours.properties.status, 'status', []),
    );
    const relative = (field: string) => [
      // Stricter: Omnia admits these and fails at reconcile time; we refuse them at admission too.
      `${field}: CEL !self.startsWith('/')`,
      `${field}: CEL !self.matches('(^|/)[.][.](/|$)')`,
      `${field}: CEL !self.contains('\\\\')`,
    ];
    assert.deepEqual(diff, [
      // Omnia's "exactly one block" and "block matches type", said per section (same objects admitted).
      ...['git', 'oci', 'configmap', 'workspace'].flatMap((type) => {
        const field = type === 'configmap' ? 'configMap' : type;
        return [
          `spec: CEL !has(self.type) || self.type != '${type}' || has(self.${field})`,
          `spec: CEL !has(self.${field}) || !has(self.type) || self.type == '${type}'`,
        ];
      }),
      'spec.configMap.key: minLength 1 (Omnia: none)',
      "spec.git: CEL !has(self.proxySecretRef) || !self.url.startsWith('ssh://')",
      "spec.git: CEL !has(self.verify) || !has(self.verify.mode) || self.verify.mode == 'HEAD' || (has(self.ref) && (has(self.ref.tag) || has(self.ref.semver)))",
      'spec.git.proxySecretRef: only in ours',
      'spec.git.ref: CEL [has(self.branch), has(self.tag), has(self.semver), has(self.name)].filter(x, x).size() <= 1',
      'spec.git.ref: CEL !(has(self.commit) && has(self.semver))',
      'spec.git.ref.branch: minLength 1 (Omnia: none)',
      'spec.git.ref.commit: minLength 1 (Omnia: none)',
      'spec.git.ref.name: only in ours',
      'spec.git.ref.semver: only in ours',
      'spec.git.ref.tag: minLength 1 (Omnia: none)',
      'spec.git.verify: only in ours',
      'spec.ignore: only in ours',
      `spec.interval: pattern ${GO_DURATION_PATTERN} (Omnia: ^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$)`,
      `spec.interval: CEL !self.matches(r'${GO_DURATION_PATTERN}') || (duration(self) >= duration('1s'))`,
      "spec.oci: CEL !has(self.ref) || !(self.url.contains('@') || self.url.matches('^oci://[^/]+/.*:[^/]*$'))",
      'spec.oci.certSecretRef: only in ours',
      'spec.oci.proxySecretRef: only in ours',
      'spec.oci.ref: only in ours',
      'spec.oci.verify: only in ours',
      ...relative('spec.targetPath'),
      `spec.timeout: pattern ${GO_DURATION_PATTERN} (Omnia: none)`,
      `spec.timeout: CEL !self.matches(r'${GO_DURATION_PATTERN}') || (duration(self) > duration('0s') && duration(self) <= duration('1h'))`,
      'spec.validation: only in ours',
      ...relative('spec.workspace.path'),
      // We always serve the tarball too (Omnia writes url empty and calls it deprecated).
      'status.artifact: requires url',
      'status.conditions[].type: pattern none (Omnia: ^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$)',
      'status.lastHandledReconcileAt: only in ours',
    ]);
  });

  it('accepts every duration Omnia’s interval pattern accepts', () => {
    const omnia = new RegExp(omniaSchema.properties.spec.properties.interval.pattern as string);
    const ours = new RegExp(GO_DURATION_PATTERN, 'u');
    for (const s of ['5m', '1h', '5m30s', '1.5h', '100ms', '0s', '1h0m0s', '10.25s', '2h45m30.5s']) {
      assert.ok(omnia.test(s), s);
      assert.ok(ours.test(s), s);
    }
    for (const s of ['5 minutes', '5', 'm', '-5m', '1d', '']) assert.ok(!ours.test(s), s);
  });

  it('bounds durations in CEL exactly as spec-rules does', () => {
    const spec = crdOpenApiSchema().properties as Node;
    const props = spec.spec.properties as Node;
    const literals = (rule: string) => [...rule.matchAll(/duration\('([^']+)'\)/g)].map((m) => durationToMillis(parseGoDuration(m[1]!)));
    assert.deepEqual(literals(props.interval['x-kubernetes-validations'][0].rule), [MIN_INTERVAL_MS]);
    assert.deepEqual(literals(props.timeout['x-kubernetes-validations'][0].rule), [0, MAX_TIMEOUT_MS]);
  });

  it('carries the defaults the edge validator applies', () => {
    const props = (crdOpenApiSchema().properties as Node).spec.properties as Node;
    assert.equal(props.timeout.default, '60s');
    assert.equal(props.suspend.default, false);
    assert.equal(props.configMap.properties.key.default, 'pack.json');
    assert.equal(props.oci.properties.insecure.default, false);
    assert.equal(props.createVersionOnSync.default, true);
    assert.deepEqual(props.configMap.required, ['name']);
  });
});

describe('toStructural', () => {
  it('drops additionalProperties: false and TypeBox symbols, sorts properties and required', () => {
    const out = toStructural(Type.Object({ b: Type.String(), a: Type.Optional(Type.Integer()) }, { additionalProperties: false }));
    assert.deepEqual(out, { properties: { a: { type: 'integer' }, b: { type: 'string' } }, required: ['b'], type: 'object' });
    assert.deepEqual(Object.getOwnPropertySymbols(out), []);
  });

  it('turns Type.Record(String, V) into additionalProperties', () => {
    assert.deepEqual(toStructural(Type.Record(Type.String(), Type.String())), {
      additionalProperties: { type: 'string' },
      type: 'object',
    });
  });

  it('refuses what a CRD cannot express instead of dropping it', () => {
    assert.throws(() => toStructural(Type.Object({ v: Type.Literal('x') })), /\.v: JSON Schema keyword "const"/);
    assert.throws(() => toStructural(Type.Object({ u: Type.Union([Type.String(), Type.Number()]) })), /\.u: JSON Schema keyword "anyOf"/);
    assert.throws(() => toStructural({ description: 'untyped' }), /needs a type on every node/);
  });

  it('keeps patterns, lengths, formats, defaults and x-kubernetes-* annotations', () => {
    const interval = toStructural(ArenaSourceSpecSchema.properties.interval as never, 'spec.interval');
    assert.equal(interval.pattern, GO_DURATION_PATTERN);
    assert.ok(Array.isArray(interval['x-kubernetes-validations']));
  });
});
