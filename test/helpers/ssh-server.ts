/**
 * A real OpenSSH server (`sshd`, Debian's openssh-server) for the private-git
 * tests: git clients talk to it exactly as to GitHub over ssh://, running the
 * real `git-upload-pack` on the server side.
 *
 * Started as a child process (`sshd -D -e -f <generated config>`) on 127.0.0.1
 * and a free port, as the current user (root in CI), with a generated ed25519
 * host key and one generated, authorized client key. Everything it needs lives
 * in a private temporary directory that close() removes.
 *
 * Repository paths: a URL's path is handed to `git-upload-pack` unchanged, so it
 * is an ABSOLUTE path on this machine (the server runs as us, on our
 * filesystem): `url('/tmp/x/git/repo.git')` → `ssh://root@127.0.0.1:PORT/tmp/x/git/repo.git`.
 * A relative name is resolved against `root` (as `<root>/<name>.git`, like
 * bareRepoPath in src/dev/demo-git/repo.ts).
 *
 * The login is the current user (sshd running unprivileged can authenticate no
 * one else). As root sshd needs its privilege separation directory /run/sshd
 * and the `sshd` system user (both from the openssh-server package); the
 * account must not be locked (a `!` password in /etc/shadow) since UsePAM is off.
 * Only meant for 127.0.0.1: it serves whatever the current user can read.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import * as path from 'node:path';
import { bareRepoPath } from '../../src/dev/demo-git/repo.js';
import { freePort } from './free-port.js';

export interface SshGitServerOptions {
  /** Directory relative repository names are resolved against (`<root>/<name>.git`). */
  root?: string;
  /** The sshd binary; default: /usr/sbin/sshd, /usr/local/sbin/sshd, /sbin/sshd or sshd on PATH. */
  sshdBinary?: string;
  /** Extra public keys (`ssh-ed25519 AAAA… comment` lines) allowed to log in besides the generated one. */
  authorizedKeys?: string[];
  /** How long to wait for sshd to listen (default 15 s). */
  startupTimeoutMs?: number;
}

export interface SshKeyPair {
  /** OpenSSH private key file contents (unencrypted), ending with a newline. */
  privateKey: string;
  /** `ssh-ed25519 AAAA… comment` */
  publicKey: string;
}

