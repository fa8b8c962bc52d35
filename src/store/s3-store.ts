/**
 * ArtifactStore on S3 or any S3-compatible object store (MinIO, versitygw, Ceph RGW…):
 * s3://<bucket>/<prefix>/<namespace>/<name>/<hex>.tar.gz
 *
 * The part after the prefix is exactly `artifactKey()`, so the artifact server's
 * URLs (`/<ns>/<name>/<hex>.tar.gz`) are the same whichever store is behind it.
 *
 * - put streams the file through lib-storage's `Upload` (one PutObject below
 *   `partSize`, a multipart upload above it), so memory use is bounded by
 *   partSize × queueSize whatever the archive's size. The bytes are hashed as
 *   they are read and a mismatch with the expected checksum fails the stream
 *   *before* the request that publishes the object (the single PutObject or
 *   CompleteMultipartUpload) is sent, so a wrong or partial object never appears
 *   under the final key; a killed worker leaves at most an incomplete multipart
 *   upload, which is invisible to readers and which prune/removeSource abort.
 * - Every object carries `x-amz-meta-sha256: <hex>`; with checksums on (the
 *   default) S3 also stores its own SHA-256 (`ChecksumAlgorithm: SHA256`). For
 *   an object sent in one PutObject that is the sha256 of the whole object (a
 *   FULL_OBJECT checksum, computed and checked by the server), which `verify`
 *   compares without downloading anything; a multipart object's SHA-256 is a
 *   COMPOSITE checksum of its parts, so `verify` streams it and hashes it.
 * - put is idempotent: an object already there with the same size and sha256
 *   is not uploaded again (so its LastModified, and "newest" in prune, is the
 *   time it was first published).
 */

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { pipeline, Transform, type Readable } from 'node:stream';

