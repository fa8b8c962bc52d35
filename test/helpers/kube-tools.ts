/**
 * kubectl and arena-kstatus (test/k8s/kstatus: cli-utils' kstatus rules), built
 * by test/k8s/build.sh beside kube-apiserver, run against a test API server.
 *
 *   const tools = kubeTools(kube.kubeconfigPath, dir);
 *   await tools.kubectl(['-n', 'ns', 'wait', '--for=condition=Ready', 'arenasource/x', '--timeout=30s']);
 *   await tools.kstatus('ns', 'arenasource', 'x');   // { status: 'Current', message }
 */
import { spawn } from 'node:child_process';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { isExecutable } from './kube.js';

const TOOLS = ['kubectl', 'arena-kstatus'] as const;

/** Same search order as findKubeBinaries: $ARENA_KUBE_BIN_DIR, ~/.cache/arena-source/bin, PATH. */
export function findKubeTool(name: (typeof TOOLS)[number]): string | undefined {
  const dirs = [
    ...(process.env.ARENA_KUBE_BIN_DIR ? [process.env.ARENA_KUBE_BIN_DIR] : []),
    join(homedir(), '.cache', 'arena-source', 'bin'),
    ...(process.env.PATH ?? '').split(delimiter).filter(Boolean),
  ];
  return dirs.map((d) => join(d, name)).find(isExecutable);
}

/** For `describe(..., { skip })`: skip only outside CI when kubectl or arena-kstatus is missing. */
export function kubeToolsSkipReason(): string | false {
  const missing = TOOLS.filter((t) => !findKubeTool(t));
  if (missing.length === 0 || process.env.CI === 'true') return false;
  return `${missing.join(' and ')} not built: run \`bash test/k8s/build.sh\` (or .ci/run)`;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface KstatusResult {
  name: string;
  /** InProgress, Failed, Current, Terminating, NotFound or Unknown. */
  status: string;
  message: string;
}

export function kubeTools(kubeconfigPath: string, cacheDir: string) {
  const kubectlBin = findKubeTool('kubectl');
  const kstatusBin = findKubeTool('arena-kstatus');
  if (!kubectlBin || !kstatusBin) throw new Error(String(kubeToolsSkipReason()));
  // Discovery cache in the test's dir, not ~/.kube.
  const kubectl = (args: string[]) => run(kubectlBin, ['--kubeconfig', kubeconfigPath, '--cache-dir', cacheDir, ...args]);
  return {
    kubectl,
    /** kstatus of one object, as read from the API server now. */
    async kstatus(namespace: string, resource: string, name: string): Promise<KstatusResult> {
      const got = await kubectl(['-n', namespace, 'get', resource, name, '-o', 'json']);
      if (got.code !== 0) throw new Error(`kubectl get ${resource}/${name}: ${got.stderr}`);
      const res = await run(kstatusBin, [], got.stdout);
      if (res.code !== 0) throw new Error(`arena-kstatus: ${res.stderr}`);
      return JSON.parse(res.stdout) as KstatusResult;
    },
  };
}

function run(bin: string, args: string[], input?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}