const run = (file: string, args: string[]): Promise<{ stdout: string; stderr: string }> =>
  new Promise((resolve, reject) => {
    execFile(file, args, { encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(' ')} failed: ${stderr.trim() || err.message}`, { cause: err }));
      else resolve({ stdout, stderr });
    });
  });

/** A fresh unencrypted ed25519 key pair, made by ssh-keygen (so its format is what ssh expects). */
export async function generateSshKeyPair(comment = 'arena-source-devgit'): Promise<SshKeyPair> {
  const dir = await mkdtemp(path.join(tmpdir(), 'devgit-sshkey-'));
  try {
    const file = path.join(dir, 'key');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
    return { privateKey: await readFile(file, 'utf8'), publicKey: (await readFile(`${file}.pub`, 'utf8')).trim() };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function findSshd(explicit?: string): string {
  if (explicit) return explicit;
  const candidates = ['/usr/sbin/sshd', '/usr/local/sbin/sshd', '/sbin/sshd'];
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) if (dir) candidates.push(path.join(dir, 'sshd'));
  const found = candidates.find((p) => path.isAbsolute(p) && existsSync(p));
  if (!found) throw new Error('sshd not found (install openssh-server: apt-get install openssh-server)');
  return found; // sshd re-executes itself and insists on an absolute path
}


/** Resolves when something on host:port speaks SSH (sends its identification line). */
function sshBanner(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    let got = '';
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(2_000, () => done(false));
    sock.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (got.includes('\n')) done(got.startsWith('SSH-2.0-'));
    });
    sock.once('error', () => done(false));
    sock.once('close', () => done(false));
  });
}

export class SshGitServer {
  readonly host = '127.0.0.1';
  /** The login user in URLs: the user this process (and sshd) runs as. */
  readonly user: string;
  private stderr = '';
  private exited = false;
  private closed = false;

  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
    private readonly opts: SshGitServerOptions,
    readonly port: number,
    /** The server's public host key, `ssh-ed25519 AAAA…` (no comment). */
    readonly hostPublicKey: string,
    /** The generated key that may log in. */
    readonly clientKey: SshKeyPair,
  ) {
    this.user = userInfo().username;
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => {
      this.stderr = (this.stderr + d).slice(-16_000);
    });
    // 'close' (not 'exit'): by then stderr has been read to the end.
    child.on('close', () => {
      this.exited = true;
    });
  }

  /** A known_hosts line for this server: `[127.0.0.1]:PORT ssh-ed25519 AAAA…`. */
  get hostKeyLine(): string {
    return `[${this.host}]:${this.port} ${this.hostPublicKey}`;
  }

  /** The authorized client's private key (OpenSSH format). */
  get clientPrivateKey(): string {
    return this.clientKey.privateKey;
  }

  /** sshd's recent log lines (LogLevel VERBOSE), for diagnosing a failed login. */
  get log(): string {
    return this.stderr;
  }

  /** ssh:// URL of a repository: an absolute path on this machine, or a name under `root`. */
  url(repoPath: string): string {
    let p = repoPath;
    if (!path.isAbsolute(p)) {
      if (!this.opts.root) throw new Error(`relative repository ${JSON.stringify(repoPath)} needs the server's root option`);
      p = bareRepoPath(this.opts.root, p);
    }
    // git hands an ssh:// path to git-upload-pack as it is (no percent-decoding).
    if (/[\s'"\\%?#]/.test(p)) throw new Error(`repository path ${JSON.stringify(p)} has characters an ssh:// URL cannot carry here`);
    return `ssh://${this.user}@${this.host}:${this.port}${p}`;
  }

  static async start(opts: SshGitServerOptions = {}): Promise<SshGitServer> {
    const sshd = findSshd(opts.sshdBinary);
    const asRoot = process.getuid?.() === 0;
    if (asRoot) await mkdir('/run/sshd', { recursive: true, mode: 0o755 }); // privilege separation dir
    const dir = await mkdtemp(path.join(tmpdir(), 'devgit-sshd-'));
    try {
      await chmod(dir, 0o700);
      const hostKeyFile = path.join(dir, 'ssh_host_ed25519_key');
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'arena-source-devgit-host', '-f', hostKeyFile]);
      const hostPublicKey = (await readFile(`${hostKeyFile}.pub`, 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
      const clientKey = await generateSshKeyPair('arena-source-devgit-client');
      const authorizedKeysFile = path.join(dir, 'authorized_keys');
      await writeFile(authorizedKeysFile, [clientKey.publicKey, ...(opts.authorizedKeys ?? [])].join('\n') + '\n', { mode: 0o600 });

      const timeoutMs = opts.startupTimeoutMs ?? 15_000;
      let lastError = '';
      // The port is picked free, then bound by sshd: another process may win the race; retry.
      for (let attempt = 1; attempt <= 5; attempt++) {
        const port = await freePort();
        const configFile = path.join(dir, 'sshd_config');
        await writeFile(configFile, sshdConfig({ port, hostKeyFile, authorizedKeysFile, user: userInfo().username }), { mode: 0o600 });
        const child = spawn(sshd, ['-D', '-e', '-f', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
        const server = new SshGitServer(child, dir, opts, port, hostPublicKey, clientKey);
        const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
        const deadline = Date.now() + timeoutMs;
        while (Date.now() < deadline && !server.exited) {
          const ready = await Promise.race([sshBanner(server.host, port), spawnError]);
          if (ready instanceof Error) throw new Error(`cannot run ${sshd}: ${ready.message}`);
          if (ready && !server.exited) return server;
          await new Promise((r) => setTimeout(r, 50));
        }
        lastError = server.stderr.trim() || (server.exited ? `sshd exited (${child.exitCode ?? child.signalCode})` : 'timed out');
        await server.stop();
        if (!/Address already in use|Cannot bind/i.test(lastError)) break;
      }
      throw new Error(`sshd did not start: ${lastError}`);
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** Stops sshd (SIGTERM, then SIGKILL) and removes its keys and config. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.stop();
    await rm(this.dir, { recursive: true, force: true });
  }

  private async stop(): Promise<void> {
    if (this.exited || this.child.exitCode !== null || this.child.signalCode !== null) return;
    const gone = new Promise((r) => this.child.once('close', r));
    this.child.kill('SIGTERM');
    const killer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await gone;
    clearTimeout(killer);
  }
}

function sshdConfig(o: { port: number; hostKeyFile: string; authorizedKeysFile: string; user: string }): string {
  const q = (p: string) => `"${p}"`;
  return [
    `ListenAddress 127.0.0.1:${o.port}`,
    `HostKey ${q(o.hostKeyFile)}`,
    'PidFile none',
    // %% keeps sshd from expanding tokens in our path.
    `AuthorizedKeysFile ${q(o.authorizedKeysFile.replace(/%/g, '%%'))}`,
    `AllowUsers ${o.user}`,
    'PermitRootLogin prohibit-password', // root in CI: keys only
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'HostbasedAuthentication no',
    'UsePAM no',
    'StrictModes no', // the temp dir and $HOME need not be owned/modes as sshd likes
    'PermitUserEnvironment no',
    'AcceptEnv GIT_PROTOCOL', // git protocol v2 over ssh
    'AllowTcpForwarding no',
    'AllowStreamLocalForwarding no',
    'AllowAgentForwarding no',
    'X11Forwarding no',
    'PermitTunnel no',
    'PermitTTY no',
    'PrintMotd no',
    'PrintLastLog no',
    'UseDNS no',
    'MaxStartups 64:30:128',
    'MaxAuthTries 6',
    'LoginGraceTime 30',
    'LogLevel VERBOSE',
    '',
  ].join('\n');
}
