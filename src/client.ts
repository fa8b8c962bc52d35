/**
 * Temporal client construction and the operations every front end (CLI, dev
 * mode, controller, tests) performs on sources, in one place.
 */
import { Client, WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import type { SourceRef } from './api/source-ref.js';
import type { ArenaSource } from './api/schema.js';
import { identityAttributes, stateAttributes, watchAttributes } from './api/search-attributes.js';
import { searchAttributesRegistered, watchAttributesRegistered } from './search-attributes-setup.js';
import {
  WORKFLOW_TYPE,
  countersQuery,
  deleteSignal,
  reconcileSignal,
  resumeSignal,
  sourceQuery,
  suspendSignal,
  updateSpecSignal,
  workflowIdFor,
  type CycleCounters,
  type SourceWorkflowInput,
  type WorkflowTuning,
} from '../workflows/definitions.js';

/** Clients are built in src/temporal/connection.ts (env config, TLS, API key, errors). */
export { connectClient } from './temporal/connection.js';
export type { TemporalSettings as ClientConfig } from './temporal/settings.js';

export function refOf(source: ArenaSource): SourceRef {
  return { namespace: source.metadata.namespace ?? 'default', name: source.metadata.name };
}

/**
 * Starts the source's workflow, or hands the running one the new spec. Safe to
 * call any number of times with the same object (signal-with-start).
 */
export async function applySource(
  client: Client,
  taskQueue: string,
  source: ArenaSource,
  tuning?: WorkflowTuning,
): Promise<WorkflowHandle> {
  const ref = refOf(source);
  const input: SourceWorkflowInput = {
    source: ref,
    spec: source.spec,
    ...(source.metadata.generation !== undefined ? { generation: source.metadata.generation } : {}),
    metadata: {
      ...(source.metadata.uid ? { uid: source.metadata.uid } : {}),
      ...(source.metadata.creationTimestamp ? { creationTimestamp: source.metadata.creationTimestamp } : {}),
      ...(source.metadata.labels ? { labels: source.metadata.labels } : {}),
    },
    ...(tuning ? { tuning } : {}),
  };
  const searchable = await searchAttributesRegistered(client);
  if (searchable) input.searchAttributes = true;
  // Also told to a running workflow (in updateSpec), which may have started before they were registered.
  const watchable = searchable && (await watchAttributesRegistered(client));
  if (watchable) input.watchAttributes = true;
  const attributes = [...identityAttributes(ref, source.spec), ...stateAttributes({}), ...(watchable ? watchAttributes(source.spec) : [])];
  return client.workflow.signalWithStart(WORKFLOW_TYPE, {
    workflowId: workflowIdFor(ref),
    taskQueue,
    args: [input],
    ...(searchable ? { typedSearchAttributes: attributes } : {}),
    signal: updateSpecSignal,
    signalArgs: [
      {
        spec: source.spec,
        ...(input.generation !== undefined ? { generation: input.generation } : {}),
        ...(watchable ? { watchAttributes: true } : {}),
      },
    ],
  });
}

export function sourceHandle(client: Client, ref: SourceRef): WorkflowHandle {
  return client.workflow.getHandle(workflowIdFor(ref));
}

export async function getSource(client: Client, ref: SourceRef): Promise<ArenaSource> {
  return sourceHandle(client, ref).query(sourceQuery);
}

export async function getCounters(client: Client, ref: SourceRef): Promise<CycleCounters> {
  return sourceHandle(client, ref).query(countersQuery);
}

/** Running sources, optionally in one namespace, sorted by namespace/name. */
export async function listSourceRefs(client: Client, namespace?: string): Promise<SourceRef[]> {
  const refs: SourceRef[] = [];
  const query = `WorkflowType = '${WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'`;
  for await (const wf of client.workflow.list({ query })) {
    const m = /^arena-source\/([^/]+)\/([^/]+)$/.exec(wf.workflowId);
    if (!m?.[1] || !m[2]) continue;
    if (namespace && m[1] !== namespace) continue;
    refs.push({ namespace: m[1], name: m[2] });
  }
  return refs.sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
}

export async function suspendSource(client: Client, ref: SourceRef): Promise<void> {
  await sourceHandle(client, ref).signal(suspendSignal);
}

export async function resumeSource(client: Client, ref: SourceRef): Promise<void> {
  await sourceHandle(client, ref).signal(resumeSignal);
}

export async function reconcileSource(client: Client, ref: SourceRef, requestedAt?: string): Promise<void> {
  await sourceHandle(client, ref).signal(reconcileSignal, requestedAt ? { requestedAt } : {});
}

/** Asks the workflow to remove the source's artifacts and finish; waits up to `timeoutMs`. */
export async function deleteSource(client: Client, ref: SourceRef, timeoutMs = 60_000): Promise<boolean> {
  const handle = sourceHandle(client, ref);
  try {
    await handle.signal(deleteSignal);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`source ${ref.namespace}/${ref.name} did not finish deleting within ${timeoutMs / 1000}s (is a worker running?)`)), timeoutMs);
  });
  try {
    await Promise.race([handle.result(), timeout]);
  } finally {
    clearTimeout(timer);
  }
  return true;
}

export { WorkflowNotFoundError };

/**
 * Deletes a source whether or not its workflow runs: signal-with-start of `delete`
 * makes a workflow that removes the artifacts and status and completes at once.
 */
export async function deleteSourceWithStart(
  client: Client,
  taskQueue: string,
  source: ArenaSource,
  timeoutMs = 60_000,
): Promise<void> {
  const handle = await startDeletion(client, taskQueue, source);
  await client.withDeadline(Date.now() + timeoutMs, () => handle.result());
}

/** Asks the source's workflow (started if need be) to delete everything; its result says when it has. */
export async function startDeletion(client: Client, taskQueue: string, source: ArenaSource): Promise<WorkflowHandle> {
  const ref = refOf(source);
  return client.workflow.signalWithStart(WORKFLOW_TYPE, {
    workflowId: workflowIdFor(ref),
    taskQueue,
    args: [{ source: ref, spec: source.spec } satisfies SourceWorkflowInput],
    signal: deleteSignal,
    signalArgs: [],
  });
}
