/**
 * Wakes the sources a push moved: one Temporal visibility query per push
 * (ArenaSourceRepository / ArenaSourceRef, kept current by the workflows), then a
 * `reconcile` signal to each. Never lists every source, and needs no Kubernetes access.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { SA_REF, SA_REPOSITORY } from '../api/search-attributes.js';
import { WORKFLOW_TYPE, reconcileSignal } from '../../workflows/definitions.js';
import type { Push } from './payloads.js';

/** Refs no push moves: commit- and digest-pinned sources. */
const PINNED = ['commit', 'digest'];

/** The visibility query for a push; undefined when nothing it names can be queried. */
export function pushQuery(push: Push): string | undefined {
  const repositories = push.repositories.filter(quotable);
  if (repositories.length === 0) return undefined;
  const refs = push.refs?.filter(quotable);
  if (refs && refs.length === 0) return undefined;
  return [
    `WorkflowType = '${WORKFLOW_TYPE}'`,
    `ExecutionStatus = 'Running'`,
    `${SA_REPOSITORY.name} IN (${repositories.map(quote).join(', ')})`,
    refs ? `${SA_REF.name} IN (${refs.map(quote).join(', ')})` : `${SA_REF.name} NOT IN (${PINNED.map(quote).join(', ')})`,
  ].join(' AND ');
}

/** Signals every source the pushes moved (each once); returns their workflow ids. */
export async function wakeSources(client: Client, pushes: Push[]): Promise<string[]> {
  const ids = new Set<string>();
  for (const push of pushes) {
    const query = pushQuery(push);
    if (!query) continue;
    for await (const wf of client.workflow.list({ query })) ids.add(wf.workflowId);
  }
  const woken: string[] = [];
  await Promise.all(
    [...ids].map(async (id) => {
      try {
        await client.workflow.getHandle(id).signal(reconcileSignal, {});
        woken.push(id);
      } catch (err) {
        // Finished between the query and the signal (deleted): nothing to wake.
        if (!(err instanceof WorkflowNotFoundError)) throw err;
      }
    }),
  );
  return woken.sort();
}

/**
 * Values go into the query as literals; a quote or backslash (legal in some URLs and
 * ref names, never seen in practice) is left out rather than escaped by guesswork.
 */
function quotable(value: string): boolean {
  return !/['"\\\n\r]/.test(value);
}

function quote(value: string): string {
  return `'${value}'`;
}
