/**
 * The ArenaSource CustomResourceDefinition, generated from the one TypeBox
 * schema (src/api/schema.ts): its spec and status become the CRD's structural
 * OpenAPI v3 schema, with the CEL rules (`x-kubernetes-validations`) and list
 * annotations written there. Names, scope, subresources and printer columns
 * follow Omnia's CRD, so that every object Omnia's CRD accepts means the same
 * here (see the README for where ours is deliberately stricter).
 *
 *   node dist/src/api/crd.js            write deploy/crds/omnia.altairalabs.ai_arenasources.yaml
 *                                       and the Helm chart's copy (CHART_CRD_FILE)
 *   node dist/src/api/crd.js --check    exit 1 if a committed file differs from the generated one
 *   node dist/src/api/crd.js --stdout   print it
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { stringify } from 'yaml';
import { API_GROUP, KIND, PLURAL, VERSION } from './group-version.js';
import { ArenaSourceSchema } from './schema.js';

export const CRD_VERSION = VERSION;
export const CRD_PLURAL = PLURAL;
export const CRD_NAME = `${CRD_PLURAL}.${API_GROUP}`;
/** Where the generated CRD lives, relative to the repository root. */
export const CRD_FILE = `deploy/crds/${API_GROUP}_${CRD_PLURAL}.yaml`;
/** The Helm chart's copy: a chart can only read files inside itself (templates/crd.yaml reads this one). */
export const CHART_CRD_FILE = `deploy/chart/arena-source/files/crds/${API_GROUP}_${CRD_PLURAL}.yaml`;
/** Every file `npm run gen:crd` writes (all the same text). */
export const CRD_FILES = [CRD_FILE, CHART_CRD_FILE] as const;

/** A (structural) OpenAPI v3 schema as a CRD carries it. */
export interface JSONSchemaProps {
  [keyword: string]: unknown;
}

/** The keywords a CRD schema may carry that we pass through unchanged (besides x-kubernetes-*). */
const PASS_THROUGH = new Set([
  'description',
  'type',
  'format',
  'title',
  'default',
  'enum',
  'pattern',
  'minLength',
  'maxLength',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'multipleOf',
  'minItems',
  'maxItems',
  'uniqueItems',
  'minProperties',
  'maxProperties',
  'nullable',
  'example',
]);
/** TypeBox/JSON Schema keywords that mean nothing to the API server and are dropped. */
const DROPPED = new Set(['$id', '$schema', 'examples']);
/** TypeBox's Type.Record(Type.String(), V) key pattern. */
const ANY_KEY = '^(.*)$';
const TYPES = new Set(['object', 'array', 'string', 'integer', 'number', 'boolean']);

/**
 * Turns a TypeBox schema into a structural CRD schema: TypeBox's symbols are
 * not copied (only string keys are read), `additionalProperties: false` is
 * dropped (Kubernetes forbids it next to `properties`; unknown fields are
 * pruned instead), a string-keyed record becomes `additionalProperties`, and
 * any other keyword the API server would not understand is an error rather
 * than silently lost.
 */
export function toStructural(schema: Record<string, unknown>, path = ''): JSONSchemaProps {
  const out: JSONSchemaProps = {};
  const where = path === '' ? '<root>' : path;
  for (const key of Object.keys(schema)) {
    const value = schema[key];
    if (PASS_THROUGH.has(key) || key.startsWith('x-kubernetes-')) {
      out[key] = structuredClone(value);
    } else if (DROPPED.has(key)) {
      continue;
    } else if (key === 'required') {
      if (Array.isArray(value) && value.length > 0) out.required = [...(value as string[])].sort();
    } else if (key === 'properties') {
      const props = value as Record<string, Record<string, unknown>>;
      out.properties = Object.fromEntries(
        Object.keys(props)
          .sort()
          .map((name) => [name, toStructural(props[name]!, `${path}.${name}`)]),
      );
    } else if (key === 'items') {
      if (Array.isArray(value)) throw new Error(`${where}: tuple "items" is not supported in a CRD schema`);
      out.items = toStructural(value as Record<string, unknown>, `${path}[*]`);
    } else if (key === 'additionalProperties') {
      if (value === false) continue;
      if (value === true) out['x-kubernetes-preserve-unknown-fields'] = true;
      else out.additionalProperties = toStructural(value as Record<string, unknown>, `${path}.*`);
    } else if (key === 'patternProperties') {
      const entries = Object.entries(value as Record<string, Record<string, unknown>>);
      if (entries.length !== 1 || entries[0]![0] !== ANY_KEY) {
        throw new Error(`${where}: patternProperties other than TypeBox's Record(String, …) are not supported in a CRD schema`);
      }
      out.additionalProperties = toStructural(entries[0]![1], `${path}.*`);
    } else {
      throw new Error(`${where}: JSON Schema keyword "${key}" is not supported in a CRD schema`);
    }
  }
  if (typeof out.type !== 'string' || !TYPES.has(out.type)) {
    throw new Error(`${where}: a structural schema needs a type on every node (got ${JSON.stringify(out.type)})`);
  }
  if (out.type === 'object' && out.properties && out.additionalProperties) {
    throw new Error(`${where}: properties and additionalProperties are mutually exclusive in a CRD schema`);
  }
  return sortKeys(out);
}

