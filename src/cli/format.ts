/** Output of `get`: a kubectl-like table, or the objects as JSON/YAML. */
import { stringify } from 'yaml';
import type { ArenaSource } from '../api/schema.js';
import { shortRevision } from '../api/revision.js';

export type OutputFormat = 'table' | 'json' | 'yaml' | 'wide';

export function formatSources(sources: ArenaSource[], format: OutputFormat, opts: { allNamespaces?: boolean; single?: boolean } = {}): string {
  if (format === 'json') {
    const value = opts.single && sources.length === 1 ? sources[0] : { apiVersion: 'v1', kind: 'List', items: sources };
    return `${JSON.stringify(value, null, 2)}\n`;
  }
  if (format === 'yaml') {
    const value = opts.single && sources.length === 1 ? sources[0] : { apiVersion: 'v1', kind: 'List', items: sources };
    return stringify(value);
  }
  const header = ['NAME', 'TYPE', 'PHASE', 'REVISION', 'AGE'];
  if (format === 'wide') header.push('MESSAGE');
  if (opts.allNamespaces) header.unshift('NAMESPACE');
  const rows = sources.map((s) => {
    const row = [
      s.metadata.name,
      s.spec.type,
      s.status?.phase ?? '',
      format === 'wide' ? (s.status?.artifact?.revision ?? '') : shortRevision(s.status?.artifact?.revision),
      age(s.metadata.creationTimestamp),
    ];
    if (format === 'wide') row.push(s.status?.conditions?.find((c) => c.type === 'Ready')?.message ?? '');
    if (opts.allNamespaces) row.unshift(s.metadata.namespace ?? '');
    return row;
  });
  return table([header, ...rows]);
}

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]! + 3))).join('').trimEnd())
    .join('\n')
    .concat('\n');
}

/** kubectl's short ages: 45s, 12m, 3h, 5d. */
export function age(since: string | undefined, now = Date.now()): string {
  if (!since) return '';
  const seconds = Math.max(0, Math.floor((now - Date.parse(since)) / 1000));
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 172800) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}
