/**
 * Puts the cosign fixture (test/fixtures/cosign: an artifact and the signature
 * the real cosign v2.6.5 made for it) into a test registry, byte for byte, with
 * the oras CLI; and variants of its signature manifest for the failure cases.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { orasBinary } from '../../src/oci/oras.js';
import type { TestRegistry } from './registry.js';

const run = promisify(execFile);
export const COSIGN_FIXTURE = fileURLToPath(new URL('../../../test/fixtures/cosign/', import.meta.url));
/** The digest cosign signed (the sha256 of artifact.json). */
export const FIXTURE_DIGEST = 'sha256:00aa60a2bc7f4ddccb3a98f3aff4d15603944906c0cb1617896b2b69cabe849e';

export async function fixturePublicKey(): Promise<string> {
  return readFile(join(COSIGN_FIXTURE, 'cosign.pub'), 'utf8');
}

export async function fixtureSignatureManifest(): Promise<string> {
  return readFile(join(COSIGN_FIXTURE, 'signature.json'), 'utf8');
}

async function oras(reg: TestRegistry, args: string[]): Promise<string> {
  const { stdout } = await run(await orasBinary(), [...args, reg.tls ? '--plain-http=false' : '--plain-http'], { timeout: 60_000 });
  return stdout;
}

/** Every fixture blob into `repository` (by digest). */
export async function pushFixtureBlobs(reg: TestRegistry, repository: string): Promise<void> {
  const dir = join(COSIGN_FIXTURE, 'blobs');
  for (const hex of await readdir(dir)) await oras(reg, ['blob', 'push', `${reg.host}/${repository}@sha256:${hex}`, join(dir, hex)]);
}

/** A manifest (text) pushed under `tag`; returns nothing: its digest is the sha256 of the text. */
export async function pushManifest(reg: TestRegistry, repository: string, tag: string, manifest: string): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'cosign-fixture-'));
  try {
    await writeFile(join(work, 'manifest.json'), manifest);
    await oras(reg, ['manifest', 'push', `${reg.host}/${repository}:${tag}`, join(work, 'manifest.json')]);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The signed artifact as `repository:tag`, with (by default) its cosign signature. */
export async function pushSignedFixture(reg: TestRegistry, repository: string, tag: string, opts: { signature?: string | false } = {}): Promise<void> {
  await pushFixtureBlobs(reg, repository);
  await pushManifest(reg, repository, tag, await readFile(join(COSIGN_FIXTURE, 'artifact.json'), 'utf8'));
  if (opts.signature === false) return;
  await pushManifest(reg, repository, `${FIXTURE_DIGEST.replace(':', '-')}.sig`, opts.signature ?? (await fixtureSignatureManifest()));
}
