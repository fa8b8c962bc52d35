/**
 * spec.git.verify: the checked-out commit (mode HEAD), the annotated tag of the
 * ref (Tag), or both (TagAndHEAD) must carry a good signature by a key of the
 * verify Secret: OpenPGP public keys (`*.asc`) and SSH public keys (`*.sshpub`).
 *
 * The check is git's own (`git verify-commit` / `git verify-tag`), which runs
 * the real gpg or `ssh-keygen -Y verify` by the signature's kind, against trust
 * material made for this one check and nothing else:
 *   - a throwaway GNUPGHOME (0700) holding only the Secret's OpenPGP keys, each
 *     imported with ultimate owner trust (the Secret *is* the trust decision),
 *     with `no-autostart` so no gpg-agent outlives the check;
 *   - an allowed-signers file `* namespaces="git" <key>` per SSH key
 *     (gpg.ssh.allowedSignersFile);
 *   - gpg.minTrustLevel=fully: git counts a valid SSH signature by a key *not* in
 *     the allowed signers as good with undefined trust (and an OpenPGP one by an
 *     unknown-trust key likewise), so without it any self-made key would pass.
 * The directory is removed afterwards; no key material is logged or returned.
 * A verify Secret that holds no usable key is SecretNotFound (retried every
 * interval once fixed); a signature that does not pass is VerificationFailed.
 */
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { GitSource } from '../../api/schema.js';
import { FetchFailedError, SecretNotFoundError, VerificationFailedError } from '../../errors.js';
import type { SecretObject } from '../../resources/types.js';
import { makeKeyDir } from '../../secrets/key-dir.js';
import { trustedKeys } from '../../secrets/trusted-keys.js';
import { gitExec, type GitOptions } from './exec.js';
import type { FetchTarget } from './refs.js';

const run = promisify(execFile);

/** Name prefix of the temporary directories holding the trust material of one check. */
export const GIT_VERIFY_DIR_PREFIX = 'git-verify-';
export const PGP_KEY_SUFFIX = '.asc';
export const SSH_KEY_SUFFIX = '.sshpub';

export interface GitVerifyInput {
  git: GitSource & { verify: NonNullable<GitSource['verify']> };
  /** The work tree holding the checkout (with remote `origin`). */
  dir: string;
  /** The commit checked out. */
  sha: string;
  target: FetchTarget;
  /** The Secret named by verify.secretRef. */
  secret: SecretObject;
  /** git options with the source's credentials (a Tag check fetches the tag object). */
  options: GitOptions;
  tmpRoot?: string;
  /** The gpg binary (default: gpg on PATH). */
  gpgBinary?: string;
}

/** Verifies what the mode asks for; returns a message for the SourceVerified condition, or throws VerificationFailedError. */
export async function verifyGitRevision(input: GitVerifyInput): Promise<string> {
  const { git, secret } = input;
  const mode = git.verify.mode ?? 'HEAD';
  const keys = trustedKeys(secret, [PGP_KEY_SUFFIX, SSH_KEY_SUFFIX]);
  const where = `Secret ${secret.namespace}/${secret.name}`;
  const dir = await makeKeyDir(GIT_VERIFY_DIR_PREFIX, input.tmpRoot);
  try {
    const gnupgHome = join(dir.path, 'gnupg');
    await mkdir(gnupgHome, { mode: 0o700 });
    await writeFile(join(gnupgHome, 'gpg.conf'), 'no-autostart\n', { mode: 0o600 });
    const gpg = input.gpgBinary ?? 'gpg';
    const gpgEnv = { ...process.env, GNUPGHOME: gnupgHome };
    const signers: string[] = [];
    for (const key of keys) {
      if (key.name.endsWith(PGP_KEY_SUFFIX)) await importPgpKey(gpg, gpgEnv, key.name, key.text, where, dir.path);
      else signers.push(...sshSigners(key.name, key.text, where));
    }
    const allowedSigners = await dir.write('allowed_signers', signers.join('\n') + '\n');
    const options: GitOptions = { ...input.options, env: { ...(input.options.env ?? {}), GNUPGHOME: gnupgHome } };
    // gpg.program stays git's default (gpg): simple-git refuses to set it, rightly.
    const config = [`gpg.ssh.allowedSignersFile=${allowedSigners}`, 'gpg.minTrustLevel=fully'];
    const done: string[] = [];
    if (mode === 'Tag' || mode === 'TagAndHEAD') done.push(await verifyTag(input, options, config, where));
    if (mode === 'HEAD' || mode === 'TagAndHEAD') done.push(await verifyCommit(input, options, config, where));
    return done.join('; ');
  } finally {
    await dir.remove();
  }
}

