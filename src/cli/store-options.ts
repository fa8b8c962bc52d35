/**
 * Which artifact store the worker and serve commands use, from their flags
 * (the environment — ARENA_SOURCE_STORE, ARENA_SOURCE_S3_* — is already folded
 * in by the options table, src/cli/options.ts).
 */
import { InvalidSpecError } from '../errors.js';
import type { ArtifactStore } from '../store/artifact-store.js';
import { FilesystemArtifactStore } from '../store/fs-store.js';
import type { S3StoreOptions } from '../store/s3-store.js';

export interface StoreFlags {
  /** "fs" (default) or "s3". */
  store?: string;
  s3Bucket?: string;
  s3Prefix?: string;
  s3Region?: string;
  s3Endpoint?: string;
  s3ForcePathStyle?: boolean;
  redirectPresigned?: boolean;
}

/** The S3 options the flags ask for, or null for the filesystem store. Throws InvalidSpecError on a bad mix. */
export function s3OptionsFromFlags(flags: StoreFlags): S3StoreOptions | null {
  const kind = flags.store ?? 'fs';
  if (kind !== 'fs' && kind !== 's3') throw new InvalidSpecError(`--store must be "fs" or "s3", not "${kind}"`);
  if (kind === 'fs') return null;
  if (!flags.s3Bucket) throw new InvalidSpecError('--store s3 needs --s3-bucket (or ARENA_SOURCE_S3_BUCKET)');
  return {
    bucket: flags.s3Bucket,
    ...(flags.s3Prefix !== undefined ? { prefix: flags.s3Prefix } : {}),
    ...(flags.s3Region !== undefined ? { region: flags.s3Region } : {}),
    ...(flags.s3Endpoint !== undefined ? { endpoint: flags.s3Endpoint } : {}),
    ...(flags.s3ForcePathStyle !== undefined ? { forcePathStyle: flags.s3ForcePathStyle } : {}),
  };
}

/** Whether the artifact server should redirect GETs to presigned URLs (--redirect-presigned). */
export function redirectPresignedFromFlags(flags: StoreFlags): boolean {
  return flags.redirectPresigned === true;
}

/**
 * <data-dir>/artifacts, or an S3 bucket with --store s3 (ARENA_SOURCE_STORE=s3). The AWS SDK is
 * loaded only then: a process on the filesystem store does not carry it.
 */
export async function openArtifactStore(flags: StoreFlags, fsRoot: string): Promise<{ store: ArtifactStore; where: string }> {
  const s3 = s3OptionsFromFlags(flags);
  if (s3 === null) return { store: new FilesystemArtifactStore(fsRoot), where: fsRoot };
  const { S3ArtifactStore } = await import('../store/s3-store.js');
  const store = new S3ArtifactStore(s3);
  return { store, where: store.location };
}
