/**
 * A private directory for key material (certificates, private keys, public keys
 * to verify with): created 0700 under `root`, files written 0600 and never
 * overwritten, all of it removed by `remove()`. Callers remove it in `finally`,
 * so nothing outlives the one process that needed it.
 */
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface KeyDir {
  readonly path: string;
  /** Writes `name` (a plain file name) with mode 0600 and returns its path. */
  write(name: string, content: string | Buffer): Promise<string>;
  /** Idempotent. */
  remove(): Promise<void>;
}

export async function makeKeyDir(prefix: string, root: string = tmpdir()): Promise<KeyDir> {
  await mkdir(root, { recursive: true });
  const path = await mkdtemp(join(root, prefix));
  const remove = async (): Promise<void> => {
    await rm(path, { recursive: true, force: true, maxRetries: 3 });
  };
  try {
    await chmod(path, 0o700);
  } catch (err) {
    await remove();
    throw err;
  }
  return {
    path,
    async write(name, content) {
      if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`key file name ${JSON.stringify(name)} is not a plain file name`);
      const file = join(path, name);
      await writeFile(file, content, { mode: 0o600, flag: 'wx' });
      return file;
    },
    remove,
  };
}
