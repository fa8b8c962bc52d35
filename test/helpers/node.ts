/**
 * A real one-node Kubernetes cluster for end-to-end tests: etcd, kube-apiserver,
 * kube-controller-manager, kube-scheduler, containerd (Debian's, with runc and
 * the bridge CNI plugin), kubelet and kube-proxy, all inside a network namespace
 * this helper creates and joins to the host by one veth pair:
 *
 *   host end 10.250.0.1  <-- veth -->  node 10.250.0.2 (API server :6443, kubelet)
 *                                        └─ cni0 bridge, pods in 10.244.0.0/24
 *                                           Services in 10.96.0.0/24 (kube-proxy, iptables)
 *
 * Pods reach the host end (servers a test starts there: git, registry, Temporal),
 * masqueraded by the node; the test reaches the API server at the node's address.
 * Service ClusterIPs answer inside the node: see `fetchInNode`.
 *
 *   const node = await startNode();               // ~10 s to node Ready on 2 cores
 *   await node.kube.request('POST', '/api/v1/namespaces/default/pods', pod);
 *   await node.loadImages(['localhost/arena-source:dev']);   // podman save | ctr import
 *   await node.close();
 *
 * Every process runs in one PID and mount namespace (test/node/holder.sh) whose
 * first process ends when the test process does: a crashed run leaves no
 * containers or mounts behind; what it may leave (the network namespace, cgroup
 * directories, the state dir) the next start removes. One node at a time per
 * machine (a lock file serializes callers).
 *
 * Needs root, the binaries test/k8s/build.sh builds (kube-* and etcd, arena-pause),
 * and containerd, runc, containernetworking-plugins, iptables, conntrack (apt;
 * scripts/ensure-tools.sh installs them).
 *
 * Environment: ARENA_NODE_KEEP=1 leaves the state dir (logs, configs) after close().
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import tar from 'tar-stream';
import { repoRoot } from '../../src/api/crd.js';
import { findKubeBinaries, isExecutable, kubeconfig, launch, startKube, stop, tail, type Kube, type Proc, type Wrap } from './kube.js';
export type { Proc };
import { waitFor } from './wait.js';

const run = promisify(execFile);

export const NODE_NAME = 'arena-node';
export const HOST_IP = '10.250.0.1';
export const NODE_IP = '10.250.0.2';
export const POD_CIDR = '10.244.0.0/24';
export const SERVICE_CIDR = '10.96.0.0/24';
/** The sandbox image, imported from arena-pause at start. */
export const PAUSE_IMAGE = 'localhost/arena-node/pause:1';

const STATE_DIR = join(tmpdir(), 'arena-node');
const LOCK_FILE = join(tmpdir(), 'arena-node.lock');
const CGROUP_ROOT = '/sys/fs/cgroup';
const CNI_BIN_DIRS = ['/usr/lib/cni', '/opt/cni/bin'];
const NETNS_SH = join(repoRoot(), 'test', 'node', 'netns.sh');
const HOLDER_SH = join(repoRoot(), 'test', 'node', 'holder.sh');

export interface NodeCluster {
  /** The API server (admin token); its kubeconfig points at https://10.250.0.2:6443. */
  kube: Kube;
  nodeName: string;
  nodeIp: string;
  /** The host end of the veth pair: where pods find servers the test starts on the host. */
  hostIp: string;
  /** State dir: configs, logs, containerd and kubelet data. */
  dir: string;
  /** How long startup took, in ms (netns to node Ready). */
  startupMs: number;
  /**
   * Starts a long-running program inside the node (e.g. a server pods and the test both reach at
   * the node's address), its output in DIR/NAME.log; close() stops it with the node.
   */
  spawn(name: string, command: string, args: string[]): Proc;
  /** Runs a command inside the node (its network, mount and PID namespaces). */
  exec(command: string, args: string[], opts?: { timeoutMs?: number }): Promise<{ stdout: string; stderr: string }>;
  /** An HTTP GET from inside the node (so ClusterIPs answer); never rejects on HTTP errors. */
  fetchInNode(url: string, timeoutMs?: number): Promise<{ status: number; body: Buffer }>;
  /** Copies images from podman's local store into the node's containerd (podman save, ctr import: one archive). */
  loadImages(refs: string[]): Promise<void>;
  /** Imports an image archive (docker-archive or OCI layout tar) into the node's containerd. */
  importArchive(path: string): Promise<void>;
  /** Images containerd holds for Kubernetes. */
  images(): Promise<string[]>;
  /** Component logs' tails and every pod's phase and container states, for failure messages. */
  logs(): Promise<string>;
  /** A pod's container log (through the kubelet). */
  podLog(namespace: string, pod: string, container?: string): Promise<string>;
  /** Stops everything, removes the network namespace, the cgroups and (unless ARENA_NODE_KEEP=1) the state dir. Idempotent. */
  close(): Promise<void>;
}

