/**
 * Local mode's status sink: <root>/<namespace>/<name>.json, replaced atomically,
 * so a reader (or a person with `cat`) never sees half a status.
 */
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { SourceRef } from '../api/source-ref.js';
import type { ArenaSourceStatus } from '../api/schema.js';
import type { SourceEvent, StatusSink } from './types.js';

const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export class LocalStatusStore implements StatusSink {
  constructor(readonly root: string) {}

  async write(source: SourceRef, status: ArenaSourceStatus): Promise<void> {
    const file = this.file(source);
    await mkdir(dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
    await writeFile(tmp, `${JSON.stringify(status, null, 2)}\n`);
    await rename(tmp, file);
  }

  async read(source: SourceRef): Promise<ArenaSourceStatus | null> {
    try {
      return JSON.parse(await readFile(this.file(source), 'utf8')) as ArenaSourceStatus;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  async list(): Promise<SourceRef[]> {
    const out: SourceRef[] = [];
    for (const namespace of await readdir(this.root).catch(() => [] as string[])) {
      for (const file of await readdir(join(this.root, namespace)).catch(() => [] as string[])) {
        if (file.endsWith('.json') && !file.endsWith('.events.json')) out.push({ namespace, name: file.slice(0, -'.json'.length) });
      }
    }
    return out;
  }

  /** Local mode keeps the last few events next to the status, for a person reading the files. */
  async record(source: SourceRef, event: SourceEvent): Promise<void> {
    const file = this.file(source).replace(/\.json$/, '.events.json');
    const previous = JSON.parse(await readFile(file, 'utf8').catch(() => '[]')) as unknown[];
    const next = [...previous.slice(-19), { ...event, time: new Date().toISOString() }];
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, `${JSON.stringify(next, null, 2)}\n`);
  }

  async remove(source: SourceRef): Promise<void> {
    await rm(this.file(source).replace(/\.json$/, '.events.json'), { force: true });
    await rm(this.file(source), { force: true });
  }

  private file(source: SourceRef): string {
    if (!NAME.test(source.namespace) || !NAME.test(source.name)) {
      throw new Error(`invalid source name ${source.namespace}/${source.name}`);
    }
    return join(this.root, source.namespace, `${source.name}.json`);
  }
}
