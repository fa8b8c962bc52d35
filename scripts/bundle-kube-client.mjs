// Build step after tsc: replaces dist/src/kube/kubernetes-client.js (a re-export of the parts of
// @kubernetes/client-node the product uses) with a tree-shaken esbuild bundle of those parts, so a
// process does not load the package's ~200 unused API classes (src/kube/kubernetes-client.ts).
// The package's own dependencies stay external (resolved from node_modules at run time).
import { build } from 'esbuild';
import { readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const BANNER = '// Bundled by scripts/bundle-kube-client.mjs from @kubernetes/client-node (Apache-2.0).';
const out = process.argv[2] ?? 'dist/src/kube/kubernetes-client.js';
const require = createRequire(import.meta.url);
const pkg = JSON.parse(readFileSync(require.resolve('@kubernetes/client-node/package.json'), 'utf8'));
const source = readFileSync(out, 'utf8');
if (source.startsWith(BANNER)) {
  console.log(`${out}: bundled already`);
} else {
  await build({
    stdin: { contents: source, resolveDir: fileURLToPath(new URL('..', import.meta.url)), sourcefile: 'kubernetes-client.js' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile: out,
    allowOverwrite: true,
    external: Object.keys(pkg.dependencies ?? {}),
    banner: { js: BANNER },
    legalComments: 'inline',
    logLevel: 'warning',
  });
  // tsc's source map describes the re-export, not the bundle.
  rmSync(`${out}.map`, { force: true });
  console.log(`${out}: @kubernetes/client-node ${pkg.version}, bundled`);
}
