import { constants as fsConstants } from 'node:fs';
import { copyFile, link } from 'node:fs/promises';

/**
 * A hard link of `from` at `to` (a new name), or a copy where the filesystem refuses a
 * link (another device, no link support, the per-file link limit). Only for files nothing
 * writes into once made (checkouts, packed archives): a link shares its bytes.
 */
export async function linkOrCopy(from: string, to: string): Promise<void> {
  await link(from, to).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EXDEV' && err.code !== 'EPERM' && err.code !== 'EMLINK') throw err;
    await copyFile(from, to, fsConstants.COPYFILE_EXCL);
  });
}
