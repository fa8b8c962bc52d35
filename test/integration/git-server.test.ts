/**
 * The dev git smart-HTTP server, driven by the real git CLI.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';

import { GitHttpServer, v2Command } from '../../src/dev/demo-git/git-http-server.js';
import { FaultyGitHttpServer } from '../helpers/faulty-git-server.js';
import { bareRepoPath, commitFiles, createBareRepo, git, resolveRemoteRef, seedRepo } from '../../src/dev/demo-git/repo.js';

let tmp: string;
let root: string;

before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'git-server-test-'));
  root = path.join(tmp, 'repos');
});

after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

let workCounter = 0;
function workDir(): string {
  return path.join(tmp, `work-${++workCounter}`);
}

async function gitFails(args: string[]): Promise<string> {
  try {
    await git(args);
  } catch (e) {
    return (e as Error).message;
  }
  assert.fail(`expected git ${args.join(' ')} to fail`);
}

/** Raw HTTP request, for what git itself does not show (status codes, headers). */
function rawRequest(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: Buffer } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

function pkt(line: string): string {
  return (line.length + 4).toString(16).padStart(4, '0') + line;
}

describe('GitHttpServer (as FaultyGitHttpServer: no fault unless set)', () => {
  let server: FaultyGitHttpServer;
  let firstSha: string;

  before(async () => {
    firstSha = await seedRepo(root, 'demo', {
      'README.md': '# demo\n',
      'prompts/hello.yaml': 'name: hello\n',
    }, { tag: 'v1.0.0' });
    server = await FaultyGitHttpServer.start({ root });
  });

  after(async () => {
    await server.close();
  });

  it('serves on 127.0.0.1 with repo URLs', () => {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(server.repoUrl('demo'), `${server.url}/demo.git`);
    assert.equal(server.repoUrl('demo.git'), `${server.url}/demo.git`);
  });

  it('clones over HTTP (protocol v2) and counts one fetch', async () => {
    server.resetStats();
    const dir = workDir();
    await git(['-c', 'protocol.version=2', 'clone', '--quiet', server.repoUrl('demo'), dir]);
    assert.equal(await readFile(path.join(dir, 'prompts/hello.yaml'), 'utf8'), 'name: hello\n');
    assert.equal((await git(['rev-parse', 'HEAD'], { cwd: dir })).stdout.trim(), firstSha);
    const s = server.stats('demo');
    assert.equal(s.advertisements, 1);
    assert.equal(s.lsRefs, 1);
    assert.equal(s.fetches, 1);
    assert.equal(s.pushes, 0);
  });

  it('does not count a fetch when the client is already up to date', async () => {
    const dir = workDir();
    await git(['clone', '--quiet', server.repoUrl('demo'), dir]);
    server.resetStats();
    await git(['-c', 'protocol.version=2', 'fetch', '--quiet', 'origin'], { cwd: dir });
    assert.deepEqual(server.stats('demo'), { advertisements: 1, lsRefs: 1, fetches: 0, pushes: 0 });
  });

  it('counts ls-remote as advertisement + ls-refs, not as a fetch (v2)', async () => {
    server.resetStats();
    const { stdout } = await git(['-c', 'protocol.version=2', 'ls-remote', server.repoUrl('demo')]);
    assert.match(stdout, new RegExp(`^${firstSha}\\trefs/heads/main$`, 'm'));
    assert.match(stdout, new RegExp(`^${firstSha}\\trefs/tags/v1.0.0$`, 'm'));
    assert.deepEqual(server.stats('demo'), { advertisements: 1, lsRefs: 1, fetches: 0, pushes: 0 });
  });

  it('counts protocol v0 the same way: ls-remote is no fetch, clone is', async () => {
    server.resetStats();
    await git(['-c', 'protocol.version=0', 'ls-remote', server.repoUrl('demo')]);
    assert.deepEqual(server.stats('demo'), { advertisements: 1, lsRefs: 0, fetches: 0, pushes: 0 });
    server.resetStats();
    const dir = workDir();
    await git(['-c', 'protocol.version=0', 'clone', '--quiet', server.repoUrl('demo'), dir]);
    assert.equal(await readFile(path.join(dir, 'README.md'), 'utf8'), '# demo\n');
    const s = server.stats('demo');
    assert.equal(s.advertisements, 1);
    assert.equal(s.lsRefs, 0);
    assert.ok(s.fetches >= 1, `fetches: ${s.fetches}`);
  });

  it('supports partial clone filters, shallow fetches and fetching a reachable sha', async () => {
    const dir = workDir();
    await git(['clone', '--quiet', '--filter=blob:none', '--depth=1', '--branch', 'v1.0.0', server.repoUrl('demo'), dir]);
    assert.equal(await readFile(path.join(dir, 'README.md'), 'utf8'), '# demo\n');
    const dir2 = workDir();
    await git(['init', '--quiet', dir2]);
    await git(['fetch', '--quiet', '--depth=1', server.repoUrl('demo'), firstSha], { cwd: dir2 });
    assert.equal((await git(['rev-parse', 'FETCH_HEAD'], { cwd: dir2 })).stdout.trim(), firstSha);
  });

  it('accepts pushes (commitFiles over HTTP) and counts them', async () => {
    server.resetStats();
    const sha = await commitFiles(server.repoUrl('demo'), { 'prompts/bye.yaml': 'name: bye\n' }, {
      branch: 'main',
      message: 'add bye',
      tag: 'v1.1.0',
      annotatedTag: true,
      remove: ['README.md'],
    });
    assert.match(sha, /^[0-9a-f]{40}$/);
    assert.ok(server.stats('demo').pushes >= 1);
    const bare = bareRepoPath(root, 'demo');
    assert.equal(await resolveRemoteRef(bare, 'refs/heads/main'), sha);
    assert.equal(await resolveRemoteRef(bare, 'refs/tags/v1.1.0^{}'), sha);
    const files = (await git(['ls-tree', '-r', '--name-only', sha], { cwd: bare })).stdout.split('\n').filter(Boolean);
    assert.deepEqual(files.sort(), ['prompts/bye.yaml', 'prompts/hello.yaml']);
    const parent = (await git(['rev-parse', `${sha}^`], { cwd: bare })).stdout.trim();
    assert.equal(parent, firstSha);
    const author = (await git(['log', '-1', '--format=%an <%ae>|%cn <%ce>', sha], { cwd: bare })).stdout.trim();
    assert.equal(author, 'Arena Source Dev <devgit@arena-source.invalid>|Arena Source Dev <devgit@arena-source.invalid>');
  });

  it('counts a large (chunked, auth-probed) push once', async () => {
    await seedRepo(root, 'big', { 'a.txt': 'a\n' });
    server.resetStats();
    // Larger than http.postBuffer (1 MiB): git probes with a lone flush packet, then streams chunked.
    const sha = await commitFiles(server.repoUrl('big'), { 'big.bin': randomBytes(3 << 20) }, { branch: 'main', message: 'big' });
    assert.equal(server.stats('big').pushes, 1);
    assert.equal(await resolveRemoteRef(bareRepoPath(root, 'big'), 'refs/heads/main'), sha);
  });

  it('creates new branches from the default branch, and orphan history in empty repos', async () => {
    const sha = await commitFiles(server.repoUrl('demo'), { 'x.txt': 'x' }, { branch: 'feature/x', message: 'x' });
    const bare = bareRepoPath(root, 'demo');
    const main = await resolveRemoteRef(bare, 'refs/heads/main');
    assert.equal((await git(['rev-parse', `${sha}^`], { cwd: bare })).stdout.trim(), main);

    await createBareRepo(root, 'empty');
    const orphan = await commitFiles(server.repoUrl('empty'), { 'a.txt': 'a' }, { branch: 'main', message: 'first' });
    assert.equal((await git(['rev-list', '--count', orphan], { cwd: bareRepoPath(root, 'empty') })).stdout.trim(), '1');
    const head = (await git(['symbolic-ref', 'HEAD'], { cwd: bareRepoPath(root, 'empty') })).stdout.trim();
    assert.equal(head, 'refs/heads/main');
  });

  it('reads gzip request bodies and v2 commands', async () => {
    server.resetStats();
    const body = Buffer.from(pkt('command=ls-refs\n') + pkt('agent=test\n') + '0001' + pkt('peel\n') + pkt('ref-prefix refs/heads/\n') + '0000');
    assert.equal(v2Command(body), 'ls-refs');
    const res = await rawRequest(`${server.repoUrl('demo')}/git-upload-pack`, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/x-git-upload-pack-request',
        'Content-Encoding': 'gzip',
        Accept: 'application/x-git-upload-pack-result',
        'Git-Protocol': 'version=2',
      },
      body: gzipSync(body),
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'application/x-git-upload-pack-result');
    assert.match(res.body.toString('utf8'), /refs\/heads\/main/);
    assert.deepEqual(server.stats('demo'), { advertisements: 0, lsRefs: 1, fetches: 0, pushes: 0 });
  });

  it('passes CGI statuses through (unknown repository is 404)', async () => {
    const res = await rawRequest(`${server.repoUrl('nope')}/info/refs?service=git-upload-pack`);
    assert.equal(res.status, 404);
    const msg = await gitFails(['ls-remote', server.repoUrl('nope')]);
    assert.match(msg, /not found|404/i);
  });

  describe('faults', () => {
    after(() => server.setFault(null));

    it("'down' makes git fail until cleared", async () => {
      server.setFault({ kind: 'down' });
      const msg = await gitFails(['ls-remote', server.repoUrl('demo')]);
      assert.match(msg, /ls-remote/);
      server.setFault(null);
      await git(['ls-remote', server.repoUrl('demo')]);
    });

    it("'status' answers with that HTTP code", async () => {
      server.setFault({ kind: 'status', code: 503 });
      const msg = await gitFails(['ls-remote', server.repoUrl('demo')]);
      assert.match(msg, /503/);
      server.setFault({ kind: 'status', code: 500 });
      assert.equal((await rawRequest(`${server.repoUrl('demo')}/info/refs?service=git-upload-pack`)).status, 500);
      server.setFault(null);
    });

    it("'cut' closes the connection mid-response", async () => {
      server.setFault({ kind: 'cut' });
      await gitFails(['clone', '--quiet', server.repoUrl('demo'), workDir()]);
      server.setFault(null);
    });

    it("'delay' slows answers down but they still succeed", async () => {
      server.setFault({ kind: 'delay', ms: 300 });
      const t0 = Date.now();
      await git(['ls-remote', server.repoUrl('demo')]);
      assert.ok(Date.now() - t0 >= 300);
      server.setFault(null);
    });
  });
});

