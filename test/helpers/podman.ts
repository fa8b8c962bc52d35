/**
 * podman for the image tests, with the project's containers.conf (test/image/containers.conf:
 * runc, file limits a process without CAP_SYS_RESOURCE can set, no systemd).
 */
import { execFile, execFileSync } from 'node:child_process';
import { resolve } from 'node:path';

const ENV = { ...process.env, CONTAINERS_CONF: process.env.CONTAINERS_CONF ?? resolve('test/image/containers.conf') };

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end; never rejects on a non-zero exit (check `code`). */
export function run(command: string, args: string[], timeoutMs = 120_000): Promise<Run> {
  return new Promise((done) => {
    execFile(command, args, { env: ENV, maxBuffer: 64 * 1024 * 1024, timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      done({ code, stdout, stderr });
    });
  });
}

export function podman(args: string[], timeoutMs?: number): Promise<Run> {
  return run('podman', args, timeoutMs);
}

/** Skip reason when podman is missing; on CI it never is (scripts/ensure-tools.sh installs it). */
export function podmanSkipReason(): string | false {
  if (process.env.CI === 'true') return false;
  try {
    execFileSync('podman', ['--version'], { stdio: 'ignore' });
    return false;
  } catch {
    return 'podman is not installed: run `bash scripts/ensure-tools.sh test` (Debian packages podman, runc, mmdebstrap)';
  }
}
