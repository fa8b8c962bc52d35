/**
 * Checks a pack file against the PromptPack JSON Schema v1.4.0 (vendored in
 * ./schema with its licence). The schema is compiled once per process, on first use.
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import schema from './schema/promptpack.schema.json' with { type: 'json' };

export const PROMPTPACK_SCHEMA_VERSION = schema.version;

let compiled: ValidateFunction | undefined;

function validator(): ValidateFunction {
  if (!compiled) {
    // Strict mode catches schema mistakes; the spec's top-level "version" annotation is its only unknown keyword.
    const ajv = new Ajv2020({ allErrors: true, strict: true });
    addFormats.default(ajv);
    ajv.addKeyword('version');
    compiled = ajv.compile(schema);
  }
  return compiled;
}

/** One problem per line: the JSON pointer into the pack, and what is wrong there. */
export interface PackProblem {
  /** JSON pointer, "/" for the document itself. */
  path: string;
  message: string;
}

/** Problems of a pack file's bytes: not JSON, or not a PromptPack. Empty when valid. */
export function checkPromptPack(content: Buffer): PackProblem[] {
  let doc: unknown;
  try {
    doc = JSON.parse(content.toString('utf8'));
  } catch (err) {
    return [{ path: '/', message: `not valid JSON: ${(err as Error).message}` }];
  }
  const validate = validator();
  if (validate(doc)) return [];
  return readable(validate.errors ?? []);
}

/**
 * ajv's errors, deduplicated. When a oneOf fails, the errors of its branches say only why
 * each alternative did not fit; the oneOf's own error says what to fix, so the branches'
 * are dropped when it is there.
 */
function readable(errors: ErrorObject[]): PackProblem[] {
  const oneOfs = errors.filter((e) => e.keyword === 'oneOf').map((e) => e.schemaPath);
  const seen = new Set<string>();
  const out: PackProblem[] = [];
  for (const e of errors) {
    if (oneOfs.some((p) => e.schemaPath.startsWith(`${p}/`))) continue;
    const problem = { path: e.instancePath || '/', message: describe(e) };
    const key = `${problem.path} ${problem.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(problem);
    }
  }
  return out;
}

/** ajv's message, with the value that was unexpected or the values that are allowed. */
function describe(e: ErrorObject): string {
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties':
      return `must NOT have the property '${String(params.additionalProperty)}'`;
    case 'enum':
      return `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'pattern': {
      // Some patterns (the semver one) are longer than the rest of the message put together.
      const pattern = String(params.pattern);
      return `must match the pattern ${pattern.length > 40 ? `${pattern.slice(0, 37)}...` : pattern}`;
    }
    default:
      return e.message ?? e.keyword;
  }
}
