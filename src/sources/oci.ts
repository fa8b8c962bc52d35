/**
 * OCI sources: `oci://registry/repository:tag` or `…@sha256:<hex>`.
 *
 * resolveOciRevision asks the registry which manifest the reference names (one
 * HEAD, nothing pulled) and formats the revision as the specification says:
 * `tag@sha256:<hex>`, or `@sha256:<hex>` for a digest URL.
 *
 * fetchOciArtifact pulls that manifest BY DIGEST and writes the bundle into a
 * directory. Two layouts are accepted:
 *   (a) one tar+gzip content layer (Flux's application/vnd.cncf.flux.content.v1.tar+gzip,
 *       application/vnd.oci.image.layer.v1.tar+gzip, application/tar+gzip…),
 *       extracted safely (src/oci/extract.ts);
 *   (b) plain ORAS file artifacts: one layer per file, named by its
 *       org.opencontainers.image.title annotation (a safe relative path); a layer
 *       oras pushed from a directory (io.deis.oras.content.unpack) is extracted
 *       below its title.
 * Every blob is verified against its descriptor (sha256 and size) before use,
 * and the pack limits are enforced before download (descriptor sizes) and
 * while writing (bytes actually written).
 *
 * Credentials come from the Secret named by spec.oci.secretRef, resolved here,
 * inside the activity, and reach oras only through a private config file.
 */
import { mkdir, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ociRevision, revisionDigest } from '../api/revision.js';
import { filterProblem, highestTag, rangeProblem, tagInRange } from '../api/semver-range.js';
import { checkSpec, parseOciUrl, redactUrl, type OciReference } from '../api/spec-rules.js';
import type { ArenaSourceSpec, OciSource } from '../api/schema.js';
import { DEFAULT_PACK_LIMITS, type PackLimits } from '../bundle/pack.js';
import { ArtifactTooLargeError, FetchFailedError, InvalidSpecError, SecretNotFoundError, UnsafeContentError, VerificationFailedError } from '../errors.js';
import { COSIGN_KEY_SUFFIX, MAX_PAYLOAD_BYTES, checkPayload, cosignKeys, refusal, signatureLayers, signatureTag, type PayloadVerdict } from '../oci/cosign.js';
import { trustedKeys } from '../secrets/trusted-keys.js';
import { proxyFromSecret } from '../secrets/proxy.js';
import { TLS_SECRET_KEYS, tlsFromSecret } from '../secrets/tls.js';
import { registryAuthFromSecret } from '../oci/credentials.js';
import {
  ensureDirs,
  extractTarGz,
  maxTarBytes,
  newBudget,
  safeRelativePath,
  tooManyBytes,
  tooManyEntries,
  type ExtractBudget,
} from '../oci/extract.js';
import { withOras, type OrasOptions, type OrasTarget, type RegistryAuth } from '../oci/oras.js';
import type { ResourceReader } from '../resources/types.js';
import { loadSecret } from '../secrets/secret-ref.js';

export interface OciContext {
  /** Namespace of the ArenaSource: where its secretRef lives. */
  namespace: string;
  resources: Pick<ResourceReader, 'getSecret'>;
  /** Worker settings: oras binary, extra CA file. */
  oras?: OrasOptions;
  /** Budget for all registry calls of one activity (spec.timeout). */
  timeoutMs: number;
  /** Called between blobs (an activity heartbeat). */
  heartbeat?: (detail: string) => void;
}

export interface OciRevision {
  revision: string;
  /** The manifest digest, sha256:<hex>. */
  digest: string;
}

export type OciLayout = 'tar' | 'files';

export interface OciFetchResult {
  digest: string;
  layout: OciLayout;
  /** Entries written (files, directories, symlinks). */
  entries: number;
  /** Regular-file bytes written. */
  bytes: number;
}

/** Media types of a layer that holds the whole bundle as a tar+gzip. */
export const TAR_GZIP_MEDIA_TYPES: readonly string[] = [
  'application/vnd.cncf.flux.content.v1.tar+gzip',
  'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.docker.image.rootfs.diff.tar.gzip',
  'application/tar+gzip',
  'application/x-gtar',
  'application/gzip',
];
export const TITLE_ANNOTATION = 'org.opencontainers.image.title';
const ORAS_UNPACK_ANNOTATION = 'io.deis.oras.content.unpack';
const INDEX_MEDIA_TYPES = ['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json'];
const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** The context an activity passes: spec.timeout, the worker's resources and oras settings. */
export function ociContextFor(
  spec: ArenaSourceSpec,
  namespace: string,
  deps: { resources: ResourceReader; oras?: OrasOptions },
  heartbeat?: (detail: string) => void,
): OciContext {
  const checked = checkSpec(spec);
  if (!checked.ok) throw new InvalidSpecError(checked.problems.join('; '), checked.problems);
  return {
    namespace,
    resources: deps.resources,
    timeoutMs: checked.checked.timeoutMs,
    ...(deps.oras ? { oras: deps.oras } : {}),
    ...(heartbeat ? { heartbeat } : {}),
  };
}

