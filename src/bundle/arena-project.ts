/**
 * What a PromptKit arena config (config.arena.yaml) references: the files (and skill
 * directories) PromptArena's loader opens, each with the field that names it. Follows
 * AltairaLabs/promptarena arena/arenaconfig (types.go, loader.go) @ e90d58d6: every
 * `file:` of the lists below, self_play personas (when self-play is on), `pack_file`,
 * and `skills` entries that name a directory. Paths are relative to the config's directory.
 */
import { parseDocument } from 'yaml';

export const ARENA_CONFIG_FILE = 'config.arena.yaml';

export interface ArenaReference {
  /** The field that names it, e.g. `spec.scenarios[1].file`. */
  field: string;
  /** As written in the config. */
  path: string;
  kind: 'file' | 'directory';
}

/** The lists whose entries carry a `file:` the loader opens. */
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

export type ArenaConfigRead = { ok: true; references: ArenaReference[] } | { ok: false; problem: string };

export function arenaReferences(text: string): ArenaConfigRead {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) return { ok: false, problem: `not valid YAML: ${firstLine(doc.errors[0]!.message)}` };
  const root = record(doc.toJS());
  const spec = record(root?.spec);
  if (root?.kind !== 'Arena' || !spec) return { ok: false, problem: 'not a PromptKit arena config (kind: Arena with a spec)' };

  const refs: ArenaReference[] = [];
  const fromList = (field: string, list: unknown): void => {
    if (!Array.isArray(list)) return;
    list.forEach((entry, i) => {
      const file = record(entry)?.file;
      // The loader skips an empty `file:` (a prompt config may be given inline instead).
      if (typeof file === 'string' && file !== '') refs.push({ field: `${field}[${i}].file`, path: file, kind: 'file' });
    });
  };
  for (const key of FILE_LISTS) fromList(`spec.${key}`, spec[key]);
  const selfPlay = record(spec.self_play);
  if (selfPlay && selfPlay.enabled !== false) fromList('spec.self_play.personas', selfPlay.personas);
  if (typeof spec.pack_file === 'string' && spec.pack_file !== '') refs.push({ field: 'spec.pack_file', path: spec.pack_file, kind: 'file' });
  if (Array.isArray(spec.skills)) {
    spec.skills.forEach((entry: unknown, i) => {
      // A bare string is a path; otherwise `dir` (preferred) or `path`; inline skills name none.
      const skill = record(entry);
      const dir = typeof entry === 'string' ? entry : skill?.dir || skill?.path;
      if (typeof dir === 'string' && dir !== '') refs.push({ field: `spec.skills[${i}]`, path: dir, kind: 'directory' });
    });
  }
  return { ok: true, references: refs };
}

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? text;
}
