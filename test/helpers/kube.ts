/**
 * A real Kubernetes API server for tests: etcd + kube-apiserver, built from
 * source by test/k8s/build.sh into ~/.cache/arena-source/bin (`.ci/run` does
 * that), started on free 127.0.0.1 ports with their data in a temp dir.
 *
 *   const kube = await startKube();          // ~3 s; one per test file is fine
 *   const kc = new KubeConfig(); kc.loadFromFile(kube.kubeconfigPath);   // @kubernetes/client-node
 *   const res = await kube.request('GET', '/api/v1/namespaces');        // or plain REST
 *   await kube.close();
 *
 * No controllers run (no kube-controller-manager, no scheduler, no kubelet):
 * objects are stored and validated, nothing reconciles them. Namespaces must be
 * created before use (`default` exists) and are never finalized after delete.
 *
 * Authentication is a static admin token (group system:masters) from
 * --token-auth-file; authorization is RBAC (so tests may also mint tokens for
 * ServiceAccounts through the TokenRequest API and check what RBAC lets them do).
 * The serving certificate is kube-apiserver's self-signed one from --cert-dir;
 * the kubeconfig trusts it.
 *
 * Environment:
 *   ARENA_KUBE_BIN_DIR   directory with kube-apiserver and etcd (default ~/.cache/arena-source/bin, then PATH)
 *   ARENA_KUBE_KEEP=1    leave the temp dir (logs, kubeconfig) in place after close()
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { accessSync, constants, createWriteStream, readFileSync, statSync, type WriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { parseAllDocuments } from 'yaml';
import { freePort } from './free-port.js';
import { waitFor } from './wait.js';
import { homedir, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

export interface KubeBinaries {
  kubeApiserver: string;
  etcd: string;
}

/** An API server answer: HTTP status, parsed JSON body (or undefined) and the raw text. */
export interface KubeResponse<T = any> {
  status: number;
  body: T;
  text: string;
}

export interface Kube {
  /** A kubeconfig (context `arena-test`) for @kubernetes/client-node's KubeConfig.loadFromFile. */
  kubeconfigPath: string;
  /** https://127.0.0.1:PORT */
  server: string;
  /** Bearer token of the admin user (system:masters). */
  token: string;
  /** PEM of the CA that signed the serving certificate. */
  caPem: string;
  /** The temp dir holding etcd's data, certs, the kubeconfig and the logs. */
  dir: string;
  /** How long startup took, in ms (etcd + apiserver until /readyz). */
  startupMs: number;
  /**
   * One REST call as the admin (TLS verified against caPem). A JSON body is sent
   * as `contentType` (default application/json; use application/merge-patch+json
   * and friends for PATCH). Never rejects on HTTP errors: check `status`.
   */
  request<T = any>(method: string, path: string, body?: unknown, contentType?: string): Promise<KubeResponse<T>>;
  /** Last lines of both logs, for failure messages. */
  logs(): Promise<string>;
  /** Stops kube-apiserver, then etcd, and removes the temp dir. Idempotent. */
  close(): Promise<void>;
}

export interface StartKubeOptions {
  /** Default RBAC; AlwaysAllow skips RBAC bootstrap (slightly faster); a cluster with nodes wants Node,RBAC. */
  authorizationMode?: 'RBAC' | 'AlwaysAllow' | 'Node,RBAC';
  /** How long to wait for /readyz (default 120 s: first start on a loaded 2-core machine). */
  readyTimeoutMs?: number;
  /** Extra kube-apiserver flags. */
  extraApiserverArgs?: string[];
  /**
   * A cluster rather than a bare API server (test/helpers/node.ts): etcd and
   * kube-apiserver listen on `address` at fixed ports, each started through
   * `wrap` (e.g. inside a network namespace), with the ServiceAccount admission
   * plugin and the `kubernetes` Service endpoints on, and extra static tokens
   * for the components that talk to it.
   */
  cluster?: KubeClusterOptions;
}

export interface KubeClusterOptions {
  address: string;
  ports: { etcdClient: number; etcdPeer: number; secure: number };
  wrap: Wrap;
  /** Lines `token,user,uid,"group,…"` added to the static token file. */
  tokens: string[];
  /** Directory for data, certs and logs (default: a new temp dir, removed by close()). */
  dir?: string;
}

