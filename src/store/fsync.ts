/** fsync of a file or directory by path: what makes a rename-into-place durable. */
import { open } from 'node:fs/promises';

export async function fsyncPath(p: string): Promise<void> {
  const handle = await open(p, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
