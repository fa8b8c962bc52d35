/**
 * Ignore rules: which files of a fetched source stay out of the bundle, as Flux's
 * source-controller decides it (fluxcd/pkg sourceignore), matched by the `ignore`
 * package (gitignore semantics), never by hand:
 *   1. Flux's VCS exclusions, lowest priority: `.git/`, `.gitignore`, `.gitmodules`,
 *      `.gitattributes` (Flux's other defaults — images, archives, CI files — are not
 *      applied: pictures can be prompt content; spec.ignore can list them);
 *   2. every `.sourceignore` file, each for the paths below its own directory (a
 *      nested one after its parents, so it wins) — for git also those in the
 *      folders above spec.git.path, up to the repository root;
 *   3. spec.ignore, relative to the bundle root, highest priority.
 * Later rules win (a `!pattern` re-includes), except that nothing below an excluded
 * directory comes back (git's rule; Flux's go-git matcher would let it).
 * A directory left empty only because everything in it was excluded goes too, so
 * a commit that only touches excluded files packs to the same bytes.
 *
 * A nested file's patterns are moved to the root the way git reads them: a pattern
 * with a slash is anchored to its directory (`dir/pattern`), one without matches at
 * any depth below it (`dir/**\/pattern`); matching itself is the library's.
 */
