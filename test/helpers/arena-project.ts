/**
 * Reads a PromptKit arena project (config.arena.yaml plus every file its spec points at),
 * finding files the way PromptArena's loader does, so a test can check that the content a
 * source delivers is a complete project and not just a config file with dangling references.
 */
import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { parse } from 'yaml';
import { repoRoot } from '../../src/api/crd.js';

export const ARENA_CONFIG_FILE = 'config.arena.yaml';

// The repository root, not a fixed '../..': this file runs from dist/test/helpers, and tsc does not copy fixtures.
/** A small offline project (mock provider, 2 prompts, 2 scenarios); see its README.md. */
export const ARENA_PROJECT_FIXTURE = join(repoRoot(), 'test', 'fixtures', 'arena-project');

// The spec lists whose entries carry a `file:` the loader opens (promptarena
// arena/arenaconfig/types.go + loader.go). `skills` is left out on purpose: it names
// directories, not files. A provider's `additional_config.mock_config` is not followed either:
// it is read by the mock provider at run time, not by the config loader.
const FILE_LISTS = [
  'prompt_configs',
  'providers',
  'tts_providers',
  'stt_providers',
  'embedding_providers',
  'image_providers',
  'scenarios',
  'evals',
  'tools',
] as const;

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function fileRefs(spec: Record<string, unknown>): string[] {
  const refs: string[] = [];
  const fromList = (list: unknown): void => {
    if (!Array.isArray(list)) return;
    for (const entry of list) {
      const file = record(entry)?.file;
      // The loader skips an empty `file:` (a prompt config may be inline instead).
      if (typeof file === 'string' && file !== '') refs.push(file);
    }
  };
  for (const key of FILE_LISTS) fromList(spec[key]);
  fromList(record(spec.self_play)?.personas);
  if (typeof spec.pack_file === 'string' && spec.pack_file !== '') refs.push(spec.pack_file);
  return refs;
}

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
  const doc = record(config);
  const spec = record(doc?.spec);
  if (doc?.kind !== 'Arena' || !spec) throw new Error(`${configPath} is not a PromptKit Arena manifest (kind: Arena with a spec)`);

  const files: string[] = [];
  for (const ref of fileRefs(spec)) {
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
