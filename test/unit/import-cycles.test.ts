/**
 * No import cycles among the product's modules (src/, workflows/, activities/),
 * type-only imports included: a cycle means two rooms each need the other, so
 * neither can be read, tested or moved alone. Relative specifiers are read with a
 * regex from the .ts sources (no dependency needed) and walked depth-first.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { repoRoot } from '../../src/api/crd.js';

const ROOT = repoRoot();
const ROOMS = ['src', 'workflows', 'activities'];

// `import … from '…'`, `export … from '…'`, `import '…'` and `import('…')`, types included.
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(?\s*)['"](\.{1,2}\/[^'"]+)['"]/g;

function tsFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return tsFiles(p);
    return e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** The relative imports of a file that land on another .ts file of the graph. */
function importsOf(file: string, inGraph: Set<string>): string[] {
  const text = readFileSync(file, 'utf8').replace(/^\s*\/\*[\s\S]*?\*\/|^\s*\/\/.*$/gm, '');
  const out = new Set<string>();
  for (const m of text.matchAll(SPECIFIER)) {
    const target = resolve(dirname(file), (m[1] as string).replace(/\.js$/, '.ts'));
    if (inGraph.has(target)) out.add(target);
  }
  return [...out];
}

/** Every cycle found by a depth-first search, each as the files along it (first file repeated at the end). */
export function findCycles(files: string[]): string[][] {
  const inGraph = new Set(files);
  const edges = new Map(files.map((f) => [f, importsOf(f, inGraph)]));
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (f: string) => {
    state.set(f, 'open');
    stack.push(f);
    for (const next of edges.get(f) ?? []) {
      if (state.get(next) === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next]);
      else if (state.get(next) === undefined) visit(next);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of [...files].sort()) if (state.get(f) === undefined) visit(f);
  return cycles;
}

describe('import cycles', () => {
  it('src/, workflows/ and activities/ import each other without a cycle', () => {
    const files = ROOMS.flatMap((room) => tsFiles(join(ROOT, room)));
    assert.ok(files.length > 50, `found only ${files.length} .ts files under ${ROOMS.join(', ')} of ${ROOT}`);
    const cycles = findCycles(files).map((c) => c.map((f) => relative(ROOT, f)).join(' → '));
    assert.deepEqual(cycles, []);
  });

  it('finds a cycle, type-only and re-export edges included, and ignores commented-out imports', () => {
    const dir = mkdtempSync(join(tmpdir(), 'arena-import-cycle-'));
    try {
      writeFileSync(join(dir, 'a.ts'), "import { b } from './b.js';\n// import { d } from './d.js';\nexport const a = b;\n");
      writeFileSync(join(dir, 'b.ts'), "export { c as b } from './c.js';\n");
      writeFileSync(join(dir, 'c.ts'), "import type { A } from './a.js';\nexport const c: A | 1 = 1;\n");
      writeFileSync(join(dir, 'commented.ts'), "/**\n * import './a.js';\n */\nexport const d = 1;\n");
      const cycles = findCycles(tsFiles(dir)).map((c) => c.map((f) => relative(dir, f)));
      assert.deepEqual(cycles, [['a.ts', 'b.ts', 'c.ts', 'a.ts']]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
