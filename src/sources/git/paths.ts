/** Where in a checkout the bundle is. */
import { join } from 'node:path';
import { InvalidSpecError } from '../../errors.js';

/** The directory inside a checkout that holds the bundle (`normalizedPath` '' = the whole tree). */
export function bundleDirOf(checkoutDir: string, normalizedPath: string): string {
  if (normalizedPath.split('/').includes('..')) throw new InvalidSpecError(`spec.git.path: must not contain ".."`);
  return normalizedPath ? join(checkoutDir, normalizedPath) : checkoutDir;
}
