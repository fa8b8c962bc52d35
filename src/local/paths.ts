/** Where a local deployment keeps its state under --data-dir (worker, serve, dev and the CLI agree on it). */
import { join } from 'node:path';

export function localPaths(dataDir: string) {
  return {
    artifacts: join(dataDir, 'artifacts'),
    resources: join(dataDir, 'resources'),
    status: join(dataDir, 'status'),
    work: join(dataDir, 'work'),
    content: join(dataDir, 'workspace-content'),
  };
}
