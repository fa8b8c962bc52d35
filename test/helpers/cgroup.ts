/**
 * A memory cgroup for a child process, as a pod's `resources.limits.memory` gives its container: under
 * this process's own cgroup, on cgroup v2 when it offers the memory controller, else on cgroup v1's
 * memory hierarchy (machines that mount both, as this project's CI does). Needs root.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface MemoryCgroup {
  path: string;
  version: 1 | 2;
  limitBytes: number;
  /** The command line that starts `command args` inside the cgroup, as the same process (sh execs it). */
  wrap(command: string, args: string[]): { command: string; args: string[] };
  /** The most the cgroup has been charged (RSS and page cache), when the kernel reports it. */
  peakBytes(): Promise<number | undefined>;
  /** Removes the cgroup once its processes have exited. */
  remove(): Promise<void>;
}

/** The cgroup paths of this process, by hierarchy ("" for v2, else the v1 controller names). */
function ownCgroups(): Map<string, string> {
  const own = new Map<string, string>();
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n').filter(Boolean)) {
    const [, controllers = '', path = '/'] = line.split(':');
    for (const c of controllers.split(',')) own.set(c, path);
  }
  return own;
}

/** Where to make a child cgroup with the memory controller, and which version that is. */
function memoryParent(): { dir: string; version: 1 | 2 } {
  const own = ownCgroups();
  for (const root of ['/sys/fs/cgroup', '/sys/fs/cgroup/unified']) {
    const dir = join(root, own.get('') ?? '/');
    if (own.has('') && existsSync(join(dir, 'cgroup.controllers')) && readFileSync(join(dir, 'cgroup.controllers'), 'utf8').split(/\s+/).includes('memory')) {
      return { dir, version: 2 };
    }
  }
  const v1 = own.get('memory');
  if (v1 !== undefined && existsSync('/sys/fs/cgroup/memory/memory.limit_in_bytes')) return { dir: join('/sys/fs/cgroup/memory', v1), version: 1 };
  throw new Error('no memory cgroup controller on this machine (neither cgroup v2 with "memory" nor a v1 memory hierarchy)');
}

export async function createMemoryCgroup(name: string, limitBytes: number): Promise<MemoryCgroup> {
  const parent = memoryParent();
  const path = join(parent.dir, name);
  if (parent.version === 2) {
    // A v2 parent hands the controller down only through subtree_control (refused if it holds processes itself).
    const control = join(parent.dir, 'cgroup.subtree_control');
    if (!(await readFile(control, 'utf8')).split(/\s+/).includes('memory')) {
      await writeFile(control, '+memory').catch((err) => {
        throw new Error(`cannot enable the memory controller under ${parent.dir}: ${(err as Error).message}`);
      });
    }
  }
  await mkdir(path, { recursive: true });
  await writeFile(join(path, parent.version === 2 ? 'memory.max' : 'memory.limit_in_bytes'), String(limitBytes));
  return {
    path,
    version: parent.version,
    limitBytes,
    wrap: (command, args) => ({ command: '/bin/sh', args: ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', path, command, ...args] }),
    async peakBytes() {
      const file = join(path, parent.version === 2 ? 'memory.peak' : 'memory.max_usage_in_bytes');
      const text = await readFile(file, 'utf8').catch(() => undefined);
      return text === undefined ? undefined : Number(text.trim());
    },
    async remove() {
      for (let i = 0; ; i++) {
        try {
          return await rmdir(path);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
          if (i >= 50) throw err;
          await sleep(100); // its last process is still exiting
        }
      }
    },
  };
}
