/**
 * Bundle validation, done while the bundle is packed: the packer shows this observer
 * the tree, then the bytes of the few files it asks for (read once, for the archive
 * anyway). Pack files are checked against the PromptPack schema; every arena config's
 * references must name files (or skill directories) that are in the bundle.
 */
import { posix } from 'node:path';
import type { BundleValidationRequest } from '../api/spec-rules.js';
import type { BundleReport } from '../api/status.js';
import { ARENA_CONFIG_FILE, arenaReferences } from './arena-project.js';
import type { PackObserver, TreeEntry } from './pack.js';
import { PROMPTPACK_SCHEMA_VERSION, checkPromptPack } from './promptpack.js';



/** Problems shown in a message; the rest are counted. */
export const SHOWN_PROBLEMS = 5;
/** Files larger than this are not read into memory to be checked (a problem, not a crash). */
export const MAX_CHECKED_BYTES = 16 * 1024 * 1024;
const MAX_LINK_HOPS = 40;

export class BundleValidator implements PackObserver {
  private readonly packFiles: Set<string>;
  private readonly tree = new Map<string, TreeEntry>();
  private readonly problems: string[] = [];
  private readonly checkedPacks: string[] = [];
  private readonly checkedConfigs: Array<{ file: string; references: number }> = [];
  private readonly configs: Array<{ file: string; content: Buffer }> = [];

  constructor(request: Pick<BundleValidationRequest, 'packFiles'>) {
    this.packFiles = new Set(request.packFiles);
  }

  // ---- PackObserver ----

  setTree(entries: readonly TreeEntry[]): void {
    for (const e of entries) this.tree.set(e.path, e);
  }

  wants(path: string, size: number): boolean {
    if (!this.isPack(path) && !isArenaConfig(path)) return false;
    if (size > MAX_CHECKED_BYTES) {
      this.problems.push(`${path}: ${size} bytes, too large to check (at most ${MAX_CHECKED_BYTES})`);
      return false;
    }
    return true;
  }

  file(path: string, content: Buffer): void {
    if (isArenaConfig(path)) this.configs.push({ file: path, content });
    if (this.isPack(path)) {
      this.checkedPacks.push(path);
      for (const p of checkPromptPack(content)) this.problems.push(`${path} ${p.path}: ${p.message}`);
    }
  }

  // ---- result ----

  /** Call once packing is done (arena references need the whole tree). */
  report(): BundleReport {
    for (const { file, content } of this.configs) this.checkArenaConfig(file, content);
    if (this.problems.length > 0) {
      const shown = this.problems.slice(0, SHOWN_PROBLEMS).join('; ');
      const more = this.problems.length > SHOWN_PROBLEMS ? `; and ${this.problems.length - SHOWN_PROBLEMS} more` : '';
      const count = this.problems.length === 1 ? '1 problem' : `${this.problems.length} problems`;
      return { valid: false, message: `${count}: ${shown}${more}` };
    }
    const checked = [
      ...this.checkedPacks.map((p) => `${p} (PromptPack schema v${PROMPTPACK_SCHEMA_VERSION})`),
      ...this.checkedConfigs.map((c) => `${c.file} (${c.references} referenced ${c.references === 1 ? 'path' : 'paths'} present)`),
    ];
    return {
      valid: true,
      message:
        checked.length > 0
          ? `checked ${checked.join(', ')}`
          : `nothing to check: no pack.json, *.pack.json or ${ARENA_CONFIG_FILE} in the bundle`,
    };
  }

  private isPack(path: string): boolean {
    return this.packFiles.has(path) || posix.basename(path).endsWith('.pack.json');
  }

  private checkArenaConfig(file: string, content: Buffer): void {
    const read = arenaReferences(content.toString('utf8'));
    if (!read.ok) {
      this.problems.push(`${file}: ${read.problem}`);
      return;
    }
    const dir = posix.dirname(file);
    for (const ref of read.references) {
      const where = `${file} ${ref.field}`;
      if (posix.isAbsolute(ref.path)) {
        this.problems.push(`${where}: "${ref.path}" is an absolute path; a bundle only carries paths relative to ${ARENA_CONFIG_FILE}`);
        continue;
      }
      const rel = posix.normalize(posix.join(dir, ref.path));
      if (rel === '..' || rel.startsWith('../')) {
        this.problems.push(`${where}: "${ref.path}" is outside the bundle`);
        continue;
      }
      const found = this.kindOf(rel);
      if (found === ref.kind) continue;
      this.problems.push(
        found === undefined
          ? `${where}: "${ref.path}" is not in the bundle`
          : `${where}: "${ref.path}" is a ${found}, not a ${ref.kind}`,
      );
    }
    this.checkedConfigs.push({ file, references: read.references.length });
  }

  /** What `rel` is in the bundle, following symlinks as the loader would ('.' is the root). */
  private kindOf(rel: string): 'file' | 'directory' | undefined {
    let todo = rel === '.' ? [] : rel.split('/');
    let cur = '';
    let hops = 0;
    while (todo.length > 0) {
      const [part, ...rest] = todo as [string, ...string[]];
      todo = rest;
      if (part === '' || part === '.') continue;
      if (part === '..') {
        if (cur === '') return undefined;
        cur = posix.dirname(cur) === '.' ? '' : posix.dirname(cur);
        continue;
      }
      const next = cur === '' ? part : `${cur}/${part}`;
      const entry = this.tree.get(next);
      if (!entry) return undefined;
      if (entry.kind === 'symlink') {
        if (++hops > MAX_LINK_HOPS || entry.target === undefined || posix.isAbsolute(entry.target)) return undefined;
        todo = [...entry.target.split('/'), ...todo]; // resolved from the link's directory, `cur`
        continue;
      }
      cur = next;
    }
    return cur === '' ? 'directory' : (this.tree.get(cur)?.kind as 'file' | 'directory');
  }
}

function isArenaConfig(path: string): boolean {
  return posix.basename(path) === ARENA_CONFIG_FILE;
}
