/**
 * What the worker loads into its workflow sandbox. The worker evaluates the
 * bundle's modules once per cached workflow, so a library pulled in by accident
 * (TypeBox through the schema module, say) costs memory a thousand times over on
 * a worker that carries a thousand sources — and anything with I/O would break
 * determinism. Only the SDK, its own dependencies and our pure modules belong here.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { workflowBundle } from '../../src/worker.js';

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
});