/** Turns a command line into the one to spawn (e.g. prefixed by nsenter). */
export type Wrap = (bin: string, args: string[]) => { command: string; args: string[] };

const BIN_NAMES = { kubeApiserver: 'kube-apiserver', etcd: 'etcd' } as const;

export function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Finds kube-apiserver and etcd, or returns undefined (callers may skip when not in CI). */
export function findKubeBinaries(): KubeBinaries | undefined {
  const dirs = [
    ...(process.env.ARENA_KUBE_BIN_DIR ? [process.env.ARENA_KUBE_BIN_DIR] : []),
    join(homedir(), '.cache', 'arena-source', 'bin'),
    ...(process.env.PATH ?? '').split(delimiter).filter(Boolean),
  ];
  const find = (name: string) => dirs.map((d) => join(d, name)).find(isExecutable);
  const kubeApiserver = find(BIN_NAMES.kubeApiserver);
  const etcd = find(BIN_NAMES.etcd);
  return kubeApiserver && etcd ? { kubeApiserver, etcd } : undefined;
}

/**
 * For `describe(..., { skip: kubeSkipReason() })`: a reason to skip when the
 * binaries are missing, except under CI (CI=true), where missing binaries must fail.
 */
export function kubeSkipReason(): string | false {
  if (findKubeBinaries() || process.env.CI === 'true') return false;
  return 'kube-apiserver/etcd not built: run `bash test/k8s/build.sh` (or .ci/run)';
}

export interface Proc {
  name: string;
  child: ChildProcess;
  /** Sends a signal to the program itself (not a wrapper such as nsenter, which forwards none). */
  signal(sig: NodeJS.Signals): void;
  log: WriteStream;
  logPath: string;
  exited: Promise<number | null>;
  exitCode: number | null | undefined;
}

/** Starts `bin` with its output in DIR/NAME.log; through `wrap` when given. */
export function launch(name: string, bin: string, args: string[], dir: string, wrap?: Wrap): Proc {
  const logPath = join(dir, `${name}.log`);
  const log = createWriteStream(logPath, { flags: 'a' });
  const line = wrap ? wrap(bin, args) : { command: bin, args };
  const child = spawn(line.command, line.args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.pipe(log, { end: false });
  child.stderr!.pipe(log, { end: false });
  const proc: Proc = {
    name,
    child,
    signal(sig) {
      if (!wrap) return void child.kill(sig);
      // The wrapper's only child is the program (nsenter forks once when entering a PID namespace).
      const pid = child.pid;
      const inner = pid ? readChildren(pid) : [];
      for (const p of inner) {
        try {
          process.kill(p, sig);
        } catch {
          /* gone */
        }
      }
      if (inner.length === 0) child.kill(sig);
    },
    log,
    logPath,
    exitCode: undefined,
    exited: new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        proc.exitCode = code ?? (signal ? -1 : null);
        resolve(proc.exitCode);
      });
      child.once('error', (err) => {
        log.write(`spawn error: ${err.message}\n`);
        proc.exitCode = -1;
        resolve(-1);
      });
    }),
  };
  return proc;
}

function readChildren(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** SIGTERM, SIGKILL after `graceMs`; then closes the log. */
export async function stop(proc: Proc, graceMs = 10_000): Promise<void> {
  if (proc.exitCode === undefined) {
    proc.signal('SIGTERM');
    const timer = setTimeout(() => proc.signal('SIGKILL'), graceMs);
    await proc.exited;
    clearTimeout(timer);
  }
  await new Promise<void>((resolve) => proc.log.end(resolve));
}

export async function tail(path: string, bytes = 6_000): Promise<string> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.length > bytes ? `…${text.slice(-bytes)}` : text;
}

