/**
 * Structured JSON logs (pino) for every long-running process, and the adapter that
 * makes the Temporal SDK (worker runtime, workflow and activity loggers) write
 * through it. Every activity line carries the source and revision (see
 * interceptors.ts); workflow lines carry workflowId from the SDK.
 */
import type { Logger as TemporalLogger, LogLevel, LogMetadata } from '@temporalio/common';
import pino, { type Logger } from 'pino';

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

export function createLogger(level = process.env.ARENA_SOURCE_LOG_LEVEL ?? 'info'): Logger {
  return pino({
    level: (LEVELS as readonly string[]).includes(level) ? level : 'info',
    base: { service: 'arena-source' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}

/** Meta keys the SDK attaches that are noise in our logs. */
const DROP = new Set(['sdkComponent', 'taskToken']);

export function temporalLogger(logger: Logger): TemporalLogger {
  const write = (level: LogLevel, message: string, meta?: LogMetadata) => {
    // Expected on a worker's own queue, which only carries activities.
    if (message.startsWith('No workflows registered')) return;
    const fields: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(meta ?? {})) {
      if (DROP.has(k)) continue;
      fields[k] = v instanceof Error ? { type: v.name, message: v.message } : v;
    }
    const method = level === 'TRACE' ? 'trace' : level === 'DEBUG' ? 'debug' : level === 'INFO' ? 'info' : level === 'WARN' ? 'warn' : 'error';
    logger[method](fields, message);
  };
  return {
    log: write,
    trace: (m, meta) => write('TRACE', m, meta),
    debug: (m, meta) => write('DEBUG', m, meta),
    info: (m, meta) => write('INFO', m, meta),
    warn: (m, meta) => write('WARN', m, meta),
    error: (m, meta) => write('ERROR', m, meta),
  };
}
