/**
 * --webhook-secret-file: the receiver's one secret. No file configured, or the
 * file absent (an optional Kubernetes Secret not created), means no receiver;
 * an empty file is a mistake worth stopping for.
 */
import { readFile } from 'node:fs/promises';
import { UsageError } from '../cli/usage-error.js';

export async function loadWebhookSecret(file: string | undefined): Promise<Buffer | undefined> {
  if (!file) return undefined;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UsageError(`--webhook-secret-file ${file}: ${(err as Error).message}`);
  }
  // Secrets made from a file or with echo often end in a newline that the sender's copy lacks.
  const secret = text.trim();
  if (secret === '') throw new UsageError(`--webhook-secret-file ${file} is empty: put the webhook secret in it (or unset the flag to turn the receiver off)`);
  return Buffer.from(secret, 'utf8');
}
