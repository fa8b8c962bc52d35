/**
 * `arena-source push DIR oci://registry/repository:tag`: packs DIR with the
 * reproducible packer and pushes it as a Flux-compatible OCI artifact
 *   config  application/vnd.cncf.flux.config.v1+json  ("{}")
 *   layer   application/vnd.cncf.flux.content.v1.tar+gzip  (the .tar.gz)
 * with the annotations org.opencontainers.image.source / .revision and a fixed
 * org.opencontainers.image.created, so the same content (and the same source
 * and revision annotations) always gives the same manifest digest.
 *
 * The layer's digest is the packed archive's sha256, which is also the checksum
 * an ArenaSource reports for the artifact (the packer is reproducible and the
 * extractor keeps exactly what it packs).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseOciUrl, redactUrl } from '../api/spec-rules.js';
import { packDirectory, type PackLimits } from '../bundle/pack.js';
import { InvalidSpecError } from '../errors.js';
import { registryAuthFromDockerConfig } from './credentials.js';
import { withOras, type OrasTarget, type RegistryAuth } from './oras.js';

export const FLUX_CONFIG_MEDIA_TYPE = 'application/vnd.cncf.flux.config.v1+json';
export const FLUX_CONTENT_MEDIA_TYPE = 'application/vnd.cncf.flux.content.v1.tar+gzip';
export const ANNOTATION_SOURCE = 'org.opencontainers.image.source';
export const ANNOTATION_REVISION = 'org.opencontainers.image.revision';
export const ANNOTATION_CREATED = 'org.opencontainers.image.created';
/** Fixed, so that pushing the same content twice gives the same digest. */
export const FIXED_CREATED = '1970-01-01T00:00:00Z';
/** The layer's title (what `oras pull` names the file). Fixed for reproducibility. */
export const BUNDLE_LAYER_TITLE = 'bundle.tar.gz';

export interface PushBundleOptions {
  username?: string;
  password?: string;
  /** A docker config JSON text ({"auths": {...}}); its entry for the registry is used. */
  dockerConfigJson?: string;
  /** Plain HTTP or unverified TLS allowed. */
  insecure?: boolean;
  /** Extra CA certificates (PEM) for the registry. */
  caFile?: string;
  /** org.opencontainers.image.source, e.g. the git URL the bundle comes from. */
  sourceUrl?: string;
  /** org.opencontainers.image.revision, e.g. main@sha1:<commit>. */
  revision?: string;
  /** The oras binary (else $ORAS_PATH, ~/.cache/arena-source/bin/oras, PATH). */
  orasPath?: string;
  /** Whole push, default 5 minutes. */
  timeoutMs?: number;
  limits?: Partial<PackLimits>;
}

export interface PushBundleResult {
  /** The manifest digest, sha256:<hex>. */
  digest: string;
  /** oci://registry/repository@sha256:<hex>: an spec.oci.url pinned to what was pushed. */
  reference: string;
  /** oci://registry/repository:tag as pushed. */
  tagReference: string;
  /** sha256:<hex> of the packed bundle (the content layer's digest). */
  checksum: string;
  /** Bytes of the packed bundle. */
  size: number;
  files: number;
}

export async function pushBundle(dir: string, ociUrl: string, opts: PushBundleOptions = {}): Promise<PushBundleResult> {
  const ref = parseOciUrl(ociUrl);
  if (!ref || ref.registry.includes('@')) {
    throw new InvalidSpecError(`${JSON.stringify(redactUrl(ociUrl))} is not oci://registry/repository[:tag]`);
  }
  if (ref.digest) {
    throw new InvalidSpecError(`${redactUrl(ociUrl)}: cannot push to a digest; name a tag (oci://registry/repository:tag)`);
  }
  const tag = ref.tag ?? 'latest';
  const auth = pushAuth(opts, ref.registry);
  const target: OrasTarget = {
    registry: ref.registry,
    repository: ref.repository,
    insecure: opts.insecure === true,
    ...(auth ? { auth, credentialSource: opts.dockerConfigJson !== undefined ? 'the docker config' : 'the given username/password' } : {}),
  };

  const work = await mkdtemp(join(tmpdir(), 'arena-push-'));
  try {
    const packed = await packDirectory(dir, join(work, BUNDLE_LAYER_TITLE), opts.limits);
    await writeFile(join(work, 'config.json'), '{}', { mode: 0o600 });
    const annotations: Record<string, string> = { [ANNOTATION_CREATED]: FIXED_CREATED };
    if (opts.sourceUrl) annotations[ANNOTATION_SOURCE] = redactUrl(opts.sourceUrl);
    if (opts.revision) annotations[ANNOTATION_REVISION] = opts.revision;
    const pushed = await withOras(
      target,
      { ...(opts.orasPath ? { binary: opts.orasPath } : {}), ...(opts.caFile ? { caFile: opts.caFile } : {}), timeoutMs: opts.timeoutMs ?? 300_000 },
      (session) =>
        session.push({
          tag,
          cwd: work,
          config: { path: 'config.json', mediaType: FLUX_CONFIG_MEDIA_TYPE },
          files: [{ path: BUNDLE_LAYER_TITLE, mediaType: FLUX_CONTENT_MEDIA_TYPE }],
          annotations,
        }),
    );
    const repo = `${ref.registry}/${ref.repository}`;
    return {
      digest: pushed.digest,
      reference: `oci://${repo}@${pushed.digest}`,
      tagReference: `oci://${repo}:${tag}`,
      checksum: packed.checksum,
      size: packed.size,
      files: packed.files,
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function pushAuth(opts: PushBundleOptions, registry: string): RegistryAuth | undefined {
  if (opts.dockerConfigJson !== undefined) {
    if (opts.username !== undefined || opts.password !== undefined) {
      throw new InvalidSpecError('give either username/password or a docker config, not both');
    }
    return registryAuthFromDockerConfig(opts.dockerConfigJson, registry);
  }
  if (opts.username !== undefined || opts.password !== undefined) {
    if (!opts.username || !opts.password) throw new InvalidSpecError('username and password must be given together');
    return { username: opts.username, password: opts.password };
  }
  return undefined;
}
