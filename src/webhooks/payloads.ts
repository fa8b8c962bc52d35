/**
 * What a webhook delivery says was pushed: repository keys (repository-key.ts)
 * and the ArenaSourceRef values of the sources it moved. One parser per sender;
 * each reads only the fields it needs, so unknown or extra fields never matter.
 */
import { gitRepositoryKey, ociRepositoryKey } from '../api/repository-key.js';

export interface Push {
  /** Normalised repository keys the push names (clone URL, SSH URL…). */
  repositories: string[];
  /** ArenaSourceRef values it moved; `undefined`: any ref of the repository (pinned ones excepted). */
  refs?: string[];
}

/** A delivery that pushed something, or why there is nothing to do (a ping, another event). */
export type Parsed = { pushes: Push[] } | { ignored: string };

export type Sender = 'github' | 'gitlab' | 'gitea' | 'generic' | 'registry';

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

export class BadPayloadError extends Error {}

export function parsePayload(sender: Sender, body: unknown, headers: Record<string, string | string[] | undefined>): Parsed {
  const b = obj(body);
  const header = (name: string) => str(headers[name]);
  switch (sender) {
    case 'github': {
      const event = header('x-github-event');
      if (event !== 'push') return { ignored: `GitHub event ${event ?? '(none)'} is not a push` };
      const repo = obj(b.repository);
      return gitPush([repo.clone_url, repo.ssh_url, repo.git_url, repo.html_url], b.ref, repo.default_branch);
    }
    case 'gitlab': {
      const kind = str(b.object_kind);
      if (kind !== 'push' && kind !== 'tag_push') return { ignored: `GitLab ${kind ?? header('x-gitlab-event') ?? 'event'} is not a push` };
      const project = obj(b.project);
      const repo = obj(b.repository);
      return gitPush(
        [project.git_http_url, project.git_ssh_url, project.web_url, repo.git_http_url, repo.git_ssh_url, repo.homepage],
        b.ref,
        project.default_branch,
      );
    }
    case 'gitea': {
      const event = header('x-gitea-event') ?? header('x-forgejo-event') ?? header('x-gogs-event');
      if (event !== undefined && event !== 'push') return { ignored: `Gitea event ${event} is not a push` };
      const repo = obj(b.repository);
      return gitPush([repo.clone_url, repo.ssh_url, repo.html_url], b.ref, repo.default_branch);
    }
    case 'generic':
      return genericPush(b);
    case 'registry':
      return registryPushes(b);
  }
}

/** A git push of `ref` to the repository the URLs name. Branches, tags; other refs (merge requests…) move no source. */
function gitPush(urls: unknown[], ref: unknown, defaultBranch: unknown): Parsed {
  const repositories = keys(urls.map((u) => (typeof u === 'string' ? gitRepositoryKey(u) : undefined)));
  if (repositories.length === 0) throw new BadPayloadError('the payload names no repository URL');
  const name = str(ref);
  if (!name) throw new BadPayloadError('the payload has no ref');
  const branch = /^refs\/heads\/(.+)$/.exec(name)?.[1];
  if (branch) {
    // A source on the default branch moves when that branch does; when the sender does not say which it is, wake it anyway.
    const followsDefault = str(defaultBranch) === undefined || defaultBranch === branch;
    return { pushes: [{ repositories, refs: [`branch:${branch}`, ...(followsDefault ? ['default'] : [])] }] };
  }
  const tag = /^refs\/tags\/(.+)$/.exec(name)?.[1];
  if (tag) return { pushes: [{ repositories, refs: [`tag:${tag}`] }] };
  return { ignored: `ref ${name} is neither a branch nor a tag` };
}

/**
 * Ours, for CI jobs and senders without a format of their own:
 * `{"repository": "<git URL>" | ["<git URL>", …], "ref": "refs/heads/main", "defaultBranch"?: "main"}`,
 * or an OCI push: `{"repository": "oci://registry/repository", "ref": "<tag>"}` (or the tag in the URL).
 */
function genericPush(b: Json): Parsed {
  const urls = (Array.isArray(b.repository) ? b.repository : [b.repository]).filter((u): u is string => typeof u === 'string');
  const oci = urls.filter((u) => u.startsWith('oci://'));
  if (oci.length === 0) return gitPush(urls, b.ref, b.defaultBranch);
  const pushes: Push[] = [];
  for (const url of oci) {
    const m = /^oci:\/\/([^/]+)\/([^:@]+)(?::([^@]+))?/.exec(url);
    const tag = str(b.ref) ?? m?.[3];
    if (!m?.[1] || !m[2]) throw new BadPayloadError(`${JSON.stringify(url)} is not oci://registry/repository[:tag]`);
    if (!tag) throw new BadPayloadError('an OCI push names its tag: "ref": "<tag>" or oci://registry/repository:<tag>');
    pushes.push({ repositories: [ociRepositoryKey(m[1], m[2])], refs: [`tag:${tag}`] });
  }
  return { pushes };
}

/** Manifests (not blobs): what a tag can point at. */
const MANIFEST = /manifest|image\.index|manifest\.list/i;

/**
 * CNCF distribution's notification envelope: `{"events": [{action, target: {repository, tag?,
 * mediaType}, request: {host}}]}`. A push of a tagged manifest wakes the sources on that tag; an
 * untagged manifest push (by digest) wakes every tag-following source of the repository.
 */
export function registryPushes(b: Json): Parsed {
  if (!Array.isArray(b.events)) throw new BadPayloadError('not a registry notification: no "events" array');
  const pushes: Push[] = [];
  for (const raw of b.events) {
    const event = obj(raw);
    const target = obj(event.target);
    const host = str(obj(event.request).host);
    const repository = str(target.repository);
    if (event.action !== 'push' || !host || !repository) continue;
    const tag = str(target.tag);
    if (!tag && !MANIFEST.test(str(target.mediaType) ?? '')) continue; // a blob upload moves no tag
    pushes.push({ repositories: [ociRepositoryKey(host, repository)], ...(tag ? { refs: [`tag:${tag}`] } : {}) });
  }
  return pushes.length > 0 ? { pushes } : { ignored: 'no manifest push in the notification' };
}

/** The ids of a registry envelope's events (each is delivered, and may be retried, on its own). */
export function registryEventIds(body: unknown): string[] {
  const events = obj(body).events;
  return Array.isArray(events) ? events.map((e) => str(obj(e).id)).filter((id): id is string => id !== undefined) : [];
}

function keys(values: Array<string | undefined>): string[] {
  return [...new Set(values.filter((v): v is string => v !== undefined))];
}
