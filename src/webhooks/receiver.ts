/**
 * The push webhook receiver: POST /hooks/{github,gitlab,gitea,generic,registry}.
 * Each delivery is read up to 1 MiB (more: 413, without reading the rest),
 * verified (401 and nothing signalled when it is not), skipped when its delivery
 * id was already handled (a sender's retry), parsed, and the sources its push
 * moved are woken through Temporal (wake.ts). Mounted on the artifact server's port.
 */
import { createHash } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Client } from '@temporalio/client';
import { webhookDeliveries, webhookSourcesWoken } from '../observability/metrics.js';
import { BadPayloadError, parsePayload, registryEventIds, type Push, type Sender } from './payloads.js';
import { deliveryId, verifyDelivery } from './verify.js';
import { wakeSources } from './wake.js';

export const HOOKS_PREFIX = '/hooks/';
export const MAX_BODY_BYTES = 1024 * 1024;
const SENDERS: readonly Sender[] = ['github', 'gitlab', 'gitea', 'generic', 'registry'];

export interface WebhookReceiverOptions {
  client: Client;
  /** The shared secret (HMAC key, GitLab token, registry bearer token). */
  secret: Buffer;
  maxBodyBytes?: number;
  /** Delivery ids remembered, oldest forgotten first (default 10 000: about 0.5 MiB). */
  rememberDeliveries?: number;
  /** Wakes the sources; default wakeSources with `client` (tests and the bench may count). */
  wake?: (pushes: Push[]) => Promise<string[]>;
  log?: (line: string) => void;
}

export type WebhookHandler = (req: IncomingMessage, res: ServerResponse) => void;

export function createWebhookReceiver(opts: WebhookReceiverOptions): WebhookHandler {
  const max = opts.maxBodyBytes ?? MAX_BODY_BYTES;
  const seen = new DeliveryMemory(opts.rememberDeliveries ?? 10_000);
  const wake = opts.wake ?? ((pushes: Push[]) => wakeSources(opts.client, pushes));
  const log = opts.log ?? ((line: string) => console.log(line));

  return (req, res) => {
    const path = (req.url ?? '').split('?')[0] ?? '';
    const sender = SENDERS.find((s) => path === `${HOOKS_PREFIX}${s}`);
    const reply = (code: number, body: Record<string, unknown>, close = false) => {
      webhookDeliveries.inc({ sender: sender ?? 'unknown', code: String(code) });
      const text = JSON.stringify(body) + '\n';
      res.writeHead(code, {
        'Content-Type': 'application/json',
        'Content-Length': Buffer.byteLength(text),
        'X-Content-Type-Options': 'nosniff',
        ...(close ? { Connection: 'close' } : {}),
      });
      res.end(text);
    };
    if (!sender) return reply(404, { error: `no such hook; use ${SENDERS.map((s) => HOOKS_PREFIX + s).join(', ')}` });
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      return reply(405, { error: 'POST only' });
    }
    const tooLarge = () => {
      reply(413, { error: `body over ${max} bytes` }, true);
      // Stop reading: the connection closes once the answer is out.
      res.once('finish', () => req.destroy());
    };
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > max) return tooLarge();

    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > max) {
        refused = true;
        chunks.length = 0;
        req.pause();
        return tooLarge();
      }
      chunks.push(chunk);
    });
    req.on('error', () => undefined);
    req.on('end', () => {
      if (refused) return;
      handle(sender, Buffer.concat(chunks), req, reply).catch((err: unknown) => {
        log(`webhook ${sender}: ${(err as Error)?.message ?? String(err)}`);
        if (!res.headersSent) reply(503, { error: 'could not wake the sources; the sender may retry' });
      });
    });
  };

  async function handle(sender: Sender, body: Buffer, req: IncomingMessage, reply: (code: number, body: Record<string, unknown>) => void) {
    if (!verifyDelivery(sender, opts.secret, body, req.headers)) {
      return reply(401, { error: `signature or token does not match --webhook-secret-file (${SCHEMES[sender]})` });
    }
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {
      return reply(400, { error: 'body is not JSON' });
    }
    const id = deliveryId(sender, req.headers, () => registryEventIds(json));
    if (id !== undefined && !seen.claim(id)) return reply(200, { duplicate: true, woken: [] });
    try {
      const parsed = parsePayload(sender, json, req.headers);
      if ('ignored' in parsed) return reply(200, { ignored: parsed.ignored, woken: [] });
      const woken = await wake(parsed.pushes);
      webhookSourcesWoken.inc(woken.length);
      log(`webhook ${sender}${id ? ` ${id}` : ''}: woke ${woken.length} source(s)${woken.length ? `: ${woken.join(', ')}` : ''}`);
      return reply(200, { woken });
    } catch (err) {
      // Not handled: a retry of this delivery must not be taken for a duplicate.
      if (id !== undefined) seen.release(id);
      if (err instanceof BadPayloadError) return reply(400, { error: err.message });
      throw err;
    }
  }
}

/**
 * The receiver on a port of its own (`serve --webhook-port`): /hooks/… and /healthz,
 * nothing else, so a public Service or Ingress in front of it cannot reach the artifacts.
 */
export async function startWebhookServer(handler: WebhookHandler, host: string, port: number): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    if (req.url?.startsWith(HOOKS_PREFIX)) return handler(req, res);
    const [code, text] = req.url === '/healthz' ? [200, 'ok\n'] : [404, 'not found\n'];
    res.writeHead(code, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text) }).end(text);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const hostPart = addr.address.includes(':') ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${hostPart}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const SCHEMES: Record<Sender, string> = {
  github: 'X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body>',
  gitlab: 'X-Gitlab-Token: <secret>',
  gitea: 'X-Gitea-Signature: <HMAC-SHA256 of the body>',
  generic: 'X-Signature-256: sha256=<HMAC-SHA256 of the body>',
  registry: 'Authorization: Bearer <secret>',
};

/**
 * Delivery ids seen, bounded: each is kept as a 16-byte digest, the oldest forgotten
 * first. An id is claimed while its delivery is handled, so a retry arriving meanwhile
 * is a duplicate too; released when handling fails, so the sender's next retry is not.
 */
class DeliveryMemory {
  /** Insertion-ordered: the first is the oldest. */
  private readonly ids = new Set<string>();
  constructor(private readonly capacity: number) {}

  claim(id: string): boolean {
    const key = digest(id);
    if (this.ids.has(key)) return false;
    this.ids.add(key);
    while (this.ids.size > this.capacity) this.ids.delete(this.ids.values().next().value as string);
    return true;
  }
  release(id: string): void {
    this.ids.delete(digest(id));
  }
}

function digest(id: string): string {
  return createHash('sha256').update(id).digest('base64').slice(0, 22);
}
