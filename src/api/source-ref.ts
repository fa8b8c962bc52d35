/** Which ArenaSource: the name every layer (client, workflow, activities, status) passes around. */
export interface SourceRef {
  namespace: string;
  name: string;
}
