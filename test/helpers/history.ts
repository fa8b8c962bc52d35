/**
 * A source's workflow history across its runs. A run continues as new after every cycle that
 * fetched and every few cycles besides (workflows/arena-source.ts), so what a test looks for
 * (a fetch, a signal, a Secret's name) is often in an earlier run than the current one.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';

export type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;

/** Every run of the workflow, oldest first, following continue-as-new back from the newest (at most `maxRuns`). */
export async function runsOf(client: Client, workflowId: string, maxRuns = 200): Promise<Array<{ runId: string; history: History }>> {
  const runs: Array<{ runId: string; history: History }> = [];
  let runId: string | undefined = (await client.workflow.getHandle(workflowId).describe()).runId;
  while (runId && runs.length < maxRuns) {
    const history: History = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    runs.unshift({ runId, history });
    runId = history.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId ?? undefined;
  }
  return runs;
}

/** The history of every run, oldest first. */
export async function runHistories(client: Client, workflowId: string): Promise<History[]> {
  return (await runsOf(client, workflowId)).map((r) => r.history);
}

/** The events of every run, oldest first, as one history (for searching a workflow's whole life; not for replay). */
export async function wholeHistory(client: Client, workflowId: string): Promise<History> {
  return { events: (await runHistories(client, workflowId)).flatMap((h) => h.events ?? []) } as History;
}