function sortKeys(obj: JSONSchemaProps): JSONSchemaProps {
  return Object.fromEntries(Object.keys(obj).sort().map((k) => [k, obj[k]]));
}

/** The CRD's openAPIV3Schema: spec and status from ArenaSourceSchema, the envelope as Kubernetes wants it. */
export function crdOpenApiSchema(): JSONSchemaProps {
  const root = ArenaSourceSchema as unknown as {
    description?: string;
    required?: string[];
    properties: { spec: Record<string, unknown>; status: Record<string, unknown> };
  };
  return sortKeys({
    description: root.description,
    type: 'object',
    // apiVersion, kind and metadata are the API server's business; only spec is required of the user.
    required: (root.required ?? []).filter((k) => k === 'spec' || k === 'status').sort(),
    properties: {
      apiVersion: {
        description:
          'APIVersion defines the versioned schema of this representation of an object. Servers should convert ' +
          'recognized schemas to the latest internal value, and may reject unrecognized values. More info: ' +
          'https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources',
        type: 'string',
      },
      kind: {
        description:
          'Kind is a string value representing the REST resource this object represents. Servers may infer this ' +
          'from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: ' +
          'https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds',
        type: 'string',
      },
      // The API server validates metadata itself; a CRD may only narrow name/generateName.
      metadata: { type: 'object' },
      spec: toStructural(root.properties.spec, 'spec'),
      status: toStructural(root.properties.status, 'status'),
    },
  });
}

/** The whole CustomResourceDefinition object. */
export function buildCrd(): Record<string, unknown> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: CRD_NAME },
    spec: {
      group: API_GROUP,
      names: {
        kind: KIND,
        listKind: `${KIND}List`,
        plural: CRD_PLURAL,
        singular: KIND.toLowerCase(),
        shortNames: ['as'],
      },
      scope: 'Namespaced',
      versions: [
        {
          name: CRD_VERSION,
          served: true,
          storage: true,
          // As in Omnia's CRD.
          additionalPrinterColumns: [
            { name: 'Type', type: 'string', jsonPath: '.spec.type' },
            { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
            { name: 'Revision', type: 'string', jsonPath: '.status.artifact.revision', priority: 1 },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: { openAPIV3Schema: crdOpenApiSchema() },
          subresources: { status: {} },
        },
      ],
    },
  };
}

const HEADER =
  '# Generated from src/api/schema.ts by src/api/crd.ts. Do not edit: change the schema\n' +
  '# and run `npm run gen:crd` (a unit test fails when this file is stale).\n';

/** The CRD as the committed YAML file's exact text. */
export function renderCrdYaml(): string {
  return `${HEADER}---\n${stringify(buildCrd(), { lineWidth: 0, indentSeq: false })}`;
}

/** The repository root (the nearest folder with a package.json above this file, in dist/ or not). */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
  return dir;
}

async function main(argv: string[]): Promise<number> {
  const text = renderCrdYaml();
  if (argv.includes('--stdout')) {
    process.stdout.write(text);
    return 0;
  }
  if (argv.includes('--check')) {
    let stale = 0;
    for (const rel of CRD_FILES) {
      const current = await readFile(join(repoRoot(), rel), 'utf8').catch(() => '');
      if (current === text) process.stdout.write(`${rel} is up to date\n`);
      else {
        process.stderr.write(`${rel} is stale: run \`npm run gen:crd\`\n`);
        stale = 1;
      }
    }
    return stale;
  }
  for (const rel of CRD_FILES) {
    const file = join(repoRoot(), rel);
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, text);
    process.stdout.write(`wrote ${rel}\n`);
  }
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
