/**
 * resolveRevision (cheap: one round trip, no content) and fetchSource (content
 * into a fresh work directory on this worker), for every source type.
 */
import { Context } from '@temporalio/activity';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { gitRevision } from '../src/api/revision.js';
import { checkSpec, normalizeBundlePath } from '../src/api/spec-rules.js';
import type { ArenaSourceSpec } from '../src/api/schema.js';
import { InvalidSpecError } from '../src/errors.js';
import { readConfigMapBundle, writeConfigMapBundle } from '../src/sources/configmap.js';
import { bundleDirOf, fetchGitRef, resolveGitRef, type GitOptions } from '../src/sources/git.js';
import type { ActivityDeps } from './deps.js';
import type { FetchSourceInput, FetchSourceResult, ResolveRevisionInput, ResolveRevisionResult } from './types.js';

export function sourceActivities(deps: ActivityDeps) {
  function gitOptions(spec: ArenaSourceSpec): GitOptions {
    const checked = checkSpec(spec);
    if (!checked.ok) throw new InvalidSpecError(checked.problems.join('; '), checked.problems);
    return { binary: deps.gitBinary, timeoutMs: checked.checked.timeoutMs };
  }

  return {
    async resolveRevision({ source, spec }: ResolveRevisionInput): Promise<ResolveRevisionResult> {
      switch (spec.type) {
        case 'git': {
          const ref = await resolveGitRef(requireSection(spec, 'git'), gitOptions(spec));
          return { revision: gitRevision(ref.refName, ref.sha) };
        }
        case 'configmap': {
          const bundle = await readConfigMapBundle(deps.resources, source.namespace, requireSection(spec, 'configMap'));
          return { revision: bundle.revision };
        }
        default:
          throw new InvalidSpecError(`spec.type: "${spec.type}" sources are not supported by this worker yet`);
      }
    },

    async fetchSource({ source, spec }: FetchSourceInput): Promise<FetchSourceResult> {
      await mkdir(deps.workRoot, { recursive: true });
      const workDir = await mkdtemp(join(deps.workRoot, `${source.namespace}.${source.name}.`));
      const contentDir = join(workDir, 'content');
      switch (spec.type) {
        case 'git': {
          const git = requireSection(spec, 'git');
          const options = gitOptions(spec);
          const ref = await resolveGitRef(git, options);
          Context.current().heartbeat('resolved');
          const checkout = await fetchGitRef(git, ref, contentDir, options);
          return {
            workerQueue: deps.workerQueue,
            workDir,
            bundleDir: bundleDirOf(checkout.dir, normalizeBundlePath(git.path)),
            revision: checkout.revision,
          };
        }
        case 'configmap': {
          const configMap = requireSection(spec, 'configMap');
          const bundle = await readConfigMapBundle(deps.resources, source.namespace, configMap);
          await writeConfigMapBundle(bundle, contentDir, `ConfigMap ${source.namespace}/${configMap.name}`);
          return { workerQueue: deps.workerQueue, workDir, bundleDir: contentDir, revision: bundle.revision };
        }
        default:
          throw new InvalidSpecError(`spec.type: "${spec.type}" sources are not supported by this worker yet`);
      }
    },
  };
}

function requireSection<K extends 'git' | 'oci' | 'configMap'>(spec: ArenaSourceSpec, key: K): NonNullable<ArenaSourceSpec[K]> {
  const section = spec[key];
  if (!section) throw new InvalidSpecError(`spec.${key}: required when type is "${spec.type}"`);
  return section as NonNullable<ArenaSourceSpec[K]>;
}
