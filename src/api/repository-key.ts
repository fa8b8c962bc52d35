/**
 * One spelling per repository, so a push webhook naming a repository finds every
 * source on it whatever form its spec uses: https://, http://, ssh://, scp-like
 * `git@host:org/repo`, with or without `.git`, a user, a default port or a
 * trailing slash. Pure: the workflow (search attributes) and the receiver share it.
 *
 * The whole key is lower-cased, the path too: GitHub, GitLab and Gitea treat
 * owner and repository names case-insensitively, and a spec may not use the
 * payload's spelling. Two repositories that differ only in case on a case-
 * sensitive server share a key; a push to one then also wakes the other's
 * sources, which costs them one unchanged (no-op) cycle.
 */
import type { ArenaSourceSpec } from './schema.js';
import { parseOciUrl } from './spec-rules.js';

const DEFAULT_PORTS: Record<string, string> = { http: '80', https: '443', ssh: '22', git: '9418' };
const SCP_LIKE = /^(?:[^@/\s]+@)?([^:/\s]+):(?!\/)(.+)$/;

/** `git:host[:port]/path`, or undefined when the text is not a repository URL. */
export function gitRepositoryKey(url: string): string | undefined {
  const text = url.trim();
  let host: string;
  let port = '';
  let path: string;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text)?.[1]?.toLowerCase();
  if (scheme) {
    let parsed: URL;
    try {
      parsed = new URL(text);
    } catch {
      return undefined;
    }
    host = parsed.hostname;
    port = parsed.port && parsed.port !== DEFAULT_PORTS[scheme] ? parsed.port : '';
    path = decodeURIComponent(parsed.pathname);
  } else {
    const m = SCP_LIKE.exec(text);
    if (!m?.[1] || !m[2]) return undefined;
    host = m[1];
    path = m[2];
  }
  const clean = path.replace(/\/+/g, '/').replace(/^\/|\/$/g, '').replace(/\.git$/i, '').replace(/\/$/, '');
  if (!host || !clean) return undefined;
  return `git:${host}${port ? `:${port}` : ''}/${clean}`.toLowerCase();
}

/** Registries known by several names. */
const REGISTRY_ALIASES: Record<string, string> = { 'index.docker.io': 'docker.io', 'registry-1.docker.io': 'docker.io' };

/** `oci:registry/repository` from a registry host and a repository name. */
export function ociRepositoryKey(registry: string, repository: string): string {
  const host = registry.toLowerCase();
  return `oci:${REGISTRY_ALIASES[host] ?? host}/${repository.replace(/^\/+|\/+$/g, '')}`.toLowerCase();
}

/**
 * What a push must name for this source to be woken: its repository key and its
 * ref (`branch:<name>`, `tag:<name>`, `default` for the remote's default branch).
 * A commit- or digest-pinned source gets `commit` / `digest`, which no push names.
 * Empty for sources no push can move (ConfigMap, workspace) or specs we cannot read.
 */
export function watchKeys(spec: ArenaSourceSpec): { repository: string; ref: string } {
  if (spec.type === 'git' && spec.git?.url) {
    const repository = gitRepositoryKey(spec.git.url);
    const ref = spec.git.ref ?? {};
    const which = ref.commit ? 'commit' : ref.tag ? `tag:${ref.tag}` : ref.branch ? `branch:${ref.branch}` : 'default';
    return repository ? { repository, ref: which } : { repository: '', ref: '' };
  }
  if (spec.type === 'oci' && spec.oci?.url) {
    const parsed = parseOciUrl(spec.oci.url);
    if (!parsed) return { repository: '', ref: '' };
    return { repository: ociRepositoryKey(parsed.registry, parsed.repository), ref: parsed.digest ? 'digest' : `tag:${parsed.tag}` };
  }
  return { repository: '', ref: '' };
}
