/**
 * What a fetch leaves in its work directory for the steps after it, besides the files:
 * the archive's name, and the note that names the tree for the archive memo
 * (src/bundle/archive-memo.ts). A file, not process memory, so that it means the same
 * to a pack that runs after this worker restarted, or never (the directory goes with it).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BundleValidationRequest } from '../src/api/spec-rules.js';
import type { PackedFacts } from '../src/bundle/archive-memo.js';

/** The packed bundle, in the work directory. */
export const ARCHIVE_FILE = 'artifact.tar.gz';
const MEMO_NOTE = 'memo.json';

export interface MemoNote {
  /** The tree's key (gitTreeKey): packBundle memoizes what it packs under it. */
  tree: string;
  /** Set when the fetch took the archive from the memo (it is ARCHIVE_FILE): what it was packed under, and its facts. */
  packed?: { validation: BundleValidationRequest; facts: PackedFacts };
}

export async function writeMemoNote(workDir: string, note: MemoNote): Promise<void> {
  await writeFile(join(workDir, MEMO_NOTE), JSON.stringify(note));
}

/** The note, or undefined when the fetch left none (not memoized: another source type, a verified checkout). */
export async function readMemoNote(workDir: string): Promise<MemoNote | undefined> {
  const text = await readFile(join(workDir, MEMO_NOTE), 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  return text === undefined ? undefined : (JSON.parse(text) as MemoNote);
}
