/**
 * Validation at the edge (CLI apply, dev file watcher, controller): shape from the
 * TypeBox schema, then the semantic rules, with defaults applied. Every problem
 * names the field, so a person can fix the YAML without reading code.
 */
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';
import { InvalidSpecError } from '../errors.js';
import { API_VERSION, ArenaSourceSchema, KIND, type ArenaSource, type ArenaSourceSpec } from './schema.js';
import { rangeProblems } from './semver-range.js';
import { checkSpec, DEFAULT_CONFIGMAP_KEY, DEFAULT_TIMEOUT, DEFAULT_VALIDATION } from './spec-rules.js';

const compiled = TypeCompiler.Compile(ArenaSourceSchema);

export const DEFAULT_NAMESPACE = 'default';

/** Parses an untrusted document into an ArenaSource with defaults, or throws InvalidSpecError. */
export function parseArenaSource(doc: unknown): ArenaSource {
  const candidate = structuredClone(doc) as Record<string, unknown>;
  if (candidate === null || typeof candidate !== 'object') {
    throw new InvalidSpecError('ArenaSource: not an object');
  }
  const label = describe(candidate);
  if (candidate.apiVersion !== API_VERSION || candidate.kind !== KIND) {
    throw new InvalidSpecError(`${label}: expected apiVersion ${API_VERSION} and kind ${KIND}`);
  }
  // Status is ours to write; an applied document's status is ignored, not validated.
  delete candidate.status;
  applyDefaults(candidate);

  const problems = [...compiled.Errors(candidate)].map(
    (e) => `${fieldName(e.path)}: ${expected(e.schema, e.message)}${e.value === undefined ? '' : ` (got ${short(e.value)})`}`,
  );
  if (problems.length === 0) {
    const check = checkSpec((candidate as unknown as ArenaSource).spec);
    if (!check.ok) problems.push(...check.problems);
    problems.push(...rangeProblems((candidate as unknown as ArenaSource).spec));
  }
  if (problems.length > 0) {
    const unique = [...new Set(problems)];
    throw new InvalidSpecError(`${label} is invalid: ${unique.join('; ')}`, unique);
  }
  return candidate as unknown as ArenaSource;
}

/** Fills the defaults the CRD would fill, so local mode and Kubernetes agree. */
function applyDefaults(obj: Record<string, unknown>): void {
  const metadata = (obj.metadata ??= {}) as Record<string, unknown>;
  if (metadata && typeof metadata === 'object') metadata.namespace ??= DEFAULT_NAMESPACE;
  const spec = obj.spec as Partial<ArenaSourceSpec> | undefined;
  if (!spec || typeof spec !== 'object') return;
  spec.timeout ??= DEFAULT_TIMEOUT;
  spec.suspend ??= false;
  spec.createVersionOnSync ??= true;
  spec.validation ??= DEFAULT_VALIDATION;
  if (spec.configMap && typeof spec.configMap === 'object') spec.configMap.key ??= DEFAULT_CONFIGMAP_KEY;
  if (spec.oci && typeof spec.oci === 'object') spec.oci.insecure ??= false;
  const verify = spec.git && typeof spec.git === 'object' ? spec.git.verify : undefined;
  if (verify && typeof verify === 'object') verify.mode ??= 'HEAD';
}

/** TypeBox says "Expected kind 'StringEnum'" for our string enums; say which values are allowed. */
function expected(schema: unknown, message: string): string {
  const values = (schema as { enum?: unknown }).enum;
  return Array.isArray(values) ? `must be one of ${values.join(', ')}` : message;
}

/** "/spec/git/url" → "spec.git.url"; "" → "ArenaSource". */
function fieldName(pointer: string): string {
  if (pointer === '') return 'ArenaSource';
  return pointer
    .slice(1)
    .split('/')
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .join('.');
}

function describe(obj: Record<string, unknown>): string {
  const meta = obj.metadata as { name?: unknown; namespace?: unknown } | undefined;
  const name = typeof meta?.name === 'string' ? meta.name : '<unnamed>';
  const ns = typeof meta?.namespace === 'string' ? meta.namespace : DEFAULT_NAMESPACE;
  return `ArenaSource ${ns}/${name}`;
}

function short(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** True when the value matches the schema exactly (used in tests and by the CRD generator's checks). */
export function isArenaSource(value: unknown): value is ArenaSource {
  return Value.Check(ArenaSourceSchema, value);
}
