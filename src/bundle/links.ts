/**
 * Symlink containment, shared by packing (git checkouts, ConfigMaps) and OCI
 * extraction. A purely lexical check is not enough ("a -> up/.." escapes when
 * "up -> ../.."), so the target is resolved component by component, following
 * the other links in the tree. Dangling links are fine if they stay inside.
 */
import { lstat, readlink } from 'node:fs/promises';
import path from 'node:path';
import { UnsafeContentError } from '../errors.js';

const MAX_LINK_HOPS = 40;

export interface LinkCheckLabel {
  /** Prefix for messages, e.g. "layer sha256:… of host/repo". */
  what?: string;
  /** What the link must stay inside: "bundle" or "artifact". */
  scope: string;
}

export async function assertLinkInside(absRoot: string, linkRel: string, target: string, label: LinkCheckLabel): Promise<void> {
  const unsafe = (why: string) =>
    new UnsafeContentError(
      `${label.what ? `${label.what}: ` : ''}symlink "${linkRel}" -> "${target}" ${why}; only links that stay inside the ${label.scope} are allowed`,
    );
  if (path.isAbsolute(target) || path.win32.isAbsolute(target)) throw unsafe('is absolute');

  const cur = linkRel.split('/').slice(0, -1); // the link's directory: real, since the walk never follows links
  const todo = target.split('/');
  let hops = 0;
  let exists = true; // once a component is missing, the rest is purely lexical
  while (todo.length > 0) {
    const part = todo.shift() as string;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (cur.length === 0) throw unsafe(`resolves outside the ${label.scope}`);
      cur.pop();
      continue;
    }
    const candidate = [...cur, part];
    if (exists) {
      const st = await lstat(path.join(absRoot, ...candidate)).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return null;
        throw err;
      });
      if (st === null) {
        exists = false;
      } else if (st.isSymbolicLink()) {
        if (++hops > MAX_LINK_HOPS) throw unsafe('does not resolve (too many levels of symbolic links)');
        const next = await readlink(path.join(absRoot, ...candidate));
        if (path.isAbsolute(next)) throw unsafe(`resolves through an absolute link "${candidate.join('/')}" -> "${next}"`);
        todo.unshift(...next.split('/'));
        continue; // cur stays at the link's directory
      }
    }
    cur.push(part);
  }
}