import {
  AbortMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';

import { ArenaSourceError, InvalidSpecError, StorageFailedError } from '../errors.js';
import {
  type ArtifactStore,
  type ListedArtifact,
  type SourceKey,
  type StoredArtifact,
  artifactKey,
  assertSourceKey,
  checksumHex,
  currentHexOf,
  parseArtifactKey,
  sortNewestFirst,
} from './artifact-store.js';

export interface S3StoreOptions {
  bucket: string;
  /** Key prefix inside the bucket, e.g. "arena-source/prod" (no leading or trailing "/" needed). Default: none. */
  prefix?: string;
  /** Default: $AWS_REGION, $AWS_DEFAULT_REGION, else us-east-1 (what S3-compatible servers expect). */
  region?: string;
  /** Endpoint of an S3-compatible server, e.g. http://minio.minio:9000. Default: AWS S3. */
  endpoint?: string;
  /** Path-style URLs (http://host/bucket/key): needed by most S3-compatible servers and by IP endpoints. */
  forcePathStyle?: boolean;
  /** Static credentials; default: the AWS SDK's chain (env AWS_ACCESS_KEY_ID…, web identity/IRSA, profile, IMDS). */
  credentials?: S3ClientConfig['credentials'];
  /** Use this client instead of building one (the options above are then ignored). */
  client?: S3Client;
  /** Size of one part of a multipart upload, ≥ 5 MiB; smaller objects are sent in one PutObject. Default 8 MiB. */
  partSize?: number;
  /** Parts in flight per upload. Default 2 (so at most partSize × 2 of an archive is in memory). */
  queueSize?: number;
  /**
   * Ask S3 to store and check a SHA-256 of every object (flexible checksums).
   * Turn off for servers that reject `x-amz-checksum-*` headers; verify then
   * always downloads and hashes. Default true.
   */
  checksums?: boolean;
  /** verify always downloads and hashes the object, even when S3 has a whole-object SHA-256. Default false. */
  deepVerify?: boolean;
  /** Multipart uploads of a source older than this are aborted by prune (a put that crashed). Default 1 h. */
  staleUploadMs?: number;
}

const MiB = 1024 * 1024;
const DEFAULT_PART_SIZE = 8 * MiB;
const MIN_PART_SIZE = 5 * MiB;
const STALE_UPLOAD_MS = 60 * 60 * 1000;
// S3's own limit for one DeleteObjects request.
const DELETE_BATCH = 1000;
// A prefix is a path of S3 "safe characters"; "." and ".." segments are refused.
const PREFIX_SEGMENT = /^[A-Za-z0-9!_.*'()-]+$/;

export class S3ArtifactStore implements ArtifactStore {
  readonly bucket: string;
  /** "" or "some/prefix/" (always ending with "/"). */
  readonly prefix: string;
  readonly client: S3Client;
  private readonly ownsClient: boolean;
  private readonly partSize: number;
  private readonly queueSize: number;
  private readonly checksums: boolean;
  private readonly deepVerify: boolean;
  private readonly staleUploadMs: number;

  constructor(opts: S3StoreOptions) {
    if (!opts.bucket || !/^[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]$/.test(opts.bucket)) {
      throw new InvalidSpecError(`S3 bucket "${opts.bucket}" is not a valid bucket name`);
    }
    this.bucket = opts.bucket;
    this.prefix = normalisePrefix(opts.prefix);
    this.partSize = Math.max(MIN_PART_SIZE, opts.partSize ?? DEFAULT_PART_SIZE);
    this.queueSize = Math.max(1, opts.queueSize ?? 2);
    this.checksums = opts.checksums ?? true;
    this.deepVerify = opts.deepVerify ?? false;
    this.staleUploadMs = opts.staleUploadMs ?? STALE_UPLOAD_MS;
    this.ownsClient = opts.client === undefined;
    this.client =
      opts.client ??
      new S3Client({
        region: opts.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
        ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
        forcePathStyle: opts.forcePathStyle ?? false,
        ...(opts.credentials ? { credentials: opts.credentials } : {}),
        // A bucket in another region than the one configured answers 301; follow it.
        followRegionRedirects: true,
        ...(this.checksums ? {} : { requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' }),
        // The artifact server keeps one S3 connection per download in flight: allow
        // more than the SDK's default 50. No socket idle timeout: a slow consumer
        // applies back-pressure to the S3 stream, which is not a dead connection.
        requestHandler: {
          connectionTimeout: 10_000,
          httpAgent: new HttpAgent({ keepAlive: true, maxSockets: 256 }),
          httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: 256 }),
        },
      });
  }

  /** The full object key of an artifact key. */
  objectKey(key: string): string {
    return `${this.prefix}${key}`;
  }

  /** Where this store's objects live, for messages: s3://bucket/prefix */
  get location(): string {
    return `s3://${this.bucket}/${this.prefix}`;
  }

  async put(source: SourceKey, file: string, checksum: string): Promise<StoredArtifact> {
    const key = artifactKey(source, checksum); // validates names and digest
    const hex = checksumHex(checksum);
    const objectKey = this.objectKey(key);
    try {
      const size = (await stat(file)).size;

      // Idempotent: the same bytes are there already.
      const existing = await this.head(objectKey);
      if (existing !== null && existing.size === size && sameContent(existing, hex) === true) {
        await rm(file, { force: true });
        return { key, checksum, size };
      }

      await this.upload(file, objectKey, hex, size);

      // Read back what S3 now holds under the key.
      const stored = await this.head(objectKey);
      if (stored === null) throw new StorageFailedError(`${this.describe(objectKey)} is missing right after its upload`);
      if (stored.size !== size || sameContent(stored, hex) === false) {
        throw new StorageFailedError(
          `${this.describe(objectKey)} does not match after its upload: ${stored.size} bytes` +
            `${stored.checksumSHA256 ? `, SHA-256 ${stored.checksumSHA256}` : ''}; expected ${size} bytes of ${checksum}`,
        );
      }
      await rm(file, { force: true });
      return { key, checksum, size };
    } catch (err) {
      throw this.storageError(err, `storing artifact ${key} in ${this.location}`);
    }
  }

  async verify(source: SourceKey, checksum: string): Promise<boolean> {
    const key = artifactKey(source, checksum);
    const hex = checksumHex(checksum);
    const objectKey = this.objectKey(key);
    try {
      const head = await this.head(objectKey);
      if (head === null) return false;
      const claimed = sameContent(head, hex);
      if (claimed === false) return false;
      if (head.fullObjectSHA256 && !this.deepVerify) return claimed === true;
      // No whole-object checksum from S3 (multipart, or checksums off): hash the bytes.
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: objectKey }));
      const hash = createHash('sha256');
      for await (const chunk of out.Body as Readable) hash.update(chunk as Buffer);
      return hash.digest('hex') === hex;
    } catch (err) {
      if (isNotFound(err)) return false; // deleted between HEAD and GET
      // The SDK checks S3's whole-object checksum while streaming: bytes that changed under it.
      if (err instanceof Error && /checksum mismatch/i.test(err.message)) return false;
      throw this.storageError(err, `verifying artifact ${key} in ${this.location}`);
    }
  }

  async open(
    key: string,
    range?: { start: number; end: number },
  ): Promise<{ stream: NodeJS.ReadableStream; size: number } | null> {
    if (parseArtifactKey(key) === null) return null;
    if (range) {
      const { start, end } = range;
      if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || start > end) {
        throw new RangeError(`range ${start}-${end} is not satisfiable for ${key}`);
      }
    }
    const objectKey = this.objectKey(key);
    try {
      const out = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: objectKey,
          ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}),
        }),
      );
      const body = out.Body as Readable | undefined;
      if (body === undefined) throw new StorageFailedError(`${this.describe(objectKey)}: GetObject returned no body`);
      // Content-Range: "bytes 0-9/1234" gives the whole object's size for a range.
      const total = /\/(\d+)\s*$/.exec(out.ContentRange ?? '');
      const size = total ? Number(total[1]) : (out.ContentLength ?? 0);
      return { stream: body, size };
    } catch (err) {
      if (isNotFound(err)) return null;
      if (statusOf(err) === 416) throw new RangeError(`range ${range?.start}-${range?.end} is not satisfiable for ${key}`);
      throw this.storageError(err, `opening artifact ${key} in ${this.location}`);
    }
  }

  async stat(key: string): Promise<{ size: number; mtime: Date } | null> {
    if (parseArtifactKey(key) === null) return null;
    try {
      const head = await this.head(this.objectKey(key));
      return head === null ? null : { size: head.size, mtime: head.mtime };
    } catch (err) {
      throw this.storageError(err, `reading artifact ${key} in ${this.location}`);
    }
  }

  /** A short-lived URL that GETs the object straight from S3 (the artifact server's redirect), or null for an invalid key. */
  async presign(key: string, expiresInSeconds: number): Promise<string | null> {
    if (parseArtifactKey(key) === null) return null;
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }), {
      expiresIn: Math.max(1, Math.floor(expiresInSeconds)),
    });
  }

  /** Every artifact of a source, as artifact keys with size and upload time, in no particular order. */
  async list(source: SourceKey): Promise<ListedArtifact[]> {
    assertSourceKey(source);
    try {
      return await this.listUnder(source);
    } catch (err) {
      throw this.storageError(err, `listing artifacts of ${source.namespace}/${source.name} in ${this.location}`);
    }
  }

  async removeSource(source: SourceKey): Promise<void> {
    assertSourceKey(source);
    const prefix = this.sourcePrefix(source);
    try {
      // Every object under the source's prefix, not only artifact-shaped ones.
      let token: string | undefined;
      do {
        const page = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }),
        );
        const keys = (page.Contents ?? []).map((o) => o.Key).filter((k): k is string => typeof k === 'string');
        await this.deleteObjects(keys);
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      await this.abortUploads(prefix, 0);
    } catch (err) {
      throw this.storageError(err, `removing artifacts of ${source.namespace}/${source.name} from ${this.location}`);
    }
  }

  async prune(source: SourceKey, keep: number, current: string): Promise<string[]> {
    assertSourceKey(source);
    const currentHex = currentHexOf(source, current);
    try {
      const artifacts = sortNewestFirst(await this.listUnder(source));
      const keepCount = Number.isFinite(keep) ? Math.max(0, Math.floor(keep)) : 0;
      const doomed = artifacts.filter((a, i) => i >= keepCount && parseArtifactKey(a.key)?.hex !== currentHex).map((a) => a.key);
      await this.deleteObjects(doomed.map((k) => this.objectKey(k)));
      await this.abortUploads(this.sourcePrefix(source), this.staleUploadMs);
      return doomed;
    } catch (err) {
      throw this.storageError(err, `pruning artifacts of ${source.namespace}/${source.name} in ${this.location}`);
    }
  }

  /** Closes the client's sockets (only if this store built the client). */
  destroy(): void {
    if (this.ownsClient) this.client.destroy();
  }

  // ---------------------------------------------------------------------------

  private async upload(file: string, objectKey: string, hex: string, size: number): Promise<void> {
    // Hash while lib-storage reads; a mismatch errors the stream in flush(), which
    // runs before the stream ends, i.e. before lib-storage knows the last part and
    // sends the publishing request. So a changed or truncated file is never published.
    const hash = createHash('sha256');
    let seen = 0;
    const tap = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        seen += chunk.length;
        cb(null, chunk);
      },
      flush(cb) {
        const actual = hash.digest('hex');
        if (actual !== hex || seen !== size) {
          cb(
            new StorageFailedError(
              `refusing to store "${file}" as ${objectKey}: its content (${seen} bytes) hashes to sha256:${actual}, not sha256:${hex} (${size} bytes)`,
            ),
          );
        } else {
          cb();
        }
      },
    });
    const body = pipeline(createReadStream(file), tap, () => undefined);
    const upload = new Upload({
      client: this.client,
      partSize: this.partSize,
      queueSize: this.queueSize,
      leavePartsOnError: false,
      params: {
        Bucket: this.bucket,
        Key: objectKey,
        Body: body,
        ContentLength: size,
        ContentType: 'application/gzip',
        Metadata: { sha256: hex },
        ...(this.checksums ? { ChecksumAlgorithm: 'SHA256' as const } : {}),
      },
    });
    try {
      await upload.done();
    } finally {
      body.destroy();
    }
  }

  private async head(objectKey: string): Promise<Head | null> {
    try {
      const out = await this.client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: objectKey, ...(this.checksums ? { ChecksumMode: 'ENABLED' as const } : {}) }),
      );
      const sha = out.ChecksumSHA256;
      return {
        size: out.ContentLength ?? 0,
        mtime: out.LastModified ?? new Date(0),
        metaSHA256: out.Metadata?.sha256,
        checksumSHA256: sha,
        // A composite (multipart) checksum looks like "<base64>-<parts>".
        fullObjectSHA256: sha !== undefined && !sha.includes('-') && out.ChecksumType !== 'COMPOSITE' ? sha : undefined,
      };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  private async listUnder(source: SourceKey): Promise<ListedArtifact[]> {
    const prefix = this.sourcePrefix(source);
    const out: ListedArtifact[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }),
      );
      for (const o of page.Contents ?? []) {
        if (o.Key === undefined || !o.Key.startsWith(this.prefix)) continue;
        const key = o.Key.slice(this.prefix.length);
        const parsed = parseArtifactKey(key);
        if (parsed === null || parsed.source.namespace !== source.namespace || parsed.source.name !== source.name) continue;
        out.push({ key, size: o.Size ?? 0, mtime: o.LastModified ?? new Date(0) });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  private async deleteObjects(objectKeys: string[]): Promise<void> {
    for (let i = 0; i < objectKeys.length; i += DELETE_BATCH) {
      const batch = objectKeys.slice(i, i + DELETE_BATCH);
      const out = await this.client.send(
        new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }),
      );
      const failed = (out.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (failed.length > 0) {
        const first = failed[0];
        throw new StorageFailedError(
          `could not delete ${failed.length} object(s) from s3://${this.bucket}/, e.g. ${first?.Key}: ${first?.Code} ${first?.Message ?? ''}`.trim(),
        );
      }
    }
  }

  /** Aborts multipart uploads under `prefix` started more than `olderThanMs` ago; servers without the API are skipped. */
  private async abortUploads(prefix: string, olderThanMs: number): Promise<void> {
    const cutoff = Date.now() - olderThanMs;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      let page;
      try {
        page = await this.client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.bucket,
            Prefix: prefix,
            ...(keyMarker ? { KeyMarker: keyMarker } : {}),
            ...(uploadIdMarker ? { UploadIdMarker: uploadIdMarker } : {}),
          }),
        );
      } catch (err) {
        if (statusOf(err) === 501 || errorName(err) === 'NotImplemented') return;
        throw err;
      }
      for (const u of page.Uploads ?? []) {
        if (!u.Key || !u.UploadId || !u.Key.startsWith(prefix)) continue;
        if (olderThanMs > 0 && (u.Initiated?.getTime() ?? 0) > cutoff) continue;
        await this.client
          .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: u.Key, UploadId: u.UploadId }))
          .catch((err: unknown) => {
            if (!isNotFound(err)) throw err; // completed or aborted meanwhile
          });
      }
      if (!page.IsTruncated) return;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
      if (!keyMarker) return;
    }
  }

  private sourcePrefix(source: SourceKey): string {
    return `${this.prefix}${source.namespace}/${source.name}/`;
  }

  private describe(objectKey: string): string {
    return `s3://${this.bucket}/${objectKey}`;
  }

  private storageError(err: unknown, context: string): Error {
    if (err instanceof ArenaSourceError || err instanceof RangeError) return err;
    const name = errorName(err);
    const status = statusOf(err);
    const message = err instanceof Error ? err.message : String(err);
    const hint =
      name === 'NoSuchBucket'
        ? ` (bucket "${this.bucket}" does not exist)`
        : /^(AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch|ExpiredToken|InvalidToken)$|UserNotFound/.test(name ?? '') ||
            status === 401 ||
            status === 403
          ? ' (check the credentials and the bucket policy)'
          : name === 'CredentialsProviderError'
            ? ' (no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, or a web identity/IRSA role)'
            : /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNRESET/.test(`${name} ${message} ${codeOf(err)}`)
              ? ' (the S3 endpoint is unreachable)'
              : '';
    const label = name && name !== 'Error' && !message.startsWith(name) ? `${name}: ` : '';
    return new StorageFailedError(`${context}: ${label}${message}${hint}`, { cause: err });
  }
}

