/**
 * The worker's side of the adaptive workflow cache: it counts the cycles its workflows run (an activity
 * interceptor on the local resolveRevision every cycle makes, with the source's interval) and asks
 * the advisor (src/workflow-cache-advisor.ts) on a timer; src/worker.ts replaces its SDK worker when the
 * answer changes.
 */
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import type { CacheAdvice, CacheAdvisor, CacheBounds } from './workflow-cache-advisor.js';

/** What src/worker.ts's `workflowCache` option takes: the bounds, the review's period, and what to tell. */
export interface AdaptiveCache extends CacheBounds {
  reviewEveryMs: number;
  /** Just before an SDK worker with this cache size is created (the CLI sizes the workflow threads' heaps). */
  beforeCreate?: (maxCachedWorkflows: number) => void;
  onReview?: (advice: CacheAdvice) => void;
  onResize?: (resize: CacheAdvice & { from: number }) => void;
  /** The new worker could not be created: the old one keeps running with its cache. */
  onResizeFailed?: (err: unknown, resize: CacheAdvice & { from: number }) => void;
}

/** Counts each cycle (one local resolveRevision) a workflow of this worker runs, with its source's interval. */
export function cycleCounter(advisor: CacheAdvisor): ActivityInterceptorsFactory {
  return (ctx) => ({
    inbound: {
      execute(input, next) {
        if (ctx.info.isLocal && ctx.info.activityType === 'resolveRevision') {
          const interval = (input.args[0] as { spec?: { interval?: unknown } } | undefined)?.spec?.interval;
          if (typeof interval === 'string') advisor.cycle(interval);
        }
        return next(input);
      },
    },
  });
}

/**
 * Asks the advisor every reviewEveryMs and resizes when it says so; `current` is the size in force, or
 * undefined once the worker is stopping. Returns what stops the reviews.
 */
export function reviewCacheEvery(
  adaptive: AdaptiveCache,
  advisor: CacheAdvisor,
  current: () => number | undefined,
  resizeTo: (size: number) => Promise<void>,
): () => void {
  let timer: NodeJS.Timeout | undefined;
  const review = async () => {
    const before = current();
    if (before === undefined) return;
    const advice = advisor.review(Date.now(), before);
    adaptive.onReview?.(advice);
    if (advice.size !== before) {
      try {
        await resizeTo(advice.size);
        adaptive.onResize?.({ from: before, ...advice });
      } catch (err) {
        adaptive.onResizeFailed?.(err, { from: before, ...advice });
      }
    }
    if (current() !== undefined) timer = setTimeout(() => void review(), adaptive.reviewEveryMs).unref();
  };
  timer = setTimeout(() => void review(), adaptive.reviewEveryMs).unref();
  return () => clearTimeout(timer);
}
