/**
 * Rendering the deploy/ manifests the way a cluster user does (kustomize for
 * deploy/base and its overlays, helm for deploy/chart/arena-source) and sending
 * them to the test API server (test/helpers/kube.ts). The tools are the real
 * ones, built from their Go modules by scripts/ensure-tools.sh into
 * ~/.cache/arena-source/bin.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { isExecutable, type Kube, type KubeResponse } from './kube.js';

const run = promisify(execFile);

/** Where scripts/ensure-tools.sh builds the tools. */
export const TOOLS_BIN_DIR = join(homedir(), '.cache', 'arena-source', 'bin');



/** A tool from ~/.cache/arena-source/bin, else from PATH; undefined when neither has it. */
export function findTool(name: string): string | undefined {
  const dirs = [TOOLS_BIN_DIR, ...(process.env.PATH ?? '').split(delimiter).filter(Boolean)];
  return dirs.map((d) => join(d, name)).find(isExecutable);
}

/**
 * For `describe(..., { skip: toolSkipReason('helm') })`: a reason naming the
 * missing tools, except under CI (CI=true), where a missing tool must fail.
 */
export function toolSkipReason(...names: string[]): string | false {
  const missing = names.filter((n) => !findTool(n));
  if (missing.length === 0 || process.env.CI === 'true') return false;
  return `${missing.join(', ')} not built: run \`bash scripts/ensure-tools.sh test\``;
}

function tool(name: string): string {
  const bin = findTool(name);
  if (!bin) throw new Error(`${name} not found in ${TOOLS_BIN_DIR} or PATH: run \`bash scripts/ensure-tools.sh test\``);
  return bin;
}

/** The objects of a multi-document YAML stream (empty documents dropped). */
export function parseManifests(text: string): any[] {
  return parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length > 0) throw new Error(`invalid YAML: ${d.errors[0]!.message}`);
      return d.toJS();
    })
    .filter((d) => d !== null && d !== undefined);
}

/** What `kubectl apply -k DIR` would send. */
export async function kustomizeBuild(dir: string): Promise<any[]> {
  const { stdout } = await run(tool('kustomize'), ['build', dir], { maxBuffer: 32 * 1024 * 1024 });
  return parseManifests(stdout);
}

export interface HelmOptions {
  release?: string;
  namespace?: string;
  /** Values, as a values file would hold them (sent with -f). */
  values?: Record<string, unknown>;
}

/**
 * Runs helm with its own throwaway config/cache/data homes (nothing of the
 * user's is read or written) and, with `values`, a values file. Rejects with
 * helm's stderr when it exits non-zero.
 */
export async function helm(args: string[], values?: Record<string, unknown>): Promise<string> {
  const home = await mkdtemp(join(tmpdir(), 'arena-helm-'));
  try {
    const extra: string[] = [];
    if (values) {
      const file = join(home, 'values.json'); // JSON is YAML
      await writeFile(file, JSON.stringify(values));
      extra.push('-f', file);
    }
    const env = {
      ...process.env,
      HELM_CONFIG_HOME: join(home, 'config'),
      HELM_CACHE_HOME: join(home, 'cache'),
      HELM_DATA_HOME: join(home, 'data'),
    };
    const { stdout } = await run(tool('helm'), [...args, ...extra], { env, maxBuffer: 32 * 1024 * 1024 }).catch(
      (err: Error & { stderr?: string }) => {
        throw new Error(`helm ${args.join(' ')}: ${err.stderr?.trim() || err.message}`);
      },
    );
    return stdout;
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

/** `helm template` of a chart: what `helm install` would send. */
export async function helmTemplate(chart: string, opts: HelmOptions = {}): Promise<any[]> {
  const args = ['template', opts.release ?? 'arena-source', chart, '--namespace', opts.namespace ?? 'arena-source-system'];
  return parseManifests(await helm(args, opts.values));
}

/** REST collection path of a manifest (the kinds deploy/ uses). */
export function restCollection(doc: any): string {
  const ns = doc.metadata.namespace;
  const [group, version] = doc.apiVersion.includes('/') ? doc.apiVersion.split('/') : ['', doc.apiVersion];
  const plural: Record<string, string> = {
    Namespace: 'namespaces',
    ServiceAccount: 'serviceaccounts',
    ClusterRole: 'clusterroles',
    ClusterRoleBinding: 'clusterrolebindings',
    ConfigMap: 'configmaps',
    PersistentVolumeClaim: 'persistentvolumeclaims',
    Deployment: 'deployments',
    Service: 'services',
    CustomResourceDefinition: 'customresourcedefinitions',
    PodDisruptionBudget: 'poddisruptionbudgets',
    ServiceMonitor: 'servicemonitors',
  };
  const kind = plural[doc.kind];
  if (!kind) throw new Error(`no REST path known for ${doc.kind}`);
  const root = group ? `/apis/${group}/${version}` : `/api/${version}`;
  return ns ? `${root}/namespaces/${ns}/${kind}` : `${root}/${kind}`;
}

/** A server-side dry-run create (kubectl apply --dry-run=server, unknown fields rejected). */
export function dryRunCreate(kube: Kube, doc: any): Promise<KubeResponse> {
  return kube.request('POST', `${restCollection(doc)}?dryRun=All&fieldValidation=Strict`, doc);
}

/** Creates an object for real; an existing one (409) is fine. */
export async function ensureCreated(kube: Kube, doc: any): Promise<void> {
  const res = await kube.request('POST', restCollection(doc), doc);
  if (res.status !== 201 && res.status !== 409) throw new Error(`${doc.kind}/${doc.metadata.name}: ${res.status} ${res.text}`);
}

/** `Kind/name` of a manifest. */
export const idOf = (doc: any): string => `${doc.kind}/${doc.metadata.name}`;
