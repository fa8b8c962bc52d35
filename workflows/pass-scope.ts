/**
 * A pass of the loop (the wait for a cycle and the cycle) in a cancellation scope of its own, let go
 * once the pass is done.
 *
 * Why: every timer, activity and condition the SDK starts hangs a handler on its scope's
 * `cancelRequested` promise (to cancel it if the scope is), and that handler's closure holds the
 * call's arguments. On the root scope, which lives as long as the run, a 20-cycle run kept every
 * cycle's resolveRevision input (two statuses, ≈ 3 KiB) and every wait's cancelled inner scope
 * (with its stack trace) in each cached workflow's sandbox (README, benchmark 11b). A finished pass's
 * scope is rejected once, with one shared reason, so its handlers (all of them for completed work:
 * they find nothing pending and send no command) are dropped; what the root keeps of it is the scope
 * itself (≈ 0.8 KiB), no stack trace: one per cycle, as the wait and the cycle share a pass. The
 * history is what it was, so no patch is needed. A pass that throws is left as before, not let go,
 * so a history that failed there replays unchanged.
 */
import { CancellationScope, CancelledFailure } from '@temporalio/workflow';

/** The one reason every finished pass's scope is let go with. */
const PASS_DONE = new CancelledFailure('pass finished');

class PassScope extends CancellationScope {
  /** Settles this scope (its handlers run and find their work completed) without a new error per pass. */
  letGo(): void {
    this.reject(PASS_DONE);
  }
}

export async function inPassScope<T>(pass: () => Promise<T>): Promise<T> {
  const scope = new PassScope();
  const result = await scope.run(pass);
  scope.letGo();
  return result;
}
