/**
 * Activity interceptors: time every activity into a histogram, and put the
 * source (namespace/name) and revision on every log line the activity writes.
 */
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { activityDuration } from './metrics.js';

interface SourceArgs {
  source?: { namespace?: string; name?: string };
  revision?: string;
  artifact?: { revision?: string };
}

export const observabilityInterceptors: ActivityInterceptorsFactory = (ctx) => {
  let attributes: Record<string, unknown> = {};
  return {
    inbound: {
      async execute(input, next) {
        const arg = (input.args[0] ?? {}) as SourceArgs;
        if (arg.source?.name) attributes = { sourceNamespace: arg.source.namespace, sourceName: arg.source.name };
        const revision = arg.revision ?? arg.artifact?.revision;
        if (revision) attributes.revision = revision;
        const stop = activityDuration.startTimer({ activity: ctx.info.activityType });
        try {
          const result = await next(input);
          stop({ outcome: 'succeeded' });
          return result;
        } catch (err) {
          stop({ outcome: 'failed' });
          throw err;
        }
      },
    },
    outbound: {
      getLogAttributes: (input, next) => next({ ...input, ...attributes }),
    },
  };
};