async function verifyCommit(input: GitVerifyInput, options: GitOptions, config: string[], where: string): Promise<string> {
  const { dir, sha, git } = input;
  try {
    await gitExec(dir, ['verify-commit', sha], options, git.url, { config });
  } catch (err) {
    // git's verdict stands; %G?/%GK only say why, for the message.
    const [status = '', key = ''] = (await gitExec(dir, ['log', '-1', '--no-walk', '--format=%G?%x00%GK', sha], options, git.url, { config })).trim().split('\0');
    throw new VerificationFailedError(`commit ${sha}: ${why(status, key, where, String(err))}`);
  }
  const [, key = ''] = (await gitExec(dir, ['log', '-1', '--no-walk', '--format=%G?%x00%GK', sha], options, git.url, { config })).trim().split('\0');
  return `commit ${sha} has a good signature by ${describeKey(key)} from ${where}`;
}

async function verifyTag(input: GitVerifyInput, options: GitOptions, config: string[], where: string): Promise<string> {
  const { dir, sha, git, target } = input;
  const ref = target.fetchRef.startsWith('refs/tags/') ? target.fetchRef : git.ref?.tag ? `refs/tags/${git.ref.tag}` : undefined;
  if (!ref) throw new VerificationFailedError('verify.mode Tag needs a tag: set spec.git.ref.tag');
  const name = ref.slice('refs/tags/'.length);
  // The tag object itself (the checkout may have fetched only its commit, by id).
  await gitExec(dir, ['fetch', '--quiet', '--no-tags', '--no-write-fetch-head', '--depth=1', '--filter=blob:none', 'origin', `+${ref}:${ref}`], options, git.url);
  const kind = (await gitExec(dir, ['cat-file', '-t', ref], options, git.url)).trim();
  if (kind !== 'tag') throw new VerificationFailedError(`tag '${name}' is a lightweight tag: it has no signature to verify (sign it: git tag -s)`);
  const peeled = (await gitExec(dir, ['rev-parse', '--verify', '--quiet', `${ref}^{commit}`], options, git.url)).trim();
  if (peeled !== sha) {
    // Moved between the checkout and now: the next attempt sees one consistent state.
    throw new FetchFailedError(`tag '${name}' moved during the fetch (now ${peeled}, checked out ${sha}); trying again`);
  }
  try {
    await gitExec(dir, ['verify-tag', '--raw', ref], options, git.url, { config });
  } catch (err) {
    const text = String(err);
    const status = /no signature found/i.test(text) ? 'N' : /NO_PUBKEY|No principal matched|Good "git" signature with/i.test(text) ? 'E' : /BADSIG|Signature verification failed|incorrect signature/i.test(text) ? 'B' : '';
    throw new VerificationFailedError(`tag '${name}': ${why(status, '', where, text)}`);
  }
  return `tag '${name}' has a good signature by a key from ${where}`;
}

