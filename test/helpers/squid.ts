/**
 * A real HTTP proxy for tests: Debian's squid, on 127.0.0.1 (a free port), with
 * a generated config: no cache, its own hosts file (so test names such as
 * `git.arena.test` resolve only through the proxy: a client that bypassed it
 * could not even look the name up), optional basic auth (basic_ncsa_auth with
 * an htpasswd file), and an access log the tests read to prove it was used.
 *
 * Needs squid and htpasswd (apache2-utils); scripts/ensure-tools.sh installs them.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmod, chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './free-port.js';
import { waitFor } from './wait.js';

const run = promisify(execFile);
export const SQUID_BINARY = process.env.SQUID_PATH || '/usr/sbin/squid';
const NCSA_AUTH = '/usr/lib/squid/basic_ncsa_auth';

export interface TestProxy {
  /** http://127.0.0.1:<port> */
  address: string;
  /** The access log's lines: `… TCP_TUNNEL/200 … CONNECT git.arena.test:443 user …`. */
  accessLog(): Promise<string[]>;
  close(): Promise<void>;
}

export async function startSquid(opts: { hosts: Record<string, string>; auth?: { username: string; password: string } }): Promise<TestProxy> {
  const dir = await mkdtemp(join(tmpdir(), 'arena-squid-'));
  await writeFile(join(dir, 'hosts'), Object.entries(opts.hosts).map(([name, ip]) => `${ip} ${name}`).join('\n') + '\n');
  const auth: string[] = [];
  if (opts.auth) {
    const { stdout } = await run('htpasswd', ['-bn', opts.auth.username, opts.auth.password]); // MD5 (apr1): basic_ncsa_auth reads it
    await writeFile(join(dir, 'passwd'), stdout.trim() + '\n');
    auth.push(
      `auth_param basic program ${NCSA_AUTH} ${join(dir, 'passwd')}`,
      'auth_param basic children 1 startup=1',
      'auth_param basic realm arena-test',
      'acl authed proxy_auth REQUIRED',
      'http_access allow authed',
    );
  } else {
    auth.push('http_access allow all');
  }
  const port = await freePort();
  const conf = [
    `http_port 127.0.0.1:${port}`,
    ...auth,
    'http_access deny all',
    'cache deny all',
    'cache_mem 4 MB',
    `hosts_file ${join(dir, 'hosts')}`,
    'dns_nameservers 127.0.0.1', // names come from the hosts file only: nothing leaves the machine
    `pid_filename ${join(dir, 'squid.pid')}`,
    `access_log stdio:${join(dir, 'access.log')}`,
    `cache_log ${join(dir, 'cache.log')}`,
    'cache_store_log none',
    `coredump_dir ${dir}`,
    'netdb_filename none',
    'logfile_rotate 0',
    'shutdown_lifetime 0 seconds',
    'forwarded_for delete',
  ];
  await writeFile(join(dir, 'squid.conf'), conf.join('\n') + '\n');
  // Started as root, squid runs as its effective user (Debian: proxy), which must write its logs here.
  if (userInfo().uid === 0) {
    const { stdout } = await run('id', ['-u', 'proxy']).catch(() => ({ stdout: '' }));
    const uid = Number(stdout.trim());
    if (Number.isInteger(uid) && uid > 0) {
      await chmod(dir, 0o755);
      for (const f of ['', 'hosts', 'squid.conf', ...(opts.auth ? ['passwd'] : [])]) await chown(join(dir, f), uid, -1);
    }
  }
  const child: ChildProcess = spawn(SQUID_BINARY, ['-N', '-f', join(dir, 'squid.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  let exited = false;
  child.on('exit', () => (exited = true));
  const cacheLog = async () => readFile(join(dir, 'cache.log'), 'utf8').catch(() => '');
  try {
    await waitFor(
      'squid to accept connections',
      async () => (exited ? 'exited' : /Accepting HTTP Socket connections/.test(await cacheLog()) ? 'ready' : 'starting'),
      (state) => state !== 'starting',
    );
    if (exited) throw new Error(`squid exited: ${output}\n${await cacheLog()}`);
  } catch (err) {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    address: `http://127.0.0.1:${port}`,
    accessLog: async () => (await readFile(join(dir, 'access.log'), 'utf8').catch(() => '')).split('\n').filter((l) => l.trim() !== ''),
    close: async () => {
      if (!exited) {
        child.kill('SIGKILL');
        await new Promise((r) => child.once('exit', r));
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
