/**
 * Which artifact store the worker and serve commands use, from their flags
 * and the environment (ARENA_SOURCE_STORE, ARENA_SOURCE_S3_*).
 */
import { InvalidSpecError } from '../errors.js';
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

const TRUE = /^(1|true|yes|on)$/i;

/**
 * The S3 options the flags (else ARENA_SOURCE_STORE / ARENA_SOURCE_S3_*) ask
 * for, or null for the filesystem store. Throws InvalidSpecError on a bad mix.
 */
export function s3OptionsFromFlags(flags: StoreFlags, env: NodeJS.ProcessEnv = process.env): S3StoreOptions | null {
  const get = (name: string) => (env[name] === undefined || env[name] === '' ? undefined : env[name]);
  const kind = flags.store ?? get('ARENA_SOURCE_STORE') ?? 'fs';
  if (kind !== 'fs' && kind !== 's3') throw new InvalidSpecError(`--store must be "fs" or "s3", not "${kind}"`);
  if (kind === 'fs') return null;
  const bucket = flags.s3Bucket ?? get('ARENA_SOURCE_S3_BUCKET');
  if (!bucket) throw new InvalidSpecError('--store s3 needs --s3-bucket (or ARENA_SOURCE_S3_BUCKET)');
  const prefix = flags.s3Prefix ?? get('ARENA_SOURCE_S3_PREFIX');
  const region = flags.s3Region ?? get('ARENA_SOURCE_S3_REGION');
  const endpoint = flags.s3Endpoint ?? get('ARENA_SOURCE_S3_ENDPOINT');
  const pathStyleEnv = get('ARENA_SOURCE_S3_FORCE_PATH_STYLE');
  const forcePathStyle = flags.s3ForcePathStyle ?? (pathStyleEnv !== undefined ? TRUE.test(pathStyleEnv) : undefined);
  return {
    bucket,
    ...(prefix !== undefined ? { prefix } : {}),
    ...(region !== undefined ? { region } : {}),
    ...(endpoint !== undefined ? { endpoint } : {}),
    ...(forcePathStyle !== undefined ? { forcePathStyle } : {}),
  };
}

/** Whether the artifact server should redirect GETs to presigned URLs (--redirect-presigned / ARENA_SOURCE_S3_REDIRECT_PRESIGNED). */
export function redirectPresignedFromFlags(flags: StoreFlags, env: NodeJS.ProcessEnv = process.env): boolean {
  if (flags.redirectPresigned !== undefined) return flags.redirectPresigned;
  const v = env.ARENA_SOURCE_S3_REDIRECT_PRESIGNED;
  return v !== undefined && TRUE.test(v);
}
