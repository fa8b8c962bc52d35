/** What the latency benchmarks (3, 6) share: waiting on a source's status, and one row per sample set. */
import type { Client } from '@temporalio/client';
import { getSource } from '../../src/client.js';
import { fmtMs, mean, percentile, sleep } from './util.js';

export type SourceStatus = Awaited<ReturnType<typeof getSource>> | undefined;

/** Queries the source every `pollMs` until `ok` holds (the moment measured), or fails after `timeoutMs`. */
export async function waitForSource(
  client: Client,
  ref: { namespace: string; name: string },
  ok: (s: SourceStatus) => boolean,
  timeoutMs: number,
  pollMs: number,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const s = await getSource(client, ref).catch(() => undefined);
    if (ok(s)) return;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${ref.namespace}/${ref.name}: ${JSON.stringify(s?.status ?? null)}`);
    await sleep(pollMs);
  }
}

export const LATENCY_COLUMNS = ['mode', 'samples', 'p50', 'p90', 'p99', 'max', 'mean'];

/** mode, count, p50/p90/p99 (nearest rank), max and mean of one mode's samples. */
export function latencyRow(mode: string, samplesMs: number[]): string[] {
  return [
    mode,
    String(samplesMs.length),
    fmtMs(percentile(samplesMs, 50)),
    fmtMs(percentile(samplesMs, 90)),
    fmtMs(percentile(samplesMs, 99)),
    fmtMs(Math.max(...samplesMs)),
    fmtMs(mean(samplesMs)),
  ];
}