export interface StartNodeOptions {
  /** How long to wait for the node to be Ready (default 180 s). */
  readyTimeoutMs?: number;
}

function findOnPath(name: string, extraDirs: string[] = []): string | undefined {
  const dirs = [
    ...extraDirs,
    ...(process.env.PATH ?? '').split(delimiter).filter(Boolean),
    '/usr/sbin',
    '/sbin',
  ];
  return dirs.map((d) => join(d, name)).find(isExecutable);
}

interface NodeBinaries {
  kubeControllerManager: string;
  kubeScheduler: string;
  kubelet: string;
  kubeProxy: string;
  arenaPause: string;
  containerd: string;
  ctr: string;
}

function binDirs(): string[] {
  return [...(process.env.ARENA_KUBE_BIN_DIR ? [process.env.ARENA_KUBE_BIN_DIR] : []), join(homedir(), '.cache', 'arena-source', 'bin')];
}

/** What is missing to run a node, as apt packages or build steps (empty when nothing is). */
export function nodeMissing(): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  if (!findKubeBinaries()) missing.push('kube-apiserver/etcd (bash test/k8s/build.sh)');
  for (const b of ['kube-controller-manager', 'kube-scheduler', 'kubelet', 'kube-proxy', 'arena-pause']) {
    if (!findOnPath(b, binDirs())) missing.push(`${b} (bash test/k8s/build.sh)`);
  }
  const apt: Record<string, string> = {
    containerd: 'containerd',
    ctr: 'containerd',
    runc: 'runc',
    iptables: 'iptables',
    conntrack: 'conntrack',
    nsenter: 'util-linux',
    unshare: 'util-linux',
    ip: 'iproute2',
  };
  for (const [bin, pkg] of Object.entries(apt)) if (!findOnPath(bin)) missing.push(`${bin} (apt-get install ${pkg})`);
  if (!CNI_BIN_DIRS.some((d) => isExecutable(join(d, 'bridge')))) missing.push('CNI plugins (apt-get install containernetworking-plugins)');
  return missing;
}

/** For `describe(..., { skip: nodeSkipReason() })`: skip when tools are missing, except under CI, where that fails. */
export function nodeSkipReason(): string | false {
  const missing = nodeMissing();
  if (missing.length === 0 || process.env.CI === 'true') return false;
  return `one-node cluster needs: ${missing.join(', ')} (scripts/ensure-tools.sh test installs them)`;
}