/** An HTTPS call with the admin token; resolves with status and body text (never rejects on HTTP errors). */
function call(
  server: string,
  path: string,
  token: string,
  ca: string | undefined,
  method = 'GET',
  payload?: { text: string; contentType: string },
  timeoutMs = 5_000,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${server}${path}`,
      {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          ...(payload ? { 'content-type': payload.contentType, 'content-length': Buffer.byteLength(payload.text) } : {}),
        },
        ...(ca ? { ca } : { rejectUnauthorized: false }),
        timeout: timeoutMs,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(payload?.text);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The last certificate of kube-apiserver's self-signed bundle is the CA that signed the serving cert. */
export function caOfBundle(pem: string): string {
  const certs = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
  const last = certs[certs.length - 1];
  if (!last) throw new Error('no certificate in kube-apiserver serving bundle');
  return last.endsWith('\n') ? last : `${last}\n`;
}

/**
 * Starts etcd and kube-apiserver and waits for /readyz. The ports are picked
 * free just before use, so another process may grab one first: that attempt
 * is retried (up to 3 times) with new ports.
 */
export async function startKube(options: StartKubeOptions = {}): Promise<Kube> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options);
    } catch (err) {
      if (attempt >= 3 || !/address already in use/i.test((err as Error).message)) throw err;
    }
  }
}

async function startOnce(options: StartKubeOptions): Promise<Kube> {
  const bins = findKubeBinaries();
  if (!bins) {
    throw new Error(
      'kube-apiserver and etcd not found in $ARENA_KUBE_BIN_DIR, ~/.cache/arena-source/bin or PATH: ' +
        'build them with `bash test/k8s/build.sh` (.ci/run does)',
    );
  }
  const t0 = Date.now();
  const cluster = options.cluster;
  const dir = cluster?.dir ?? (await mkdtemp(join(tmpdir(), 'arena-kube-')));
  await mkdir(dir, { recursive: true });
  const procs: Proc[] = [];
  const killNow = () => {
    for (const p of procs) if (p.exitCode === undefined) p.signal('SIGKILL');
  };
  process.once('exit', killNow);
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    // The API server first (it holds etcd connections), then etcd.
    for (const p of [...procs].reverse()) await stop(p);
    process.removeListener('exit', killNow);
    if (process.env.ARENA_KUBE_KEEP !== '1' && !cluster?.dir) await rm(dir, { recursive: true, force: true });
  };

  try {
    const [etcdClient, etcdPeer, securePort] = cluster
      ? [cluster.ports.etcdClient, cluster.ports.etcdPeer, cluster.ports.secure]
      : [await freePort(), await freePort(), await freePort()];
    const address = cluster?.address ?? '127.0.0.1';

    // --- etcd ---------------------------------------------------------------
    const etcdUrl = `http://${address}:${etcdClient}`;
    const peerUrl = `http://${address}:${etcdPeer}`;
    const etcd = launch(
      'etcd',
      bins.etcd,
      [
        '--name=arena-test',
        `--data-dir=${join(dir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=arena-test=${peerUrl}`,
        '--initial-cluster-state=new',
        // Throwaway data: durability buys nothing here and fsync dominates on small disks.
        '--unsafe-no-fsync',
        '--log-level=warn',
      ],
      dir,
      cluster?.wrap,
    );
    procs.push(etcd);

    // --- credentials --------------------------------------------------------
    const token = randomBytes(24).toString('hex');
    const tokens = [`${token},arena-test-admin,arena-test-admin,"system:masters"`, ...(cluster?.tokens ?? [])];
    await writeFile(join(dir, 'tokens.csv'), tokens.join('\n') + '\n', { mode: 0o600 });
    const sa = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    await writeFile(join(dir, 'sa.key'), sa.privateKey, { mode: 0o600 });
    await writeFile(join(dir, 'sa.pub'), sa.publicKey);

    // etcd answers /health before the API server needs it; the API server retries anyway.
    await waitUntil('etcd', etcd, 30_000, async () => {
      const res = await fetch(`${etcdUrl}/health`).catch(() => undefined);
      return res?.ok === true;
    });

    // --- kube-apiserver -----------------------------------------------------
    const certDir = join(dir, 'certs');
    const apiserver = launch(
      'kube-apiserver',
      bins.kubeApiserver,
      [
        `--etcd-servers=${etcdUrl}`,
        `--bind-address=${address}`,
        `--advertise-address=${address}`,
        `--secure-port=${securePort}`,
        `--cert-dir=${certDir}`,
        `--token-auth-file=${join(dir, 'tokens.csv')}`,
        `--authorization-mode=${options.authorizationMode ?? 'RBAC'}`,
        `--service-account-issuer=https://kubernetes.default.svc.cluster.local`,
        `--service-account-key-file=${join(dir, 'sa.pub')}`,
        `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
        '--service-cluster-ip-range=10.96.0.0/24',
        ...(cluster
          ? []
          : [
              // No token controller runs: the ServiceAccount plugin would make every Pod wait for one.
              '--disable-admission-plugins=ServiceAccount',
              // Nobody else talks to this server: no need to keep the `kubernetes` Endpoints current.
              '--endpoint-reconciler-type=none',
            ]),
        // API priority and fairness: its bootstrap configuration slows startup.
        '--enable-priority-and-fairness=false',
        '--profiling=false',
        '--v=1',
        ...(options.extraApiserverArgs ?? []),
      ],
      dir,
      cluster?.wrap,
    );
    procs.push(apiserver);

    const server = `https://${address}:${securePort}`;
    let lastReadyz = '';
    await waitUntil('kube-apiserver /readyz', apiserver, options.readyTimeoutMs ?? 120_000, async () => {
      const res = await call(server, '/readyz', token, undefined).catch((e: Error) => ({ status: 0, body: e.message }));
      lastReadyz = `${res.status} ${res.body}`;
      return res.status === 200;
    }).catch(async (err: Error) => {
      throw new Error(`${err.message}; last /readyz: ${lastReadyz.slice(0, 2_000)}`);
    });

    const caPem = caOfBundle(await readFile(join(certDir, 'apiserver.crt'), 'utf8'));
    const kubeconfigPath = join(dir, 'kubeconfig.yaml');
    await writeFile(kubeconfigPath, kubeconfig(server, caPem, token), { mode: 0o600 });
    // The kubeconfig must actually work: check with the CA (not the insecure probe above).
    const check = await call(server, '/version', token, caPem);
    if (check.status !== 200) throw new Error(`GET /version with the kubeconfig's CA: ${check.status} ${check.body}`);

    const startupMs = Date.now() - t0;
    return {
      kubeconfigPath,
      server,
      token,
      caPem,
      dir,
      startupMs,
      async request(method, path, body, contentType = 'application/json') {
        const payload = body === undefined ? undefined : { text: JSON.stringify(body), contentType };
        const res = await call(server, path, token, caPem, method, payload, 30_000);
        let parsed: any;
        try {
          parsed = res.body === '' ? undefined : JSON.parse(res.body);
        } catch {
          parsed = undefined;
        }
        return { status: res.status, body: parsed, text: res.body };
      },
      logs: async () =>
        (await Promise.all(procs.map(async (p) => `--- ${p.name} (${p.logPath})\n${await tail(p.logPath)}`))).join('\n'),
      close,
    };
  } catch (err) {
    const logs = (await Promise.all(procs.map(async (p) => `--- ${p.name}\n${await tail(p.logPath)}`))).join('\n');
    await close();
    throw new Error(`${(err as Error).message}\n${logs}`);
  }
}

export async function waitUntil(what: string, proc: Proc, timeoutMs: number, ready: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== undefined) throw new Error(`${proc.name} exited (code ${proc.exitCode}) before ${what} was ready`);
    if (await ready()) return;
    if (Date.now() > deadline) throw new Error(`${what} not ready after ${timeoutMs} ms`);
    await sleep(150);
  }
}