import { constants as fsConstants } from 'node:fs';
import { open, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import ignore, { type Ignore } from 'ignore';
import { UnsafeContentError } from '../errors.js';

export const SOURCE_IGNORE_FILE = '.sourceignore';
/** fluxcd/pkg sourceignore.ExcludeVCS. */
export const VCS_PATTERNS: readonly string[] = ['.git/', '.gitignore', '.gitmodules', '.gitattributes'];

export interface IgnoreRules {
  /** spec.ignore (gitignore lines), relative to the bundle root. */
  patterns?: string | undefined;
  /** Read `.sourceignore` files (git, oci, workspace; a ConfigMap has no directories). */
  sourceIgnore: boolean;
  /** Apply Flux's VCS exclusions. */
  vcsDefaults: boolean;
}

/** The rules for a spec's source type. */
export function ignoreRulesOf(spec: { type: string; ignore?: string | undefined }): IgnoreRules {
  const tree = spec.type !== 'configmap';
  return { patterns: spec.ignore, sourceIgnore: tree, vcsDefaults: tree };
}

/** Whether spec.ignore excludes a single file named `name` (a ConfigMap key). */
export function ignoresFile(patterns: string | undefined, name: string): boolean {
  if (!patterns) return false;
  return newMatcher().add(patterns).ignores(name);
}

interface Layer {
  /** Directory the patterns are relative to, from the scan root ('' = the root). */
  dir: string;
  text: string;
}

/**
 * The entries under `root/bundlePath` the rules drop: paths relative to the bundle
 * directory, top-most only (a dropped directory stands for everything in it), in
 * byte order. `root` is where .sourceignore files are looked for from (a git
 * checkout's root); `bundlePath` ('' = root) is the directory that is packed.
 */
export async function ignoredEntries(root: string, bundlePath: string, rules: IgnoreRules): Promise<string[]> {
  const base: Layer[] = [];
  if (rules.sourceIgnore) {
    // The folders above the bundle (git with spec.git.path): their .sourceignore files apply too.
    const parts = bundlePath ? bundlePath.split('/') : [];
    for (let i = 0; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      const text = await readIgnoreFile(join(root, dir));
      if (text !== undefined) base.push({ dir, text });
    }
  }
  const dropped: string[] = [];
  const matchers = new Map<string, Ignore>();
  const matcherOf = (layers: Layer[]): Ignore => {
    const key = layers.map((l) => l.dir).join('\0');
    let m = matchers.get(key);
    if (!m) {
      m = newMatcher();
      if (rules.vcsDefaults) m.add([...VCS_PATTERNS]);
      for (const layer of layers) m.add(rebase(layer.text, layer.dir));
      if (rules.patterns) m.add(rebase(rules.patterns, bundlePath));
      matchers.set(key, m);
    }
    return m;
  };

  /** Returns true when the directory ends up empty only because of exclusions. */
  async function visit(rel: string, layers: Layer[]): Promise<boolean> {
    const scanRel = join2(bundlePath, rel);
    const abs = join(root, scanRel);
    const own = rules.sourceIgnore ? await readIgnoreFile(abs) : undefined;
    const here = own !== undefined ? [...layers, { dir: scanRel, text: own }] : layers;
    const matcher = matcherOf(here);
    const entries = await readdir(abs, { withFileTypes: true });
    entries.sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
    let kept = 0;
    let gone = 0;
    for (const entry of entries) {
      // Git's metadata is never content (the packer skips it) and stays where it is for git itself.
      if (entry.name === '.git') continue;
      const childRel = join2(rel, entry.name);
      const isDir = entry.isDirectory();
      const path = join2(bundlePath, childRel);
      if (matcher.ignores(isDir ? `${path}/` : path)) {
        dropped.push(childRel);
        gone++;
      } else if (isDir && (await visit(childRel, here))) {
        // Everything below was dropped: the directory goes instead of its entries.
        while (dropped.length > 0 && dropped[dropped.length - 1]!.startsWith(`${childRel}/`)) dropped.pop();
        dropped.push(childRel);
        gone++;
      } else {
        kept++;
      }
    }
    return kept === 0 && gone > 0;
  }
  await visit('', base);
  return dropped;
}

/** Removes what the rules drop from `root/bundlePath`; returns how many top-most entries went. */
export async function pruneIgnored(root: string, bundlePath: string, rules: IgnoreRules): Promise<number> {
  const bundleDir = bundlePath ? join(root, bundlePath) : root;
  const dropped = await ignoredEntries(root, bundlePath, rules).catch((err: NodeJS.ErrnoException) => {
    // No bundle directory in this revision: packing says so.
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return [];
    throw err;
  });
  for (const rel of dropped) await rm(join(bundleDir, rel), { recursive: true, force: true });
  return dropped.length;
}

function newMatcher(): Ignore {
  // Case-sensitive, as git is on Linux (the library defaults to ignoring case).
  return ignore({ ignorecase: false });
}

/** The patterns of a file in `dir` (relative to the scan root), as patterns relative to the root. */
export function rebase(text: string, dir: string): string[] {
  const lines = text.split(/\r?\n/);
  if (dir === '') return lines;
  const prefix = dir.replace(/[\\*?[\]]/g, (c) => `\\${c}`);
  return lines.map((line) => {
    if (line.trim() === '' || line.startsWith('#')) return line;
    const negated = line.startsWith('!');
    const body = negated ? line.slice(1) : line;
    // A slash before the end (not counting a trailing one) anchors the pattern to its directory.
    const anchored = body.replace(/\/+\s*$/, '').includes('/');
    const rebased = anchored ? `${prefix}/${body.replace(/^\/+/, '')}` : `${prefix}/**/${body}`;
    return negated ? `!${rebased}` : rebased;
  });
}

/** Bigger .sourceignore files are refused: rules, not content. */
const MAX_IGNORE_FILE_BYTES = 1024 * 1024;

async function readIgnoreFile(dir: string): Promise<string | undefined> {
  let handle;
  try {
    // O_NOFOLLOW | O_NONBLOCK: a symlink is not followed out of the checkout, a FIFO does not hang us.
    handle = await open(join(dir, SOURCE_IGNORE_FILE), fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Absent, or a symlink (ELOOP): no rules, as a symlink is not bundle content either.
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') return undefined;
    throw err;
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) return undefined;
    if (st.size > MAX_IGNORE_FILE_BYTES) {
      throw new UnsafeContentError(`a ${SOURCE_IGNORE_FILE} file is ${st.size} bytes; at most ${MAX_IGNORE_FILE_BYTES} are read`);
    }
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

function join2(a: string, b: string): string {
  return a === '' ? b : b === '' ? a : `${a}/${b}`;
}
