/**
 * A real S3-compatible server for tests: versitygw (github.com/versity/versitygw)
 * with its posix backend in a temp directory, on 127.0.0.1 (a free port), with
 * static root credentials and one bucket. scripts/ensure-tools.sh builds it from
 * its Go module into ~/.cache/arena-source/bin; $VERSITYGW_PATH overrides.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { S3ArtifactStore, type S3StoreOptions } from '../../src/store/s3-store.js';
import { freePort } from './free-port.js';

// The SDK warns once per process that it will need Node 22 from 2027; tests run on 20 too.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export interface TestS3 {
  /** http://127.0.0.1:<port> */
  endpoint: string;
  region: string;
  bucket: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** The gateway's data directory: <dir>/<bucket>/<key> are the objects' files. */
  dataDir: string;
  /** A client with the root credentials (path-style). */
  client: S3Client;
  /** Store options for this server's bucket. */
  storeOptions(prefix?: string, extra?: Partial<S3StoreOptions>): S3StoreOptions;
  /** A new store on this server's bucket (destroyed by close()). */
  store(prefix?: string, extra?: Partial<S3StoreOptions>): S3ArtifactStore;
  /** Creates another bucket. */
  createBucket(name: string): Promise<void>;
  output(): string;
  close(): Promise<void>;
}

export function versitygwBinary(): string {
  if (process.env.VERSITYGW_PATH) return process.env.VERSITYGW_PATH;
  const cached = join(homedir(), '.cache', 'arena-source', 'bin', 'versitygw');
  return existsSync(cached) ? cached : 'versitygw';
}

export async function startS3(opts: { bucket?: string } = {}): Promise<TestS3> {
  const dir = await mkdtemp(join(tmpdir(), 'arena-s3-'));
  const dataDir = join(dir, 'data');
  await mkdir(dataDir);
  const credentials = { accessKeyId: `test${randomBytes(4).toString('hex')}`, secretAccessKey: randomBytes(20).toString('hex') };
  const region = 'us-east-1';
  const bucket = opts.bucket ?? 'arena-artifacts';

  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const child = spawn(
      versitygwBinary(),
      ['--port', `127.0.0.1:${port}`, '--region', region, '--quiet', 'posix', dataDir],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        // Credentials through the environment, not argv (visible in ps).
        env: { ...process.env, ROOT_ACCESS_KEY_ID: credentials.accessKeyId, ROOT_SECRET_ACCESS_KEY: credentials.secretAccessKey },
      },
    );
    let output = '';
    const keep = (d: Buffer) => {
      output = (output + d.toString('utf8')).slice(-32_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let exited = false;
    const exitedP = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
    child.once('error', (err) => {
      exited = true;
      output += `spawn error: ${err.message}\n`;
    });
    const ready = await waitListening(port, () => exited, 15_000);
    if (!ready) {
      child.kill('SIGKILL');
      await exitedP;
      if (attempt < 3 && !/ENOENT|spawn error/.test(output)) continue; // port taken meanwhile: try another
      await rm(dir, { recursive: true, force: true });
      throw new Error(
        `versitygw did not start (${versitygwBinary()}): ${output.trim() || 'no output'}\n` +
          'Build it with `bash scripts/ensure-tools.sh test` (go install github.com/versity/versitygw/cmd/versitygw).',
      );
    }
    const endpoint = `http://127.0.0.1:${port}`;
    const client = new S3Client({ endpoint, region, forcePathStyle: true, credentials });
    const stores: S3ArtifactStore[] = [];
    const createBucket = async (name: string) => {
      await client.send(new CreateBucketCommand({ Bucket: name }));
    };
    const storeOptions = (prefix?: string, extra: Partial<S3StoreOptions> = {}): S3StoreOptions => ({
      bucket,
      endpoint,
      region,
      forcePathStyle: true,
      credentials,
      ...(prefix !== undefined ? { prefix } : {}),
      ...extra,
    });
    const s3: TestS3 = {
      endpoint,
      region,
      bucket,
      credentials,
      dataDir,
      client,
      storeOptions,
      store(prefix, extra) {
        const store = new S3ArtifactStore(storeOptions(prefix, extra));
        stores.push(store);
        return store;
      },
      createBucket,
      output: () => output,
      async close() {
        for (const s of stores) s.destroy();
        client.destroy();
        if (!exited) {
          child.kill('SIGTERM');
          const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
          await exitedP;
          clearTimeout(killer);
        }
        await rm(dir, { recursive: true, force: true });
      },
    };
    try {
      await createBucket(bucket);
    } catch (err) {
      await s3.close();
      throw new Error(`versitygw started but CreateBucket failed: ${(err as Error).message}\n${output}`);
    }
    return s3;
  }
}


async function waitListening(port: number, exited: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exited()) return false;
    const ok = await new Promise<boolean>((resolve) => {
      const sock = connect({ host: '127.0.0.1', port });
      const done = (v: boolean) => {
        sock.destroy();
        resolve(v);
      };
      sock.setTimeout(1000, () => done(false));
      sock.once('connect', () => done(true));
      sock.once('error', () => done(false));
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}
