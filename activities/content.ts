/**
 * The content volume as activities see it: from a source and its target to a
 * place on the volume (the namespace's workspace label is read here, in the
 * activity, never carried through history).
 */
import type { ContentLocation } from '../src/content/layout.js';
import { WorkspaceNames } from '../src/content/workspace-name.js';
import type { ActivityDeps } from './deps.js';
import type { SourceRef } from './types.js';

export function contentPlaces(deps: Pick<ActivityDeps, 'resources'>) {
  const workspaces = new WorkspaceNames(deps.resources);
  return {
    workspaceOf: (namespace: string) => workspaces.of(namespace),
    async locate(source: SourceRef, targetPath: string): Promise<ContentLocation> {
      return { workspace: await workspaces.of(source.namespace), namespace: source.namespace, targetPath };
    },
  };
}