/** git's signature status letter, in words, with what to do. */
function why(status: string, key: string, where: string, detail: string): string {
  const k = key ? ` (${describeKey(key)})` : '';
  switch (status) {
    case 'N':
      return `is not signed; sign it (git commit -S / git tag -s) with a key from ${where}`;
    case 'B':
      return `has a bad signature${k}: the signed content was changed, or the signature is corrupt`;
    case 'E':
    case 'U':
    case 'G':
      return `is signed by a key that is not trusted${k}: add its public key to ${where} (*.asc for OpenPGP, *.sshpub for SSH)`;
    case 'X':
      return `has an expired signature${k}`;
    case 'Y':
      return `is signed by an expired key${k}`;
    case 'R':
      return `is signed by a revoked key${k}`;
    default:
      return `signature verification failed: ${detail.replace(/^\w*Error: /, '').slice(0, 500)}`;
  }
}

function describeKey(key: string): string {
  if (!key) return 'a trusted key';
  return key.startsWith('SHA256:') ? `SSH key ${key}` : `OpenPGP key ${key}`;
}

async function importPgpKey(gpg: string, env: NodeJS.ProcessEnv, name: string, text: string, where: string, dir: string): Promise<void> {
  if (!/-----BEGIN PGP PUBLIC KEY BLOCK-----/.test(text)) {
    throw new SecretNotFoundError(`${where}: key '${name}' holds no ASCII-armored OpenPGP public key (-----BEGIN PGP PUBLIC KEY BLOCK-----; gpg --armor --export)`);
  }
  const file = join(dir, 'import.asc');
  await writeFile(file, text, { mode: 0o600 });
  const base = ['--batch', '--no-tty', '--quiet', '--no-autostart'];
  let fingerprints: string[];
  try {
    const shown = await run(gpg, [...base, '--with-colons', '--import-options', 'show-only', '--import', file], { env, timeout: 30_000 });
    fingerprints = fingerprintsOf(shown.stdout);
    await run(gpg, [...base, '--import', file], { env, timeout: 30_000 });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') throw new FetchFailedError(`spec.git.verify needs gpg on the worker (Debian package gnupg)`, { retryable: false });
    throw new SecretNotFoundError(`${where}: key '${name}' could not be imported by gpg (not an OpenPGP public key?)`);
  }
  if (fingerprints.length === 0) throw new SecretNotFoundError(`${where}: key '${name}' holds no OpenPGP public key`);
  // Every key the Secret holds is trusted: that is what putting it there means.
  await ownertrust(gpg, env, fingerprints);
}

async function ownertrust(gpg: string, env: NodeJS.ProcessEnv, fingerprints: string[]): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = execFile(gpg, ['--batch', '--no-tty', '--quiet', '--no-autostart', '--import-ownertrust'], { env, timeout: 30_000 }, (err) => (err ? reject(err) : resolve()));
    child.stdin?.end(fingerprints.map((f) => `${f}:6:\n`).join(''));
  });
}

/** The primary key fingerprints of `gpg --with-colons` output. */
function fingerprintsOf(colons: string): string[] {
  const out: string[] = [];
  let primary = false;
  for (const line of colons.split('\n')) {
    const f = line.split(':');
    if (f[0] === 'pub') primary = true;
    else if (f[0] === 'fpr' && primary && f[9]) {
      out.push(f[9]);
      primary = false;
    } else if (f[0] === 'sub') primary = false;
  }
  return out;
}

/** allowed_signers lines for the SSH public keys in one Secret key. */
function sshSigners(name: string, text: string, where: string): string[] {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const out: string[] = [];
  for (const line of lines) {
    const m = /^((?:ssh|ecdsa|sk-ssh|sk-ecdsa)-[A-Za-z0-9@.-]+)\s+(AAAA[A-Za-z0-9+/=]+)(?:\s.*)?$/.exec(line);
    if (!m) throw new SecretNotFoundError(`${where}: key '${name}' holds a line that is not an SSH public key ("<type> AAAA… [comment]", as in a .pub file)`);
    out.push(`* namespaces="git" ${m[1]} ${m[2]}`);
  }
  return out;
}