interface Head {
  size: number;
  mtime: Date;
  metaSHA256: string | undefined;
  checksumSHA256: string | undefined;
  /** Base64 SHA-256 of the whole object, when S3 has one (single-part upload with checksums). */
  fullObjectSHA256: string | undefined;
}

/**
 * Whether S3's record of an object says it holds the content `hex`: S3's own
 * whole-object SHA-256 decides when there is one; else the sha256 metadata we
 * wrote. true/false, or null when neither is there (an object written by
 * something else): the caller must hash the bytes.
 */
function sameContent(head: Head, hex: string): boolean | null {
  if (head.fullObjectSHA256 !== undefined) return head.fullObjectSHA256 === Buffer.from(hex, 'hex').toString('base64');
  if (head.metaSHA256 !== undefined) return head.metaSHA256 === hex;
  return null;
}

function normalisePrefix(prefix: string | undefined): string {
  const p = (prefix ?? '').replace(/^\/+|\/+$/g, '');
  if (p === '') return '';
  const segments = p.split('/');
  if (segments.some((s) => !PREFIX_SEGMENT.test(s) || s === '.' || s === '..')) {
    throw new InvalidSpecError(`S3 prefix "${prefix}" must be "/"-separated segments of letters, digits and !_.*'()- (no empty, "." or ".." segments)`);
  }
  return `${p}/`;
}

function errorName(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'name' in err ? String((err as { name: unknown }).name) : undefined;
}

function codeOf(err: unknown): string {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : '';
}

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
}

function isNotFound(err: unknown): boolean {
  const name = errorName(err);
  return name === 'NoSuchKey' || name === 'NotFound' || name === 'NoSuchUpload' || statusOf(err) === 404;
}