/** The registry, repository and tag/digest of spec.oci.url, or InvalidSpecError. */
export function parseOciSource(oci: OciSource): OciReference {
  const ref = typeof oci?.url === 'string' ? parseOciUrl(oci.url) : undefined;
  if (!ref || ref.registry.includes('@')) {
    throw new InvalidSpecError(
      `spec.oci.url: ${JSON.stringify(redactUrl(String(oci?.url)))} is not oci://registry/repository:tag or oci://registry/repository@sha256:<digest>`,
    );
  }
  return ref;
}

/** What spec.oci selects: a digest, a tag (from spec.oci.ref or the URL), or the highest tag in a semver range. */
export type OciSelector =
  | { kind: 'digest'; digest: string; tag?: string | undefined }
  | { kind: 'tag'; tag: string }
  | { kind: 'semver'; range: string; filter?: string | undefined };

export function ociSelectorOf(oci: OciSource): OciSelector {
  const ref = parseOciSource(oci);
  if (oci.ref?.digest) return { kind: 'digest', digest: oci.ref.digest };
  if (oci.ref?.semver) return { kind: 'semver', range: oci.ref.semver, filter: oci.ref.semverFilter };
  if (oci.ref?.tag) return { kind: 'tag', tag: oci.ref.tag };
  if (ref.digest) return { kind: 'digest', digest: ref.digest, tag: ref.tag };
  return { kind: 'tag', tag: ref.tag ?? 'latest' };
}

/**
 * Which digest does the spec name now? A tag or digest: one HEAD on the manifest.
 * A semver range: one tag listing, then a HEAD on the chosen tag — unless it is the
 * tag of `current` (the stored artifact's revision), whose digest is taken as is:
 * a released version is not re-pushed, and a no-op cycle stays one round trip.
 */
export async function resolveOciRevision(oci: OciSource, ctx: OciContext, current?: string): Promise<OciRevision> {
  const ref = parseOciSource(oci);
  const selector = ociSelectorOf(oci);
  const target = await ociTarget(oci, ref, ctx);
  return withOras(target, orasOptions(ctx), async (s) => {
    if (selector.kind === 'digest') {
      const digest = await s.resolve(selector.digest);
      if (digest !== selector.digest) {
        throw new FetchFailedError(`oci: ${ref.registry}/${ref.repository}@${selector.digest} resolved to ${digest}`, { retryable: false });
      }
      return { revision: ociRevision(selector.tag, digest), digest };
    }
    let tag = selector.kind === 'tag' ? selector.tag : undefined;
    if (selector.kind === 'semver') {
      const problem = rangeProblem('spec.oci.ref.semver', selector.range) ?? (selector.filter !== undefined ? filterProblem('spec.oci.ref.semverFilter', selector.filter) : undefined);
      if (problem) throw new InvalidSpecError(problem);
      const tags = await s.tags();
      tag = highestTag(tags, selector.range, selector.filter);
      if (!tag) {
        const filtered = selector.filter !== undefined ? ` and filter /${selector.filter}/` : '';
        throw new FetchFailedError(
          `oci: no tag of ${ref.registry}/${ref.repository} matches semver range '${selector.range}'${filtered} (${tags.length} tags listed)`,
          { retryable: false },
        );
      }
      const known = current !== undefined && current.startsWith(`${tag}@`) ? revisionDigest(current) : undefined;
      if (known && DIGEST.test(known)) return { revision: current!, digest: known };
    }
    const digest = await s.resolve(tag!);
    return { revision: ociRevision(tag, digest), digest };
  });
}

/**
 * What a fetch pulls for the revision resolveRevision reported: its digest and the
 * tag it names, when that revision still answers the spec (the spec's digest, its tag,
 * or a tag inside its semver range); undefined otherwise (resolve again).
 */
export function ociPickOf(oci: OciSource, revision: string | undefined, id?: string): OciRevision | undefined {
  const selector = ociSelectorOf(oci);
  if (selector.kind === 'digest') return { revision: ociRevision(selector.tag, selector.digest), digest: selector.digest };
  const at = revision?.lastIndexOf('@') ?? -1;
  if (!revision || at < 0) return undefined;
  const tag = revision.slice(0, at);
  const digest = id ?? revision.slice(at + 1);
  if (!DIGEST.test(digest) || revision.slice(at + 1) !== digest) return undefined;
  const matches = selector.kind === 'tag' ? tag === selector.tag : tagInRange(tag, selector.range, selector.filter);
  return matches ? { revision, digest } : undefined;
}

