/**
 * Signed git history for the verification tests, made by the real tools: an
 * OpenPGP key made by gpg in its own GNUPGHOME (agent stopped by `close`), an SSH
 * key made by ssh-keygen, and commits / tags signed by git (`commit -S`,
 * `tag -s`, gpg.format ssh) pushed to a bare repository. `tamperedCommit`
 * rewrites a signed commit's message but keeps its signature: a bad signature.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { git, gitEnv, type FileContents } from '../../src/dev/demo-git/repo.js';

const run = promisify(execFile);

export type Signer =
  | { kind: 'pgp'; gnupgHome: string; email: string; publicKey: string; fingerprint: string }
  | { kind: 'ssh'; keyFile: string; publicKey: string; fingerprint: string };

export async function makePgpSigner(dir: string, name: string): Promise<Signer> {
  const gnupgHome = join(dir, `gnupg-${name}`);
  await mkdir(gnupgHome, { mode: 0o700 });
  const email = `${name}@signers.arena.test`;
  const env = { ...process.env, GNUPGHOME: gnupgHome };
  await run('gpg', ['--batch', '--quiet', '--passphrase', '', '--quick-gen-key', `${name} <${email}>`, 'ed25519', 'sign', 'never'], { env });
  const { stdout: publicKey } = await run('gpg', ['--batch', '--armor', '--export', email], { env });
  const { stdout: colons } = await run('gpg', ['--batch', '--with-colons', '--list-keys', email], { env });
  const fingerprint = colons.split('\n').find((l) => l.startsWith('fpr:'))?.split(':')[9] ?? '';
  return { kind: 'pgp', gnupgHome, email, publicKey, fingerprint };
}

export async function makeSshSigner(dir: string, name: string): Promise<Signer> {
  const keyFile = join(dir, `ssh-${name}`);
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', keyFile]);
  const publicKey = await readFile(`${keyFile}.pub`, 'utf8');
  const { stdout } = await run('ssh-keygen', ['-l', '-f', `${keyFile}.pub`]);
  return { kind: 'ssh', keyFile, publicKey, fingerprint: stdout.split(/\s+/)[1] ?? '' };
}

/** Stops the gpg-agent a PGP signer started. */
export async function closeSigner(signer: Signer): Promise<void> {
  if (signer.kind === 'pgp') await run('gpgconf', ['--kill', 'all'], { env: { ...process.env, GNUPGHOME: signer.gnupgHome } }).catch(() => undefined);
}

function signingConfig(signer: Signer): { config: string[]; env: NodeJS.ProcessEnv } {
  return signer.kind === 'pgp'
    ? { config: ['-c', `user.signingkey=${signer.email}`, '-c', 'gpg.format=openpgp'], env: { GNUPGHOME: signer.gnupgHome } }
    : { config: ['-c', `user.signingkey=${signer.keyFile}`, '-c', 'gpg.format=ssh'], env: {} };
}

export interface SignedCommitOptions {
  branch: string;
  message: string;
  /** Signs the commit (unsigned without). */
  signer?: Signer;
  /** A tag on the new commit (forced): annotated and signed by `signer`, annotated unsigned, or lightweight. */
  tag?: { name: string; signer?: Signer; lightweight?: boolean };
}

/** Commits `files` on top of the branch of the bare repository `repo` (created by seedRepo) and pushes; returns the sha. */
export async function signedCommit(repo: string, files: FileContents, opts: SignedCommitOptions): Promise<string> {
  const work = await mkdtemp(join(tmpdir(), 'signed-work-'));
  try {
    const g = (args: string[], signer?: Signer) => {
      const s = signer ? signingConfig(signer) : { config: [], env: {} };
      return git([...s.config, ...args], { cwd: work, env: gitEnv(s.env) });
    };
    await g(['init', '--quiet', '.']);
    await g(['remote', 'add', 'origin', repo]);
    // A new branch starts from main.
    await g(['fetch', '--quiet', '--no-tags', 'origin', `refs/heads/${opts.branch}`]).catch(() => g(['fetch', '--quiet', '--no-tags', 'origin', 'refs/heads/main']));
    await g(['checkout', '--quiet', '-B', opts.branch, 'FETCH_HEAD']);
    for (const [p, content] of Object.entries(files)) {
      await mkdir(dirname(join(work, p)), { recursive: true });
      await writeFile(join(work, p), content);
    }
    await g(['add', '-A']);
    await g(['commit', '--quiet', '--allow-empty', '--no-verify', ...(opts.signer ? ['-S'] : []), '-m', opts.message], opts.signer);
    const sha = (await g(['rev-parse', 'HEAD'])).stdout.trim();
    const refspecs = [`HEAD:refs/heads/${opts.branch}`];
    if (opts.tag) {
      const t = opts.tag;
      if (t.lightweight) await g(['tag', '-f', t.name, sha]);
      else await g(['tag', '-f', ...(t.signer ? ['-s'] : ['-a']), '-m', `release ${t.name}`, t.name, sha], t.signer);
      refspecs.push(`+refs/tags/${t.name}:refs/tags/${t.name}`);
    }
    await g(['push', '--quiet', '--force', 'origin', ...refspecs]);
    return sha;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** A copy of the branch tip with another message but the same signature header: pushed (forced); returns its sha. */
export async function tamperedCommit(repo: string, branch: string): Promise<string> {
  const raw = (await git(['cat-file', 'commit', `refs/heads/${branch}`], { cwd: repo, env: gitEnv() })).stdout;
  const tampered = raw.replace(/\n\n([\s\S]*)$/, '\n\nnot what was signed\n');
  const work = await mkdtemp(join(tmpdir(), 'tamper-'));
  try {
    await writeFile(join(work, 'commit'), tampered);
    const { stdout } = await run('git', ['hash-object', '-w', '-t', 'commit', '--literally', join(work, 'commit')], { cwd: repo, env: gitEnv() });
    const sha = stdout.trim();
    await git(['update-ref', `refs/heads/${branch}`, sha], { cwd: repo, env: gitEnv() });
    return sha;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
