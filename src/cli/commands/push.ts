/** `arena-source push DIR oci://…`: publish a bundle directory as an OCI artifact (Flux-compatible). */
import { readFile } from 'node:fs/promises';
import { pushBundle } from '../../oci/push.js';
import { env } from '../config.js';
import { UsageError } from '../usage-error.js';

export interface PushFlags {
  username?: string;
  passwordStdin?: boolean;
  dockerConfig?: string;
  insecure?: boolean;
  caFile?: string;
  source?: string;
  revision?: string;
  orasPath?: string;
}

export async function pushCommand(dir: string, url: string, flags: PushFlags): Promise<void> {
  if (!url.startsWith('oci://')) throw new UsageError(`push needs an oci:// URL (got ${url})`);
  // Passwords come from stdin or the environment, never from argv (visible in ps).
  const password = flags.passwordStdin ? (await readStdin()).replace(/\r?\n$/, '') : env('ARENA_SOURCE_OCI_PASSWORD');
  const username = flags.username;
  if (password && !username) throw new UsageError('a password needs --username (or ARENA_SOURCE_OCI_USERNAME)');
  const result = await pushBundle(dir, url, {
    ...(username ? { username } : {}),
    ...(password ? { password } : {}),
    ...(flags.dockerConfig ? { dockerConfigJson: await readFile(flags.dockerConfig, 'utf8') } : {}),
    ...(flags.insecure ? { insecure: true } : {}),
    ...(flags.caFile ? { caFile: flags.caFile } : {}),
    ...(flags.source ? { sourceUrl: flags.source } : {}),
    ...(flags.revision ? { revision: flags.revision } : {}),
    ...(flags.orasPath ? { orasPath: flags.orasPath } : {}),
  });
  console.log(`✔ pushed ${result.tagReference ?? result.reference}`);
  console.log(`  digest:   ${result.digest}`);
  console.log(`  content:  ${result.checksum} (${result.size} bytes, ${result.files} entries)`);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