describe('GitHttpServer with basic auth and a path prefix', () => {
  let server: GitHttpServer;

  before(async () => {
    await seedRepo(root, 'private', { 'secret.txt': 'shh\n' });
    server = await GitHttpServer.start({
      root,
      basicAuth: { username: 'alice', password: 's3cr:et' },
      pathPrefix: '/git',
    });
  });

  after(async () => {
    await server.close();
  });

  it('answers 401 with a Basic challenge without or with wrong credentials', async () => {
    const url = `${server.repoUrl('private')}/info/refs?service=git-upload-pack`;
    assert.ok(url.startsWith(`${server.url}/git/private.git/`));
    const none = await rawRequest(url);
    assert.equal(none.status, 401);
    assert.equal(none.headers['www-authenticate'], 'Basic realm="git"');
    const wrong = await rawRequest(url, { headers: { Authorization: `Basic ${Buffer.from('alice:nope').toString('base64')}` } });
    assert.equal(wrong.status, 401);
    assert.deepEqual(server.stats('private'), { advertisements: 0, lsRefs: 0, fetches: 0, pushes: 0 });
  });

  it('git fails without or with wrong credentials', async () => {
    await gitFails(['ls-remote', server.repoUrl('private')]);
    const u = new URL(server.repoUrl('private'));
    u.username = 'alice';
    u.password = 'wrong';
    const msg = await gitFails(['ls-remote', u.toString()]);
    assert.match(msg, /Authentication failed|401/i);
  });

  it('git clones and pushes with the right credentials', async () => {
    const url = server.repoUrl('private', { withCredentials: true });
    const dir = workDir();
    await git(['clone', '--quiet', url, dir]);
    assert.equal(await readFile(path.join(dir, 'secret.txt'), 'utf8'), 'shh\n');
    const sha = await commitFiles(url, { 'secret.txt': 'still shh\n' }, { branch: 'main', message: 'update' });
    assert.equal(await resolveRemoteRef(bareRepoPath(root, 'private'), 'refs/heads/main'), sha);
    const s = server.stats('private');
    assert.ok(s.fetches >= 1 && s.pushes >= 1, JSON.stringify(s));
  });

  it('answers 404 outside the path prefix', async () => {
    const auth = { Authorization: `Basic ${Buffer.from('alice:s3cr:et').toString('base64')}` };
    const res = await rawRequest(`${server.url}/private.git/info/refs?service=git-upload-pack`, { headers: auth });
    assert.equal(res.status, 404);
  });
});
