/**
 * The content volume as activities see it: from a source and its target to a
 * place on the volume (the namespace's workspace label is read here, in the
 * activity, never carried through history).
 */
import type { ContentLocation } from '../src/content/layout.js';
import { WorkspaceNames } from '../src/content/workspace-name.js';
import type { ActivityDeps } from './deps.js';
import type { SourceRef } from './types.js';

/** One per worker (keyed by its resource reader), so every activity shares the label cache. */
const shared = new WeakMap<object, ReturnType<typeof makePlaces>>();

export function contentPlaces(deps: Pick<ActivityDeps, 'resources'>) {
  let places = shared.get(deps.resources);
  if (!places) shared.set(deps.resources, (places = makePlaces(deps)));
  return places;
}

function makePlaces(deps: Pick<ActivityDeps, 'resources'>) {
  const workspaces = new WorkspaceNames(deps.resources);
  return {
    workspaceOf: (namespace: string) => workspaces.of(namespace),
    async locate(source: SourceRef, targetPath: string, workspace?: string): Promise<ContentLocation> {
      return { workspace: workspace ?? (await workspaces.of(source.namespace)), namespace: source.namespace, targetPath };
    },
  };
}
