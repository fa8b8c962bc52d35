/**
 * Reads a PromptKit arena project (config.arena.yaml plus every file its spec points at),
 * finding files the way PromptArena's loader does, so a test can check that the content a
 * source delivers is a complete project and not just a config file with dangling references.
 */
import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { parse } from 'yaml';
import { repoRoot } from '../../src/api/crd.js';
import { ARENA_CONFIG_FILE, arenaReferences } from '../../src/bundle/arena-project.js';

export { ARENA_CONFIG_FILE };

// The repository root, not a fixed '../..': this file runs from dist/test/helpers, and tsc does not copy fixtures.
/** A small offline project (mock provider, 2 prompts, 2 scenarios); see its README.md. */
export const ARENA_PROJECT_FIXTURE = join(repoRoot(), 'test', 'fixtures', 'arena-project');

async function loadProject(projectDir: string): Promise<{ config: unknown; files: string[] }> {
  const root = resolve(projectDir);
  const configPath = join(root, ARENA_CONFIG_FILE);
  let text: string;
  try {
    text = await readFile(configPath, 'utf8');
  } catch (err) {
    throw new Error(`no readable ${ARENA_CONFIG_FILE} in ${root}`, { cause: err });
  }
  const config: unknown = parse(text);
  // The references PromptArena's loader follows, as the source's bundle validation reads them
  // (skills name directories, not files, so they are left out here).
  const read = arenaReferences(text);
  if (!read.ok) throw new Error(`${configPath}: ${read.problem}`);

  const files: string[] = [];
  for (const ref of read.references.filter((r) => r.kind === 'file').map((r) => r.path)) {
    // PromptKit's ResolveFilePath: absolute as is, otherwise relative to config.arena.yaml's directory.
    const abs = isAbsolute(ref) ? ref : join(root, ref);
    const rel = relative(root, abs);
    // A source only ships projectDir, so anything outside it would be missing for a consumer.
    if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
      throw new Error(`${ARENA_CONFIG_FILE} references ${ref}, which is outside ${root}`);
    }
    const isFile = await stat(abs).then((s) => s.isFile(), () => false);
    if (!isFile) throw new Error(`${ARENA_CONFIG_FILE} references ${ref}, but ${abs} is not an existing file`);
    const key = rel.split(sep).join('/');
    if (!files.includes(key)) files.push(key);
  }
  return { config, files };
}

/** Every file config.arena.yaml references, as paths relative to projectDir ('/'-separated, in config order). */
export async function referencedFiles(projectDir: string): Promise<string[]> {
  return (await loadProject(projectDir)).files;
}

/**
 * The parsed config.arena.yaml and the text of every file it references, keyed as
 * referencedFiles() returns them (config.arena.yaml itself is not among the keys).
 */
export async function readArenaProject(projectDir: string): Promise<{ config: unknown; files: Record<string, string> }> {
  const { config, files } = await loadProject(projectDir);
  const texts: Record<string, string> = {};
  for (const file of files) {
    const text = await readFile(join(resolve(projectDir), file), 'utf8');
    if (text.trim() === '') throw new Error(`${file} (referenced by ${ARENA_CONFIG_FILE}) is empty`);
    texts[file] = text;
  }
  return { config, files: texts };
}
