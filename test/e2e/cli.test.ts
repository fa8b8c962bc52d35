/**
 * The CLI as a user runs it: `arena-source dev` as a child process (its own
 * Temporal dev server with UI, worker, artifact server, demo git server), then
 * the other verbs against it. Ports are free ones on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile, mkdir, cp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { commitFiles } from '../../src/dev/demo-git/repo.js';
import { waitFor } from '../helpers/wait.js';
import { freePort } from '../helpers/free-port.js';

const BIN = resolve('bin/arena-source.js');
const run = promisify(execFile);


describe('arena-source CLI against `arena-source dev`', () => {
  let dir: string;
  let dev: ChildProcess;
  let output = '';
  let ports: { temporal: number; ui: number; artifacts: number; git: number };
  const cli = async (...args: string[]) => {
    const { stdout } = await run('node', [BIN, '--data-dir', join(dir, 'data'), '--temporal-address', `127.0.0.1:${ports.temporal}`, ...args], {
      env: { ...process.env, TEMPORAL_ADDRESS: '' },
    });
    return stdout;
  };
  const getJson = async (name: string) => JSON.parse(await cli('get', name, '-n', 'arena', '-o', 'json'));

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arena-cli-'));
    ports = { temporal: await freePort(), ui: await freePort(), artifacts: await freePort(), git: await freePort() };
    await mkdir(join(dir, 'sources'));
    await cp('examples/repos', join(dir, 'repos'), { recursive: true });
    await cp('examples/sources/configmap-source.yaml', join(dir, 'sources', 'configmap-source.yaml'));
    await writeFile(
      join(dir, 'sources', 'git.yaml'),
      `apiVersion: omnia.altairalabs.ai/v1alpha1
kind: ArenaSource
metadata: {name: support, namespace: arena}
spec:
  type: git
  interval: 1h
  git: {url: "http://127.0.0.1:${ports.git}/prompt-library.git", ref: {branch: main}, path: ./customer-support}
`,
    );
    dev = spawn(
      'node',
      [BIN, '--data-dir', join(dir, 'data'), 'dev', '--sources', join(dir, 'sources'), '--git-repos', join(dir, 'repos'),
        '--temporal-port', String(ports.temporal), '--ui-port', String(ports.ui), '--artifact-port', String(ports.artifacts),
        '--git-port', String(ports.git)],
      { env: { ...process.env, TEMPORAL_ADDRESS: '' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    dev.stdout!.on('data', (d) => (output += d));
    dev.stderr!.on('data', (d) => (output += d));
    await waitFor('dev to settle', async () => output, (o) => o.includes('watching'), 120_000, 250).catch((err) => {
      throw new Error(`${(err as Error).message}\n--- dev output ---\n${output}`);
    });
  });

  after(async () => {
    if (dev && dev.exitCode === null) {
      dev.kill('SIGINT');
      await new Promise((r) => dev.once('exit', r));
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('prints where the UI and the artifacts are, and every example reaches Ready', async () => {
    assert.match(output, new RegExp(`Temporal UI: +http://127\\.0\\.0\\.1:${ports.ui}/`));
    assert.match(output, new RegExp(`Artifacts: +http://127\\.0\\.0\\.1:${ports.artifacts}/`));
    const table = await cli('get', '-A');
    assert.match(table.split('\n')[0]!, /^NAMESPACE\s+NAME\s+TYPE\s+PHASE\s+REVISION\s+AGE$/);
    assert.match(table, /arena\s+support\s+git\s+Ready\s+main@sha1:[0-9a-f]{12}\s/);
    assert.match(table, /arena\s+test-prompts\s+configmap\s+Ready\s+sha256:/);
    const ui = await fetch(`http://127.0.0.1:${ports.ui}/`);
    assert.equal(ui.status, 200, 'the Temporal Web UI answers');
  });

  it("prints the content volume and each source's contentPath, whose files are there", async () => {
    const root = join(dir, 'data', 'workspace-content');
    assert.match(output, new RegExp(`Content volume: +${root.replace(/[/.]/g, '\\$&')}/<workspace>/<namespace>/`));
    const shown = /content of arena\/support: (arena\/support\/\.arena\/versions\/([0-9a-f]{12}))/.exec(output);
    assert.ok(shown, `contentPath line in:\n${output}`);
    const src = await getJson('support');
    assert.equal(src.status.artifact.contentPath, shown[1]);
    assert.equal(src.status.artifact.version, src.status.artifact.checksum.slice('sha256:'.length, 'sha256:'.length + 12));
    // No workspace label in the examples: the namespace's name is the workspace.
    const versionDir = join(root, 'arena', 'arena', shown[1]!);
    assert.ok(JSON.parse(await readFile(join(versionDir, 'pack.json'), 'utf8')).id, 'pack.json of customer-support is in the version');
    assert.equal(await readFile(join(root, 'arena', 'arena', 'arena', 'support', '.arena', 'HEAD'), 'utf8'), shown[2]);
  });

  it('get -o json shows phase, conditions, artifact (downloadable, checksum and size match), fetch times', async () => {
    const src = await getJson('support');
    assert.equal(src.apiVersion, 'omnia.altairalabs.ai/v1alpha1');
    assert.equal(src.kind, 'ArenaSource');
    assert.equal(src.status.phase, 'Ready');
    assert.deepEqual(src.status.conditions.map((c: { type: string }) => c.type), ['Ready', 'Fetching', 'ArtifactAvailable', 'SourceValid', 'BundleValid']);
    for (const c of src.status.conditions) assert.ok(c.status && c.reason && c.lastTransitionTime && 'message' in c);
    assert.ok(Date.parse(src.status.lastFetchTime) <= Date.parse(src.status.nextFetchTime));
    const res = await fetch(src.status.artifact.url);
    const body = Buffer.from(await res.arrayBuffer());
    assert.equal(res.status, 200);
    assert.equal(`sha256:${createHash('sha256').update(body).digest('hex')}`, src.status.artifact.checksum);
    assert.equal(body.length, src.status.artifact.size);
    assert.equal(res.headers.get('etag'), `"${src.status.artifact.checksum}"`);
  });

  it('suspend, resume and reconcile', async () => {
    assert.match(await cli('suspend', 'support', '-n', 'arena'), /suspended/);
    await waitFor('Suspended', () => getJson('support'), (s) => s.status.conditions[0].reason === 'Suspended');
    assert.match(await cli('resume', 'support', '-n', 'arena'), /resumed/);
    await waitFor('Ready', () => getJson('support'), (s) => s.status.phase === 'Ready');
    const sha = await commitFiles(`http://127.0.0.1:${ports.git}/prompt-library.git`, { 'customer-support/new.md': 'new\n' }, { branch: 'main', message: 'add' });
    const out = await cli('reconcile', 'support', '-n', 'arena');
    assert.match(out, new RegExp(`fetched revision main@sha1:${sha}`));
  });

  it('re-applies a YAML file when it changes', async () => {
    const before = await getJson('support');
    await writeFile(
      join(dir, 'sources', 'git.yaml'),
      `apiVersion: omnia.altairalabs.ai/v1alpha1
kind: ArenaSource
metadata: {name: support, namespace: arena}
spec:
  type: git
  interval: 2h
  git: {url: "http://127.0.0.1:${ports.git}/prompt-library.git", ref: {branch: main}, path: ./customer-support}
`,
    );
    const after = await waitFor('interval 2h', () => getJson('support'), (s) => s.spec.interval === '2h', 20_000);
    assert.equal(after.metadata.generation, before.metadata.generation + 1);
  });

  it('apply rejects an invalid file naming the field, and applies nothing', async () => {
    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, 'apiVersion: omnia.altairalabs.ai/v1alpha1\nkind: ArenaSource\nmetadata: {name: bad}\nspec: {type: git, interval: 5 minutes, git: {url: "https://x/y.git"}}\n');
    await assert.rejects(cli('apply', '-f', bad), (err: { stderr: string }) => /spec\.interval/.test(err.stderr));
    await assert.rejects(cli('get', 'bad'), (err: { stderr: string }) => /not found/.test(err.stderr));
  });

  it('history lists the last cycles with result, duration and revision', async () => {
    const rows = JSON.parse(await cli('history', 'support', '-n', 'arena', '-o', 'json'));
    assert.ok(rows.length >= 2);
    assert.ok(rows.some((r: { result: string }) => r.result === 'fetched'));
    for (const r of rows) {
      assert.match(r.revision, /^main@sha1:[0-9a-f]{40}$/);
      assert.ok(r.durationMs >= 0 && Date.parse(r.time) > 0);
    }
    assert.ok(Date.parse(rows[0].time) >= Date.parse(rows[rows.length - 1].time), 'newest first');
    const text = await cli('history', 'support', '-n', 'arena');
    assert.match(text.split('\n')[0]!, /^TIME\s+RESULT\s+DURATION\s+PHASE\s+REVISION/);
  });

  it('get --watch prints a row when a source changes', async () => {
    const watcher = spawn('node', [BIN, '--temporal-address', `127.0.0.1:${ports.temporal}`, 'get', '-n', 'arena', '--watch'], {
      env: { ...process.env, TEMPORAL_ADDRESS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let seen = '';
    watcher.stdout!.on('data', (d) => (seen += d));
    try {
      await waitFor('first table', async () => seen, (o) => o.includes('support'), 20_000);
      const sha = await commitFiles(`http://127.0.0.1:${ports.git}/prompt-library.git`, { 'customer-support/w.md': 'w\n' }, { branch: 'main', message: 'w' });
      await cli('reconcile', 'support', '-n', 'arena');
      await waitFor('a watch row', async () => seen, (o) => o.includes(`main@sha1:${sha.slice(0, 12)}`), 20_000);
    } finally {
      watcher.kill('SIGINT');
      watcher.kill('SIGTERM');
    }
  });

  it('search-attributes is idempotent against a namespace that has them', async () => {
    assert.match(await cli('search-attributes'), /all ArenaSource search attributes exist in default/);
  });

  it('delete stops the workflow and removes the artifacts', async () => {
    const src = await getJson('test-prompts');
    assert.match(await cli('delete', 'test-prompts', '-n', 'arena'), /deleted/);
    assert.equal((await fetch(src.status.artifact.url)).status, 404);
    await assert.rejects(cli('get', 'test-prompts', '-n', 'arena'), (err: { stderr: string }) => /not found/.test(err.stderr));
    assert.doesNotMatch(await cli('get', '-A'), /test-prompts/);
  });
});
