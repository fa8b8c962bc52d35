/**
 * src/kube/kubernetes-client.ts is the only way product code reaches @kubernetes/client-node's
 * values, and the build replaces it with a bundle of just those (scripts/bundle-kube-client.mjs):
 * the package's unused generated API classes stay out of every process.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import * as pkg from '@kubernetes/client-node';
import { repoRoot } from '../../src/api/crd.js';
import * as bundled from '../../src/kube/kubernetes-client.js';

const ROOT = repoRoot();

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sources(p)));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

describe('@kubernetes/client-node, bundled', () => {
  it('product code imports its values only through src/kube/kubernetes-client.ts (types directly)', async () => {
    const offenders: string[] = [];
    for (const dir of ['src', 'activities', 'workflows']) {
      for (const file of await sources(join(ROOT, dir))) {
        const rel = relative(ROOT, file);
        if (rel === join('src', 'kube', 'kubernetes-client.ts')) continue;
        const text = await readFile(file, 'utf8');
        for (const m of text.matchAll(/import\s+(type\s+)?([^;]*?)\s+from\s+'@kubernetes\/client-node'/g)) {
          const names = /^\{([\s\S]*)\}$/.exec(m[2]!.trim())?.[1]?.split(',').map((n) => n.trim()).filter(Boolean);
          const typesOnly = m[1] !== undefined || (names !== undefined && names.every((n) => n.startsWith('type ')));
          if (!typesOnly) offenders.push(`${rel}: ${m[0]}`);
        }
        if (/import\(\s*'@kubernetes\/client-node'\s*\)/.test(text)) offenders.push(`${rel}: dynamic import`);
      }
    }
    assert.deepEqual(offenders, []);
  });

  it('the built module is the bundle: what it exports, without the unused API classes', async () => {
    const built = await readFile(join(ROOT, 'dist', 'src', 'kube', 'kubernetes-client.js'), 'utf8');
    assert.match(built, /^\/\/ Bundled by scripts\/bundle-kube-client\.mjs/, 'npm run build (or scripts/ensure-node-deps.sh) bundles it');
    assert.doesNotMatch(built, /from ["']@kubernetes\/client-node["']/, 'it does not load the package entry');
    assert.doesNotMatch(built, /ObservableAdmissionregistrationV1Api/, 'an API class nothing uses is left out');
    assert.deepEqual(Object.keys(bundled).sort(), ['CoreV1Api', 'CustomObjectsApi', 'KubeConfig', 'PatchStrategy', 'VersionApi', 'makeInformer', 'setHeaderOptions']);
    assert.deepEqual({ ...bundled.PatchStrategy }, { ...pkg.PatchStrategy });
    const config = new bundled.KubeConfig();
    config.loadFromOptions({
      clusters: [{ name: 'c', server: 'https://127.0.0.1:6443', skipTLSVerify: false }],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    assert.ok(config.makeApiClient(bundled.CustomObjectsApi) instanceof bundled.CustomObjectsApi);
    assert.equal(config.getCurrentCluster()?.server, 'https://127.0.0.1:6443');
  });
});
