/**
 * What the worker loads into its workflow sandbox. The worker evaluates the
 * bundle's modules once per cached workflow, so a library pulled in by accident
 * (TypeBox through the schema module, say) costs memory a thousand times over on
 * a worker that carries a thousand sources — and anything with I/O would break
 * determinism. Only the SDK, its own dependencies and our pure modules belong here.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { workflowBundle } from '../../src/worker.js';
import { bundleInputsFingerprint, currentPrebuiltBundle, PREBUILT_BUNDLE } from '../../src/workflow-bundle.js';

const SDK_PACKAGES = ['@temporalio/common', '@temporalio/workflow', 'nexus-rpc', 'long', 'ms'];
const OUR_PURE_MODULES = /^\.\/dist\/(workflows\/[\w-]+|src\/api\/(canonical|duration|group-version|repository-key|search-attributes|spec-rules|status)|src\/errors)\.js$/;

describe('workflow bundle', () => {
  it('holds only the Temporal SDK and our pure modules', async () => {
    const { code } = await workflowBundle();
    const modules = new Set([...code.matchAll(/^\/\*\*\*\/ "(\.\/[^"]+)"/gm)].map((m) => m[1]!));
    assert.ok(modules.size > 10, `expected webpack module ids in the bundle, found ${modules.size}`);
    const packages = new Set<string>();
    const ours: string[] = [];
    for (const id of modules) {
      const pkg = /^\.\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(id)?.[1];
      if (pkg) packages.add(pkg);
      else ours.push(id);
    }
    assert.deepEqual([...packages].filter((p) => !SDK_PACKAGES.includes(p)), [], 'third-party packages in the workflow bundle');
    assert.deepEqual(ours.filter((id) => !OUR_PURE_MODULES.test(id)), [], 'modules outside the pure set in the workflow bundle');
    assert.ok(ours.includes('./dist/workflows/arena-source.js'));
  });

  it('the build made the bundle workers load, and it is the one the sandbox checks', async () => {
    // scripts/run-tests.mjs and `npm run build` write it (workflow-bundle-main.js --prebuilt).
    assert.equal(currentPrebuiltBundle(), PREBUILT_BUNDLE);
    assert.equal((await workflowBundle()).code, await readFile(PREBUILT_BUNDLE, 'utf8'));
  });

  it('a prebuilt bundle counts only while the compiled code is the code it was made from', async () => {
    const dist = await mkdtemp(join(tmpdir(), 'arena-dist-'));
    try {
      await mkdir(join(dist, 'workflows'), { recursive: true });
      await mkdir(join(dist, 'src', 'api'), { recursive: true });
      await writeFile(join(dist, 'workflows', 'index.js'), 'export {};\n');
      await writeFile(join(dist, 'src', 'api', 'status.js'), 'export const a = 1;\n');
      await writeFile(join(dist, 'workflow-bundle.js'), '/* bundle */');
      assert.equal(currentPrebuiltBundle(dist), undefined, 'no fingerprint: not current');
      await writeFile(join(dist, 'workflow-bundle.fingerprint'), `${bundleInputsFingerprint(dist)}\n`);
      assert.equal(currentPrebuiltBundle(dist), join(dist, 'workflow-bundle.js'));
      await writeFile(join(dist, 'src', 'api', 'status.js'), 'export const a = 2;\n');
      assert.equal(currentPrebuiltBundle(dist), undefined, 'a changed module makes it stale');
      await writeFile(join(dist, 'src', 'api', 'status.js'), 'export const a = 1;\n');
      await writeFile(join(dist, 'workflows', 'extra.js'), 'export {};\n');
      assert.equal(currentPrebuiltBundle(dist), undefined, 'a new module makes it stale');
    } finally {
      await rm(dist, { recursive: true, force: true });
    }
  });
});