function nodeBinaries(): NodeBinaries {
  const missing = nodeMissing();
  if (missing.length > 0) throw new Error(`cannot start a node, missing: ${missing.join(', ')}; run scripts/ensure-tools.sh test`);
  const find = (name: string) => findOnPath(name, binDirs())!;
  return {
    kubeControllerManager: find('kube-controller-manager'),
    kubeScheduler: find('kube-scheduler'),
    kubelet: find('kubelet'),
    kubeProxy: find('kube-proxy'),
    arenaPause: find('arena-pause'),
    containerd: find('containerd'),
    ctr: find('ctr'),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// --- one node per machine ------------------------------------------------------

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the machine-wide node lock, waiting for a live holder (another test file) to release it. */
async function lock(timeoutMs: number): Promise<() => void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      writeFileSync(LOCK_FILE, String(process.pid), { flag: 'wx' });
      return () => {
        const owner = existsSync(LOCK_FILE) ? readFileSync(LOCK_FILE, 'utf8') : '';
        if (owner === String(process.pid)) unlinkQuietly(LOCK_FILE);
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number(readFileSync(LOCK_FILE, 'utf8').trim() || '0');
    if (!owner || !pidAlive(owner)) {
      unlinkQuietly(LOCK_FILE); // left by a dead process
      continue;
    }
    if (Date.now() > deadline) throw new Error(`${LOCK_FILE} held by live process ${owner} for ${timeoutMs} ms`);
    await sleep(1_000);
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* gone */
  }
}

// --- cgroups -------------------------------------------------------------------

/** The cgroup hierarchies that hold the node's pods: each v1 controller's (and a hybrid's unified one), or the v2 root. */
function cgroupHierarchies(): string[] {
  const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n');
  return mounts
    .map((l) => l.split(' '))
    .filter((f) => (f[2] === 'cgroup' || f[2] === 'cgroup2') && (f[1] === CGROUP_ROOT || f[1]?.startsWith(`${CGROUP_ROOT}/`)))
    .map((f) => f[1]!);
}

/** Creates NODE_NAME under every hierarchy (the kubelet's cgroupRoot must exist), cpuset filled in. */
function makeCgroupRoot(): void {
  for (const h of cgroupHierarchies()) {
    const dir = join(h, NODE_NAME);
    if (!existsSync(dir)) {
      try {
        mkdirSync(dir);
      } catch {
        continue; // a hierarchy that takes no children (e.g. a read-only one)
      }
    }
    // A new cpuset cgroup starts with no CPUs and no memory nodes: copy the parent's.
    for (const f of ['cpuset.cpus', 'cpuset.mems']) {
      const parent = join(h, f);
      if (existsSync(parent) && readFileSync(join(dir, f), 'utf8').trim() === '') {
        writeFileSync(join(dir, f), readFileSync(parent, 'utf8'));
      }
    }
  }
}

/** Removes NODE_NAME's cgroup trees (children first); cgroups still holding tasks are left. */
function removeCgroupRoot(): string[] {
  const left: string[] = [];
  const removeTree = (dir: string) => {
    let entries: string[] = [];
    try {
      entries = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    } catch {
      return;
    }
    for (const e of entries) removeTree(join(dir, e));
    try {
      rmdirSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') left.push(dir);
    }
  };
  for (const h of cgroupHierarchies()) removeTree(join(h, NODE_NAME));
  return left;
}

// --- the pause image -----------------------------------------------------------

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function tarOf(files: { name: string; body: Buffer; mode?: number }[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c) => chunks.push(c as Buffer));
  const done = new Promise<void>((res, rej) => {
    pack.on('end', res);
    pack.on('error', rej);
  });
  for (const f of files) pack.entry({ name: f.name, mode: f.mode ?? 0o644, mtime: new Date(0) }, f.body);
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/**
 * An OCI image archive `FROM scratch` with one static binary as /arena-pause (its
 * entrypoint), named `name` for `ctr images import`.
 */
export async function staticBinaryImage(binary: string, name: string): Promise<Buffer> {
  const layer = await tarOf([{ name: 'arena-pause', body: await readFile(binary), mode: 0o755 }]);
  const layerDigest = `sha256:${sha256(layer)}`;
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Entrypoint: ['/arena-pause'] },
      rootfs: { type: 'layers', diff_ids: [layerDigest] },
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${sha256(config)}`, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length }],
    }),
  );
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: `sha256:${sha256(manifest)}`,
          size: manifest.length,
          annotations: { 'io.containerd.image.name': name, 'org.opencontainers.image.ref.name': name.split(':').pop() },
        },
      ],
    }),
  );
  const blob = (b: Buffer) => ({ name: `blobs/sha256/${sha256(b)}`, body: b });
  return tarOf([
    { name: 'oci-layout', body: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
    { name: 'index.json', body: index },
    blob(manifest),
    blob(config),
    blob(layer),
  ]);
}

// --- configuration files -------------------------------------------------------

function containerdConfig(dir: string, cniBinDir: string): string {
  const c = join(dir, 'containerd');
  return `version = 2
root = "${c}/root"
state = "${c}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "${c}/containerd.sock"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  # runc may not lower oom_score_adj here: keep every container at containerd's own (0).
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${cniBinDir}"
    conf_dir = "${dir}/cni"
`;
}

function cniConfig(dir: string): string {
  return JSON.stringify(
    {
      cniVersion: '1.0.0',
      name: 'arena-node',
      plugins: [
        {
          type: 'bridge',
          bridge: 'cni0',
          isGateway: true,
          // Pods' traffic to the host end leaves with the node's address.
          ipMasq: true,
          // A pod may reach itself through its own Service.
          hairpinMode: true,
          ipam: {
            type: 'host-local',
            ranges: [[{ subnet: POD_CIDR }]],
            routes: [{ dst: '0.0.0.0/0' }],
            dataDir: join(dir, 'cni-ipam'),
          },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    },
    null,
    2,
  );
}

function kubeletConfig(dir: string): string {
  return JSON.stringify(
    {
      apiVersion: 'kubelet.config.k8s.io/v1beta1',
      kind: 'KubeletConfiguration',
      // This machine: cgroup v1 without systemd, and no swap accounting wanted.
      cgroupDriver: 'cgroupfs',
      failCgroupV1: false,
      failSwapOn: false,
      cgroupRoot: `/${NODE_NAME}`,
      containerRuntimeEndpoint: `unix://${join(dir, 'containerd', 'containerd.sock')}`,
      address: NODE_IP,
      port: 10250,
      readOnlyPort: 0,
      healthzBindAddress: '127.0.0.1',
      healthzPort: 10248,
      // Only the API server reaches the kubelet (inside the namespace): logs and exec without client certs.
      authentication: { anonymous: { enabled: true }, webhook: { enabled: false } },
      authorization: { mode: 'AlwaysAllow' },
      // No cluster DNS: pods use the host's resolv.conf (tests address servers by IP).
      clusterDomain: 'cluster.local',
      resolvConf: '/etc/resolv.conf',
      // The kubelet would give itself -999, which this kernel refuses.
      oomScoreAdj: 0,
      podLogsDir: join(dir, 'pod-logs'),
      volumePluginDir: join(dir, 'volume-plugins'),
      // Never evict or garbage-collect images on a busy CI disk: images are imported, not pulled.
      evictionHard: { 'memory.available': '1Mi', 'nodefs.available': '1%', 'imagefs.available': '1%', 'nodefs.inodesFree': '1%' },
      imageGCHighThresholdPercent: 100,
      imageGCLowThresholdPercent: 99,
      serializeImagePulls: false,
      // Status every 2 s instead of 10: readiness changes show sooner.
      nodeStatusUpdateFrequency: '2s',
      syncFrequency: '10s',
      fileCheckFrequency: '10s',
      staticPodPath: '',
    },
    null,
    2,
  );
}

