/**
 * The offline demo repository of `arena-source dev --git-repos DIR`: each folder
 * of DIR becomes a bare git repository (first run only; later pushes are kept),
 * served over smart HTTP by the same real-git server the tests use. Push to it
 * and watch the source pick up the new revision.
 */
import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { GitHttpServer } from './git-http-server.js';
import { bareRepoPath, seedRepo, type FileContents } from './repo.js';

export async function startDemoGit(reposDir: string, gitRoot: string, host: string, port: number) {
  const names: string[] = [];
  for (const entry of await readdir(reposDir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    names.push(entry.name);
    if (existsSync(join(bareRepoPath(gitRoot, entry.name), 'HEAD'))) continue;
    await seedRepo(gitRoot, entry.name, await readTree(join(reposDir, entry.name)), {
      message: `Import ${entry.name} from ${reposDir}`,
      tag: 'v1.0.0',
    });
  }
  const server = await GitHttpServer.start({ root: gitRoot, host, port });
  return { server, urls: names.map((n) => server.repoUrl(n)) };
}

async function readTree(root: string): Promise<FileContents> {
  const files: FileContents = {};
  async function walk(dir: string): Promise<void> {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile()) files[relative(root, full)] = await readFile(full);
    }
  }
  await walk(root);
  return files;
}
