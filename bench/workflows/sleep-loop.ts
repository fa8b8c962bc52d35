/**
 * The plain baseline of benchmark 11: the smallest workflow that polls on an interval
 * (Temporal's sleep-for-days sample, with a query for its cycle count). What one of these
 * costs cached is the SDK's floor per cached workflow; arena-source's workflow is measured
 * beside it.
 */
import { defineQuery, setHandler, sleep } from '@temporalio/workflow';

export const cyclesQuery = defineQuery<number>('cycles');

export async function sleepLoop(intervalMs: number): Promise<void> {
  let cycles = 0;
  setHandler(cyclesQuery, () => cycles);
  for (;;) {
    cycles += 1;
    await sleep(intervalMs);
  }
}