function kubeProxyConfig(dir: string): string {
  return JSON.stringify(
    {
      apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
      kind: 'KubeProxyConfiguration',
      clientConnection: { kubeconfig: join(dir, 'kube-proxy.kubeconfig') },
      mode: 'iptables',
      clusterCIDR: POD_CIDR,
      hostnameOverride: NODE_NAME,
      healthzBindAddress: '127.0.0.1:10256',
      metricsBindAddress: '127.0.0.1:10249',
      // Leave the kernel-wide conntrack table size and the timeouts alone.
      conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
      iptables: { syncPeriod: '10s', minSyncPeriod: '0s' },
    },
    null,
    2,
  );
}

// --- the node ------------------------------------------------------------------

/** Removes what an earlier run left: network namespace, cgroups, state dir. */
async function cleanLeftovers(): Promise<void> {
  await run('bash', [NETNS_SH, 'down', NODE_NAME]);
  const left = removeCgroupRoot();
  if (left.length > 0) throw new Error(`cgroups of an earlier node still hold processes: ${left.join(', ')}`);
  await rm(STATE_DIR, { recursive: true, force: true });
}

function startHolder(dir: string): { child: ChildProcess; ready: Promise<number>; output(): string } {
  const child = spawn(
    'nsenter',
    [
      `--net=/run/netns/${NODE_NAME}`,
      '--',
      'unshare',
      '--mount',
      '--pid',
      '--fork',
      '--mount-proc',
      '--propagation',
      'private',
      '--',
      'bash',
      HOLDER_SH,
      dir,
    ],
    // stdin stays open for the life of this process: its end stops the node.
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  child.stdin!.on('error', () => undefined);
  const ready = new Promise<number>((res, rej) => {
    const check = () => {
      if (/^ready$/m.test(out)) {
        child.stdout!.off('data', check);
        // unshare forked the holder: it is the only child of the process spawned here.
        const kids = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/);
        const pid = Number(kids[0]);
        if (!pid) rej(new Error(`node holder started but its PID is unknown: ${out}`));
        else res(pid);
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => rej(new Error(`node holder exited (${code}) before it was ready: ${out}`)));
  });
  return { child, ready, output: () => out };
}

export async function startNode(options: StartNodeOptions = {}): Promise<NodeCluster> {
  const bins = nodeBinaries();
  const cniBinDir = CNI_BIN_DIRS.find((d) => isExecutable(join(d, 'bridge')))!;
  const unlock = await lock(15 * 60_000);
  const t0 = Date.now();
  const dir = STATE_DIR;
  const procs: Proc[] = [];
  let kube: Kube | undefined;
  let holder: ReturnType<typeof startHolder> | undefined;
  let closed = false;

  const close = async () => {
    if (closed) return;
    closed = true;
    // Node components first (the kubelet stops no pods on exit; they die with the holder).
    for (const p of [...procs].reverse()) await stop(p, 5_000).catch(() => undefined);
    await kube?.close().catch(() => undefined);
    if (holder && holder.child.exitCode === null) {
      const exited = new Promise((r) => holder!.child.once('exit', r));
      holder.child.stdin!.end();
      const killer = setTimeout(() => holder!.child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(killer);
    }
    await run('bash', [NETNS_SH, 'down', NODE_NAME]).catch(() => undefined);
    // Processes of the PID namespace die asynchronously: give their cgroups a moment to empty.
    for (let i = 0; i < 50 && removeCgroupRoot().length > 0; i++) await sleep(100);
    if (process.env.ARENA_NODE_KEEP !== '1') await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    process.removeListener('exit', onExit);
    unlock();
  };
  // If the test process exits without close(): the holder's stdin closes with it (all stops);
  // only the lock needs a synchronous hand.
  const onExit = () => unlock();
  process.once('exit', onExit);

  try {
    await cleanLeftovers();
    await mkdir(dir, { recursive: true });
    await run('bash', [NETNS_SH, 'up', NODE_NAME, `${HOST_IP}/30`, `${NODE_IP}/30`]);
    makeCgroupRoot();
    holder = startHolder(dir);
    const holderPid = await holder.ready;
    const wrap: Wrap = (bin, args) => ({
      command: 'nsenter',
      args: [`--target=${holderPid}`, '--net', '--mount', '--pid', '--', bin, ...args],
    });
    const exec: NodeCluster['exec'] = async (command, args, opts = {}) => {
      const w = wrap(command, args);
      return run(w.command, w.args, { timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 });
    };

    // --- containerd, with the pause image ------------------------------------------
    await mkdir(join(dir, 'cni'), { recursive: true });
    await writeFile(join(dir, 'containerd.toml'), containerdConfig(dir, cniBinDir));
    await writeFile(join(dir, 'cni', '10-arena-node.conflist'), cniConfig(dir));
    const sock = join(dir, 'containerd', 'containerd.sock');
    const containerd = launch('containerd', bins.containerd, ['--config', join(dir, 'containerd.toml'), '--log-level', 'warn'], dir, wrap);
    procs.push(containerd);
    const ctr = (...args: string[]) => exec(bins.ctr, ['--address', sock, '--namespace', 'k8s.io', ...args]);
    await waitFor('containerd', async () => {
      if (containerd.exitCode !== undefined) throw new Error(`containerd exited: ${await tail(containerd.logPath)}`);
      return ctr('version').then(
        () => true,
        () => false,
      );
    }, (ok) => ok, 30_000, 200);
    const pauseTar = join(dir, 'pause.tar');
    await writeFile(pauseTar, await staticBinaryImage(bins.arenaPause, PAUSE_IMAGE));
    await ctr('images', 'import', pauseTar);

    // --- etcd and kube-apiserver ---------------------------------------------------
    const tokens = Object.fromEntries(
      ['kubelet', 'controller-manager', 'scheduler', 'kube-proxy'].map((c) => [c, randomBytes(24).toString('hex')]),
    ) as Record<'kubelet' | 'controller-manager' | 'scheduler' | 'kube-proxy', string>;
    kube = await startKube({
      readyTimeoutMs: 120_000,
      authorizationMode: 'Node,RBAC',
      extraApiserverArgs: ['--kubelet-preferred-address-types=InternalIP'],
      cluster: {
        address: NODE_IP,
        ports: { etcdClient: 2379, etcdPeer: 2380, secure: 6443 },
        wrap,
        dir: join(dir, 'control-plane'),
        // The components' own identities, which RBAC's bootstrap policy knows.
        tokens: [
          `${tokens.kubelet},system:node:${NODE_NAME},kubelet,"system:nodes"`,
          `${tokens['controller-manager']},system:kube-controller-manager,kube-controller-manager`,
          `${tokens.scheduler},system:kube-scheduler,kube-scheduler`,
          `${tokens['kube-proxy']},system:kube-proxy,kube-proxy`,
        ],
      },
    });
    const k = kube;
    const kubeconfigOf = async (name: keyof typeof tokens) => {
      const path = join(dir, `${name}.kubeconfig`);
      await writeFile(path, kubeconfig(k.server, k.caPem, tokens[name]), { mode: 0o600 });
      return path;
    };
    await writeFile(join(dir, 'ca.crt'), k.caPem);

    // --- controllers -----------------------------------------------------------------
    procs.push(
      launch(
        'kube-controller-manager',
        bins.kubeControllerManager,
        [
          `--kubeconfig=${await kubeconfigOf('controller-manager')}`,
          '--secure-port=0',
          '--leader-elect=false',
          // Each controller under its own ServiceAccount, as RBAC's bootstrap roles expect.
          '--use-service-account-credentials=true',
          `--service-account-private-key-file=${join(k.dir, 'sa.key')}`,
          // Published to every namespace as kube-root-ca.crt (pods' token volumes need it).
          `--root-ca-file=${join(dir, 'ca.crt')}`,
          `--cluster-cidr=${POD_CIDR}`,
          `--service-cluster-ip-range=${SERVICE_CIDR}`,
          '--v=1',
        ],
        dir,
        wrap,
      ),
      launch(
        'kube-scheduler',
        bins.kubeScheduler,
        [`--kubeconfig=${await kubeconfigOf('scheduler')}`, '--secure-port=0', '--leader-elect=false', '--v=1'],
        dir,
        wrap,
      ),
    );

    // --- the node ----------------------------------------------------------------------
    await writeFile(join(dir, 'kubelet.json'), kubeletConfig(dir));
    procs.push(
      launch(
        'kubelet',
        bins.kubelet,
        [
          `--config=${join(dir, 'kubelet.json')}`,
          `--kubeconfig=${await kubeconfigOf('kubelet')}`,
          `--root-dir=${join(dir, 'kubelet')}`,
          `--cert-dir=${join(dir, 'kubelet-pki')}`,
          `--hostname-override=${NODE_NAME}`,
          `--node-ip=${NODE_IP}`,
          '--v=1',
        ],
        dir,
        wrap,
      ),
    );
    await kubeconfigOf('kube-proxy');
    await writeFile(join(dir, 'kube-proxy.json'), kubeProxyConfig(dir));
    procs.push(launch('kube-proxy', bins.kubeProxy, [`--config=${join(dir, 'kube-proxy.json')}`, '--v=1'], dir, wrap));

    const readyTimeout = options.readyTimeoutMs ?? 180_000;
    const watchExits = () => {
      const dead = procs.find((p) => p.exitCode !== undefined);
      if (dead) throw new Error(`${dead.name} exited (code ${dead.exitCode})`);
    };
    await waitFor(
      `node ${NODE_NAME} Ready`,
      async () => {
        watchExits();
        const res = await k.request('GET', `/api/v1/nodes/${NODE_NAME}`);
        return res.body?.status?.conditions?.find((c: any) => c.type === 'Ready')?.status ?? `HTTP ${res.status}`;
      },
      (s) => s === 'True',
      readyTimeout,
      500,
    );
    // Pods are admitted only once their namespace has its default ServiceAccount and CA bundle.
    await waitFor(
      'default ServiceAccount and kube-root-ca.crt',
      async () => {
        watchExits();
        const sa = await k.request('GET', '/api/v1/namespaces/default/serviceaccounts/default');
        const ca = await k.request('GET', '/api/v1/namespaces/default/configmaps/kube-root-ca.crt');
        return sa.status === 200 && ca.status === 200;
      },
      (ok) => ok,
      readyTimeout,
      500,
    );

    const importArchive = async (path: string) => {
      await ctr('images', 'import', path);
    };
    const node: NodeCluster = {
      kube: k,
      nodeName: NODE_NAME,
      nodeIp: NODE_IP,
      hostIp: HOST_IP,
      dir,
      startupMs: Date.now() - t0,
      exec,
      spawn(name, command, args) {
        const proc = launch(name, command, args, dir, wrap);
        procs.push(proc);
        return proc;
      },
      async fetchInNode(url, timeoutMs = 10_000) {
        const script =
          'fetch(process.argv[1],{signal:AbortSignal.timeout(Number(process.argv[2]))})' +
          '.then(async r=>{process.stdout.write(JSON.stringify({status:r.status,body:Buffer.from(await r.arrayBuffer()).toString("base64")}))})' +
          '.catch(e=>{process.stderr.write(String(e&&e.cause||e));process.exit(1)})';
        // The network namespace is enough here: no need for the node's mounts or PIDs.
        const { stdout } = await run('nsenter', [`--target=${holderPid}`, '--net', '--', process.execPath, '-e', script, url, String(timeoutMs)], {
          timeout: timeoutMs + 10_000,
          maxBuffer: 256 * 1024 * 1024,
        });
        const res = JSON.parse(stdout) as { status: number; body: string };
        return { status: res.status, body: Buffer.from(res.body, 'base64') };
      },
      async loadImages(refs) {
        const archive = join(dir, `images-${sha256(Buffer.from(refs.join(' '))).slice(0, 12)}.tar`);
        // One docker-archive for all: layers the images share are written and imported once.
        await run('podman', ['save', '--format', 'docker-archive', '--multi-image-archive', '-o', archive, ...refs], {
          timeout: 300_000,
          maxBuffer: 16 * 1024 * 1024,
        });
        try {
          await importArchive(archive);
        } finally {
          await rm(archive, { force: true });
        }
      },
      importArchive,
      async images() {
        const { stdout } = await ctr('images', 'list', '--quiet');
        return stdout.split('\n').filter(Boolean);
      },
      async logs() {
        const pods = await k.request('GET', '/api/v1/pods').catch(() => undefined);
        const summary = (pods?.body?.items ?? [])
          .map((p: any) => {
            const states = (p.status?.containerStatuses ?? [])
              .map((c: any) => `${c.name}: ready=${c.ready} restarts=${c.restartCount} ${JSON.stringify(c.state)}`)
              .join('; ');
            return `${p.metadata.namespace}/${p.metadata.name} ${p.status?.phase} ${states}`;
          })
          .join('\n');
        const all = [...(await Promise.all(procs.map(async (p) => `--- ${p.name}\n${await tail(p.logPath, 3_000)}`))), await k.logs()];
        return `--- pods\n${summary}\n${all.join('\n')}`;
      },
      async podLog(namespace, pod, container) {
        const q = container ? `?container=${encodeURIComponent(container)}` : '';
        const res = await k.request('GET', `/api/v1/namespaces/${namespace}/pods/${pod}/log${q}`);
        return res.text;
      },
      close,
    };
    return node;
  } catch (err) {
    const logs = (await Promise.all(procs.map(async (p) => `--- ${p.name}\n${await tail(p.logPath, 4_000)}`))).join('\n');
    const more = kube ? await kube.logs().catch(() => '') : '';
    const held = holder ? `--- holder\n${holder.output()}` : '';
    await close();
    throw new Error(`${(err as Error).message}\n${logs}\n${more}\n${held}`);
  }
}
