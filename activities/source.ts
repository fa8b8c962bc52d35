/**
 * resolveRevision (cheap: one round trip, no content) and fetchSource (content
 * into a fresh work directory on this worker), for every source type.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { gitRevision } from '../src/api/revision.js';
import { archiveKey, archiveMemoFor, gitTreeKey } from '../src/bundle/archive-memo.js';
import { bundleValidationOf, checkSpec, normalizeBundlePath, type BundleValidationRequest } from '../src/api/spec-rules.js';
import type { ArenaSourceSpec, GitSource } from '../src/api/schema.js';
import { ignoreRulesOf, ignoresFile, pruneIgnored } from '../src/bundle/ignore.js';
import { AuthenticationFailedError, FetchFailedError, InvalidSpecError } from '../src/errors.js';
import { snapshotWorkspace, workspaceRevision, workspaceSourceDir } from '../src/sources/workspace.js';
import { contentPlaces } from './content.js';
import { beat } from './heartbeat.js';
import { ARCHIVE_FILE, writeMemoNote } from './work-dir.js';
import { readConfigMapBundle, writeConfigMapBundle } from '../src/sources/configmap.js';
import {
  bundleDirOf,
  fetchGitRef,
  fetchTargetOf,
  gitCacheFor,
  listingKey,
  pollListingMaxAgeMs,
  prepareGitAuth,
  resolveGitRef,
  seenCommit,
  semverTargetOf,
  SharedListings,
  type GitOptions,
  type ListingShare,
} from '../src/sources/git/index.js';
import type { FetchTarget } from '../src/sources/git/refs.js';
import { verifyGitRevision } from '../src/sources/git/verify.js';
import { loadSecret } from '../src/secrets/secret-ref.js';
import { fetchOciArtifact, ociContextFor, ociPickOf, resolveOciRevision, verifyOciArtifact } from '../src/sources/oci.js';
import type { ActivityDeps } from './deps.js';
import type { FetchSourceInput, FetchSourceResult, ResolveRevisionInput, ResolveRevisionResult } from './types.js';

export function sourceActivities(deps: ActivityDeps) {
  /** One per worker: the ls-remote answers its sources share (src/sources/git/shared-listings.ts). */
  const listings = new SharedListings();

  /**
   * Runs `fn` with git options that carry the credentials of spec.git.secretRef: the Secret
   * is loaded here, inside the activity (the workflow only knows its name), and the key
   * material prepared for git is removed afterwards, whatever happens. `share(poll)` gives what a
   * listing needs to be shared (keyed by these credentials): a poll takes a young answer, others a fresh one.
   */
  async function withGit<T>(
    namespace: string,
    spec: ArenaSourceSpec,
    fn: (git: GitSource, options: GitOptions, share: (poll: boolean) => ListingShare) => Promise<T>,
  ): Promise<T> {
    const git = requireSection(spec, 'git');
    const checked = checkSpec(spec);
    if (!checked.ok) throw new InvalidSpecError(checked.problems.join('; '), checked.problems);
    const options: GitOptions = { binary: deps.gitBinary, timeoutMs: checked.checked.timeoutMs };
    const secret = git.secretRef ? await loadSecret(deps.resources, namespace, git.secretRef) : undefined;
    const proxySecret = git.proxySecretRef ? await loadSecret(deps.resources, namespace, git.proxySecretRef) : undefined;
    const auth = await prepareGitAuth(git, secret, { tmpRoot: deps.workRoot, ...(proxySecret ? { proxySecret } : {}) });
    const share = (poll: boolean): ListingShare => ({
      listings,
      keyOf: (args) => listingKey(git.url, [secret, proxySecret], args),
      ...(poll ? { maxAgeMs: pollListingMaxAgeMs(checked.checked.intervalMs) } : {}),
    });
    try {
      return await fn(git, { ...options, env: { ...options.env, ...auth.env } }, share);
    } catch (err) {
      throw withCredentialHint(err, auth.credentials);
    } finally {
      await auth.cleanup();
    }
  }

  /** spec.git.verify on the checkout; a failure removes the work directory (nothing unverified stays). */
  async function verifyCheckout(
    namespace: string,
    git: GitSource,
    checkout: { dir: string; sha: string },
    target: FetchTarget,
    options: GitOptions,
    workDir: string,
  ): Promise<string> {
    const verify = git.verify!;
    try {
      const secret = await loadSecret(deps.resources, namespace, verify.secretRef);
      return await verifyGitRevision({ git: { ...git, verify }, dir: checkout.dir, sha: checkout.sha, target, secret, options, tmpRoot: deps.workRoot });
    } catch (err) {
      await rm(workDir, { recursive: true, force: true }).catch(() => undefined);
      throw err;
    }
  }

  const memo = archiveMemoFor(deps.workRoot);
  /** Takes the archive memoized for `tree` under `validation` into the work directory, with a note saying so. */
  async function takeMemoized(workDir: string, tree: string, validation: BundleValidationRequest): Promise<boolean> {
    const facts = await memo?.take(archiveKey(tree, validation), join(workDir, ARCHIVE_FILE));
    if (!facts) return false;
    await writeMemoNote(workDir, { tree, packed: { validation, facts } });
    return true;
  }

  const places = contentPlaces(deps);
  /** The directory a workspace source snapshots; only workers with the content volume can read it. */
  async function workspaceDir(source: { namespace: string }, spec: ArenaSourceSpec): Promise<string> {
    const ws = requireSection(spec, 'workspace');
    if (!deps.content) {
      throw new FetchFailedError('type "workspace" needs workers with the content volume (worker --content-root or ARENA_SOURCE_CONTENT_ROOT)', {
        retryable: false,
      });
    }
    return workspaceSourceDir(deps.content.root, { workspace: await places.workspaceOf(source.namespace), namespace: source.namespace }, ws.path);
  }

  return {
    async resolveRevision({ source, spec, current, poll }: ResolveRevisionInput): Promise<ResolveRevisionResult> {
      switch (spec.type) {
        case 'git': {
          const ref = await withGit(source.namespace, spec, (git, options, share) => resolveGitRef(git, options, share(poll === true)));
          return { revision: gitRevision(ref.refName, ref.sha), id: ref.sha };
        }
        case 'configmap': {
          const bundle = await readConfigMapBundle(deps.resources, source.namespace, requireSection(spec, 'configMap'));
          return { revision: bundle.revision };
        }
        case 'oci': {
          const ctx = ociContextFor(spec, source.namespace, deps, beat);
          // The stored artifact's revision lets a semver range stay one tag listing when its tag is unchanged.
          const { revision, digest } = await resolveOciRevision(requireSection(spec, 'oci'), ctx, current?.revision);
          return { revision, id: digest };
        }
        case 'workspace':
          return { revision: await workspaceRevision(await workspaceDir(source, spec), deps.packLimits, ignoreRulesOf(spec)) };
        default:
          throw new InvalidSpecError(`spec.type: "${spec.type}" sources are not supported by this worker yet`);
      }
    },

    async fetchSource({ source, spec, revision, id }: FetchSourceInput): Promise<FetchSourceResult> {
      await deps.statusSink
        .record(source, { type: 'Normal', reason: 'FetchStarted', message: `fetching revision '${revision}'` })
        .catch(() => undefined);
      await mkdir(deps.workRoot, { recursive: true });
      const workDir = await mkdtemp(join(deps.workRoot, `${source.namespace}.${source.name}.`));
      const contentDir = join(workDir, 'content');
      switch (spec.type) {
        case 'git': {
          const { git, checkout, verified } = await withGit(source.namespace, spec, async (git, options) => {
            // A branch, tag or name is resolved by the fetch itself, a semver range by the revision resolveRevision
            // reported; only "the default branch" (or a spec changed since) needs ls-remote first.
            const target = fetchTargetOf(git) ?? semverTargetOf(git, revision) ?? (await resolveGitRef(git, options));
            beat('resolved');
            const path = normalizeBundlePath(git.path);
            // One mirror per repository and Secret on this worker, shared by its sources (src/sources/git/cache.ts).
            const cache = gitCacheFor(join(deps.workRoot, 'git-cache'));
            const credentials = git.secretRef ? `${source.namespace}/${git.secretRef.name}` : '';
            // The commit resolveRevision saw, fetched by id (the branch may have moved since).
            const commit = seenCommit(target, { id, revision });
            // A tree this worker packed already (same repository and credentials, commit, path, rules): its
            // archive instead of a checkout (src/bundle/archive-memo.ts). Not for verify, which needs the repository.
            const tree = cache && commit && !git.verify ? gitTreeKey({ url: git.url, credentials, commit, path, ignore: ignoreRulesOf(spec), limits: deps.packLimits }) : undefined;
            const memoized = tree ? await takeMemoized(workDir, tree, bundleValidationOf(spec)) : false;
            if (memoized) return { git, checkout: { dir: contentDir, sha: commit!, revision: gitRevision(target.refName, commit!) }, verified: undefined };
            const checkout = cache
              ? await cache.checkout({ git, target, commit, credentials, dir: contentDir, path, options, ownRepository: git.verify !== undefined })
              : await fetchGitRef(git, target, contentDir, options, { path, commit });
            // Before anything is packed: an unverified revision never reaches the store.
            const verified = git.verify ? await verifyCheckout(source.namespace, git, checkout, target, options, workDir) : undefined;
            // Excluded files leave the checkout before packing (spec.ignore, .sourceignore: src/bundle/ignore.ts).
            await pruneIgnored(checkout.dir, path, ignoreRulesOf(spec));
            // The tree named for packBundle, which memoizes its archive (the commit checked out is the one named).
            if (tree && checkout.sha === commit) await writeMemoNote(workDir, { tree });
            return { git, checkout, verified };
          });
          return {
            workerQueue: deps.workerQueue,
            workDir,
            bundleDir: bundleDirOf(checkout.dir, normalizeBundlePath(git.path)),
            revision: checkout.revision,
            id: checkout.sha,
            ...(verified !== undefined ? { verified } : {}),
          };
        }
        case 'configmap': {
          const configMap = requireSection(spec, 'configMap');
          const bundle = await readConfigMapBundle(deps.resources, source.namespace, configMap);
          if (ignoresFile(spec.ignore, bundle.key)) {
            throw new InvalidSpecError(`spec.ignore excludes the ConfigMap key '${bundle.key}', the only file of the bundle; remove that pattern`);
          }
          await writeConfigMapBundle(bundle, contentDir, `ConfigMap ${source.namespace}/${configMap.name}`);
          return { workerQueue: deps.workerQueue, workDir, bundleDir: contentDir, revision: bundle.revision };
        }
        case 'oci': {
          const oci = requireSection(spec, 'oci');
          const ctx = ociContextFor(spec, source.namespace, deps, beat);
          // Pull exactly what resolveRevision saw (its id; without one, read back from the revision).
          const pick = ociPickOf(oci, revision, id) ?? (await resolveOciRevision(oci, ctx));
          // Verified before anything is pulled: unverified content never reaches the worker's disk.
          const verified = oci.verify
            ? await verifyOciArtifact(oci, pick.digest, ctx).catch(async (err: unknown) => {
                await rm(workDir, { recursive: true, force: true }).catch(() => undefined);
                throw err;
              })
            : undefined;
          await fetchOciArtifact(oci, pick.digest, contentDir, ctx, deps.packLimits);
          await pruneIgnored(contentDir, '', ignoreRulesOf(spec));
          return {
            workerQueue: deps.workerQueue,
            workDir,
            bundleDir: contentDir,
            revision: pick.revision,
            id: pick.digest,
            ...(verified !== undefined ? { verified } : {}),
          };
        }
        case 'workspace': {
          // A copy, so the bytes packed are the bytes hashed even if the directory is edited meanwhile.
          const revision = await snapshotWorkspace(await workspaceDir(source, spec), contentDir, deps.packLimits, ignoreRulesOf(spec));
          return { workerQueue: deps.workerQueue, workDir, bundleDir: contentDir, revision };
        }
        default:
          throw new InvalidSpecError(`spec.type: "${spec.type}" sources are not supported by this worker yet`);
      }
    },
  };
}

/** A refusal by the server names the Secret keys that were sent, so a person knows which value to fix. */
function withCredentialHint(err: unknown, credentials: string | undefined): unknown {
  if (!credentials || !(err instanceof AuthenticationFailedError) || !/^git: authentication to .* failed/.test(err.message)) return err;
  return new AuthenticationFailedError(`${err.message} (sent: ${credentials})`, { cause: err });
}

function requireSection<K extends 'git' | 'oci' | 'configMap' | 'workspace'>(spec: ArenaSourceSpec, key: K): NonNullable<ArenaSourceSpec[K]> {
  const section = spec[key];
  if (!section) throw new InvalidSpecError(`spec.${key}: required when type is "${spec.type}"`);
  return section as NonNullable<ArenaSourceSpec[K]>;
}