export function kubeconfig(server: string, caPem: string, token: string): string {
  const ca = Buffer.from(caPem).toString('base64');
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: arena-test',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${ca}`,
    'users:',
    '- name: arena-test-admin',
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: arena-test',
    '  context:',
    '    cluster: arena-test',
    '    user: arena-test-admin',
    '    namespace: default',
    'current-context: arena-test',
    '',
  ].join('\n');
}

/**
 * The ArenaSource CRD of deploy/crds, created on `kube`; unless `wait` is false, returns once the
 * API server serves the resource (tests that watch the CRD appear pass false).
 */
export async function installArenaSourceCrd(kube: Pick<Kube, 'request'>, opts: { wait?: boolean } = {}): Promise<void> {
  const crd = parseAllDocuments(await readFile('deploy/crds/omnia.altairalabs.ai_arenasources.yaml', 'utf8'))
    .map((d) => d.toJS())
    .find((d) => d?.kind === 'CustomResourceDefinition');
  const created = await kube.request('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
  if (created.status !== 201) throw new Error(`creating the ArenaSource CRD: ${created.status} ${created.text.slice(0, 300)}`);
  if (opts.wait === false) return;
  await waitFor('the ArenaSource CRD served', () => kube.request('GET', '/apis/omnia.altairalabs.ai/v1alpha1/arenasources'), (r) => r.status === 200);
}