/** The revision a fetch of `digest` produced, for a tag or digest spec (a semver spec's tag comes from ociPickOf). */
export function ociRevisionFor(oci: OciSource, digest: string): string {
  const selector = ociSelectorOf(oci);
  return ociRevision(selector.kind === 'semver' ? undefined : selector.tag, digest);
}

/**
 * The digest to pull for a revision resolveRevision reported: its digest when
 * it belongs to this spec's tag (or is this spec's pinned digest), else undefined
 * (resolve again: the spec changed in between).
 */
export function digestOfRevision(oci: OciSource, revision: string | undefined): string | undefined {
  return ociPickOf(oci, revision)?.digest;
}

/**
 * Pulls the manifest `digest` names and writes the bundle into `dir` (created;
 * must be new or empty). On failure `dir` is removed: no half-extracted (or
 * hostile) content is left behind.
 */
export async function fetchOciArtifact(
  oci: OciSource,
  digest: string,
  dir: string,
  ctx: OciContext,
  limits?: Partial<PackLimits>,
): Promise<OciFetchResult> {
  if (!DIGEST.test(digest)) throw new InvalidSpecError(`oci: "${digest}" is not a sha256 digest`);
  const lim: PackLimits = {
    maxFiles: limits?.maxFiles ?? DEFAULT_PACK_LIMITS.maxFiles,
    maxBytes: limits?.maxBytes ?? DEFAULT_PACK_LIMITS.maxBytes,
  };
  const ref = parseOciSource(oci);
  const target = await ociTarget(oci, ref, ctx);
  const where = `${ref.registry}/${ref.repository}@${digest}`;
  await mkdir(dir, { recursive: true });
  // Blobs are downloaded next to `dir`, never into it (they are not bundle content).
  const staging = await mkdtemp(join(dirname(dir), '.oci-blobs-'));
  try {
    return await withOras(target, orasOptions(ctx), async (session) => {
      const manifest = parseManifest(await session.fetchManifest(digest), where);
      const plan = planLayers(manifest, lim, where);
      const budget = newBudget(lim);
      for (const [i, layer] of plan.layers.entries()) {
        const blob = join(staging, `${i}-${layer.digest.slice(7, 23)}`);
        await session.fetchBlob(layer.digest, blob, layer.size);
        ctx.heartbeat?.(`blob ${i + 1}/${plan.layers.length}`);
        const what = `layer ${layer.digest} of ${where}`;
        if (plan.layout === 'tar') {
          await extractTarGz(blob, dir, budget, { what });
        } else if (layer.unpack) {
          await extractTarGz(blob, dir, budget, { what, requirePrefix: layer.title as string });
        } else {
          await placeFile(blob, dir, layer.title as string, layer.size, budget, what);
        }
        await rm(blob, { force: true });
      }
      return { digest, layout: plan.layout, entries: budget.entries, bytes: budget.bytes };
    });
  } catch (err) {
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/**
 * spec.oci.verify (provider cosign): the manifest `digest` must carry a cosign
 * signature by a key of the verify Secret (src/oci/cosign.ts). Checked before any
 * content is pulled; returns what was verified, or throws VerificationFailedError.
 */
export async function verifyOciArtifact(oci: OciSource, digest: string, ctx: OciContext): Promise<string> {
  const verify = oci.verify;
  if (!verify) throw new InvalidSpecError('spec.oci.verify: not set');
  const where = `Secret ${ctx.namespace}/${verify.secretRef.name}`;
  const keys = cosignKeys(trustedKeys(await loadSecret(ctx.resources, ctx.namespace, verify.secretRef), [COSIGN_KEY_SUFFIX]), where);
  const ref = parseOciSource(oci);
  const target = await ociTarget(oci, ref, ctx);
  const repo = `${ref.registry}/${ref.repository}`;
  const staging = await mkdtemp(join(tmpdir(), 'arena-cosign-'));
  try {
    return await withOras(target, orasOptions(ctx), async (session) => {
      const tag = signatureTag(digest);
      let signatures: string;
      try {
        signatures = await session.resolve(tag);
      } catch (err) {
        if (err instanceof FetchFailedError && !err.retryable && /not found/i.test(err.message)) {
          throw new VerificationFailedError(`artifact ${digest} is not signed: ${repo} has no cosign signature tag ${tag} (cosign sign --key cosign.key ${repo}@${digest})`);
        }
        throw err;
      }
      const layers = signatureLayers(await session.fetchManifest(signatures));
      if (layers.length === 0) throw new VerificationFailedError(`artifact ${digest} is not signed: ${repo}:${tag} holds no cosign signatures`);
      const verdicts: PayloadVerdict[] = [];
      for (const [i, layer] of layers.slice(0, 32).entries()) {
        if (layer.size > MAX_PAYLOAD_BYTES) continue;
        const file = join(staging, `payload-${i}`);
        await session.fetchBlob(layer.digest, file, layer.size);
        const verdict = checkPayload(await readFile(file), layer.signature, digest, keys);
        if (verdict.ok) return `artifact ${digest} has a good cosign signature by key '${verdict.key}' of ${where}`;
        verdicts.push(verdict);
      }
      throw refusal(digest, verdicts, where);
    });
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** Credentials for the URL's registry from spec.oci.secretRef (none without one). */
export async function loadRegistryAuth(oci: OciSource, registry: string, ctx: Pick<OciContext, 'namespace' | 'resources'>): Promise<RegistryAuth | undefined> {
  if (!oci.secretRef) return undefined;
  const secret = await loadSecret(ctx.resources, ctx.namespace, oci.secretRef);
  return registryAuthFromSecret(secret, registry);
}

async function ociTarget(oci: OciSource, ref: OciReference, ctx: OciContext): Promise<OrasTarget> {
  const auth = await loadRegistryAuth(oci, ref.registry, ctx);
  const transport = await loadOciTransport(oci, ctx);
  return {
    registry: ref.registry,
    repository: ref.repository,
    insecure: oci.insecure === true,
    ...(auth ? { auth, credentialSource: `Secret ${ctx.namespace}/${oci.secretRef?.name}` } : {}),
    ...transport,
  };
}

/** TLS material (spec.oci.certSecretRef) and proxy (spec.oci.proxySecretRef), resolved here in the activity. */
export async function loadOciTransport(
  oci: OciSource,
  ctx: Pick<OciContext, 'namespace' | 'resources'>,
): Promise<Pick<OrasTarget, 'tls' | 'tlsSource' | 'proxy'>> {
  const out: Pick<OrasTarget, 'tls' | 'tlsSource' | 'proxy'> = {};
  if (oci.certSecretRef) {
    const secret = await loadSecret(ctx.resources, ctx.namespace, oci.certSecretRef);
    const tls = tlsFromSecret(secret);
    if (!tls) {
      throw new SecretNotFoundError(
        `Secret ${ctx.namespace}/${oci.certSecretRef.name} (spec.oci.certSecretRef) has none of the keys '${TLS_SECRET_KEYS.ca}', '${TLS_SECRET_KEYS.cert}'/'${TLS_SECRET_KEYS.key}'`,
      );
    }
    out.tls = tls;
    out.tlsSource = `Secret ${ctx.namespace}/${oci.certSecretRef.name}`;
  }
  if (oci.proxySecretRef) out.proxy = proxyFromSecret(await loadSecret(ctx.resources, ctx.namespace, oci.proxySecretRef), 'spec.oci.proxySecretRef');
  return out;
}

function orasOptions(ctx: OciContext): OrasOptions {
  return { ...(ctx.oras ?? {}), timeoutMs: ctx.timeoutMs };
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations: Record<string, string>;
}

interface Manifest {
  mediaType?: string;
  layers: Descriptor[];
}

function parseManifest(bytes: Buffer, where: string): Manifest {
  const bad = (why: string) => new FetchFailedError(`oci: ${where}: ${why}`, { retryable: false });
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw bad('the manifest is not JSON');
  }
  if (typeof raw !== 'object' || raw === null) throw bad('the manifest is not a JSON object');
  const m = raw as { mediaType?: unknown; schemaVersion?: unknown; manifests?: unknown; layers?: unknown };
  const mediaType = typeof m.mediaType === 'string' ? m.mediaType : undefined;
  if ((mediaType && INDEX_MEDIA_TYPES.includes(mediaType)) || Array.isArray(m.manifests)) {
    throw bad('is an image index (several manifests, e.g. per platform); point spec.oci.url at a single artifact');
  }
  if (m.schemaVersion !== 2 || !Array.isArray(m.layers)) throw bad(`is not an OCI image manifest (media type ${mediaType ?? 'unset'})`);
  const layers = m.layers.map((l, i): Descriptor => {
    const d = l as { mediaType?: unknown; digest?: unknown; size?: unknown; annotations?: unknown };
    if (typeof d?.digest !== 'string' || !DIGEST.test(d.digest)) {
      throw bad(`layer ${i} has digest ${JSON.stringify(d?.digest)}; only sha256 digests are supported`);
    }
    if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) throw bad(`layer ${i} has no valid size`);
    const annotations: Record<string, string> = {};
    if (typeof d.annotations === 'object' && d.annotations !== null) {
      for (const [k, v] of Object.entries(d.annotations)) if (typeof v === 'string') annotations[k] = v;
    }
    return { mediaType: typeof d.mediaType === 'string' ? d.mediaType : '', digest: d.digest, size: d.size, annotations };
  });
  return { ...(mediaType ? { mediaType } : {}), layers };
}

interface PlannedLayer {
  digest: string;
  size: number;
  title?: string;
  unpack: boolean;
}

/** Which layout the manifest uses, and the limits that can be checked before any download. */
function planLayers(manifest: Manifest, lim: PackLimits, where: string): { layout: OciLayout; layers: PlannedLayer[] } {
  const layers = manifest.layers;
  if (layers.length === 0) throw new FetchFailedError(`oci: ${where} has no layers: there is no bundle in it`, { retryable: false });
  const isTarGz = (d: Descriptor) => TAR_GZIP_MEDIA_TYPES.includes(d.mediaType.split(';')[0]?.trim() ?? '');
  const tarCap = maxTarBytes(lim);

  // (a) one tar+gzip layer holds the bundle.
  const only = layers.length === 1 ? layers[0] : undefined;
  if (only && isTarGz(only) && only.annotations[ORAS_UNPACK_ANNOTATION] !== 'true') {
    if (only.size > tarCap) {
      throw new ArtifactTooLargeError(`oci: ${where}: the content layer is ${only.size} bytes compressed, more than the limits allow (${lim.maxBytes} bytes unpacked)`);
    }
    return { layout: 'tar', layers: [{ digest: only.digest, size: only.size, unpack: false }] };
  }

  // (b) ORAS files: one titled layer per file.
  if (layers.length > lim.maxFiles) throw tooManyEntries(lim, `oci: ${where}`);
  const titles = new Set<string>();
  let declared = 0;
  const planned = layers.map((d): PlannedLayer => {
    const rawTitle = d.annotations[TITLE_ANNOTATION];
    if (rawTitle === undefined || rawTitle === '') {
      throw new FetchFailedError(
        `oci: ${where}: layer ${d.digest} (${d.mediaType || 'no media type'}) has no ${TITLE_ANNOTATION} annotation, so it has no file name; ` +
          'push a single tar+gzip layer, or files with oras push',
        { retryable: false },
      );
    }
    const title = safeRelativePath(rawTitle, `oci: ${where}: layer title`);
    if (title === '') throw new UnsafeContentError(`oci: ${where}: layer ${d.digest} has the title ${JSON.stringify(rawTitle)}, which names no file`);
    if (titles.has(title)) throw new UnsafeContentError(`oci: ${where}: two layers are titled "${title}"`);
    titles.add(title);
    const unpack = d.annotations[ORAS_UNPACK_ANNOTATION] === 'true';
    if (unpack && d.size > tarCap) {
      throw new ArtifactTooLargeError(`oci: ${where}: layer "${title}" is ${d.size} bytes compressed, more than the limits allow`);
    }
    if (!unpack) {
      declared += d.size;
      if (declared > lim.maxBytes) throw tooManyBytes(lim, declared, `oci: ${where}`);
    }
    return { digest: d.digest, size: d.size, title, unpack };
  });
  return { layout: 'files', layers: planned };
}

/** Moves a verified blob to dir/<title>. */
async function placeFile(blob: string, dir: string, title: string, size: number, budget: ExtractBudget, what: string): Promise<void> {
  const parts = title.split('/');
  for (let i = 1; i < parts.length; i++) {
    const kind = budget.kinds.get(parts.slice(0, i).join('/'));
    if (kind !== undefined && kind !== 'dir') throw new UnsafeContentError(`${what}: "${title}" would be written below the ${kind} "${parts.slice(0, i).join('/')}"`);
  }
  if (budget.kinds.has(title)) throw new UnsafeContentError(`${what}: "${title}" appears more than once`);
  budget.entries += 1;
  if (budget.entries > budget.limits.maxFiles) throw tooManyEntries(budget.limits, what);
  budget.bytes += size;
  if (budget.bytes > budget.limits.maxBytes) throw tooManyBytes(budget.limits, budget.bytes, what);
  await ensureDirs(dir, parts.slice(0, -1), budget, what);
  budget.kinds.set(title, 'file');
  await rename(blob, join(dir, ...parts));
}
