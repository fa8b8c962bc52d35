/**
 * What `npm pack` ships: the product (bin, dist of src/workflows/activities,
 * deploy, examples), never tests, benchmarks or their compiled output, even
 * though `tsc -p tsconfig.json` (what the tests build) puts those in dist/ too.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { repoRoot } from '../../src/api/crd.js';

const run = promisify(execFile);

describe('npm package contents', () => {
  it('npm pack lists the product and no test/ or bench/ code, source or compiled', async () => {
    // --ignore-scripts: no `prepare` rebuild of dist/ under the other tests' feet.
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: repoRoot(),
      maxBuffer: 64 * 1024 * 1024,
    });
    const [pack] = JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>;
    const paths = (pack?.files ?? []).map((f) => f.path);
    for (const want of ['package.json', 'bin/arena-source.js', 'dist/src/cli/main.js', 'dist/workflows/index.js', 'dist/activities/index.js']) {
      assert.ok(paths.includes(want), `${want} is packed`);
    }
    const tooling = paths.filter((p) => /^(dist\/)?(test|bench)\//.test(p));
    assert.deepEqual(tooling, [], 'no test or bench code in the package');
  });
});
