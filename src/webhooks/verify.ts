/**
 * Is a delivery from someone who holds the secret? Each sender's own scheme;
 * every comparison is timing-safe (both sides hashed first, so neither their
 * content nor their length leaks through how long a comparison takes).
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Sender } from './payloads.js';

export function verifyDelivery(sender: Sender, secret: Buffer, body: Buffer, headers: IncomingHttpHeaders): boolean {
  const header = (name: string) => (typeof headers[name] === 'string' ? (headers[name] as string).trim() : undefined);
  switch (sender) {
    case 'github':
      // X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>
      return hmacMatches(secret, body, header('x-hub-signature-256'), 'sha256=');
    case 'generic':
      return hmacMatches(secret, body, header('x-signature-256'), 'sha256=');
    case 'gitea':
      // X-Gitea-Signature (Forgejo also sends X-Forgejo-Signature): <hex HMAC-SHA256>, no prefix.
      return hmacMatches(secret, body, header('x-gitea-signature') ?? header('x-forgejo-signature'), '');
    case 'gitlab':
      // GitLab sends the secret token itself.
      return same(header('x-gitlab-token'), secret);
    case 'registry': {
      // distribution cannot sign; its endpoint config sends a static header: Authorization: Bearer <secret>.
      const m = /^Bearer\s+(.+)$/i.exec(header('authorization') ?? '');
      return same(m?.[1], secret);
    }
  }
}

function hmacMatches(secret: Buffer, body: Buffer, given: string | undefined, prefix: string): boolean {
  const expected = prefix + createHmac('sha256', secret).update(body).digest('hex');
  // A prefix is matched case-insensitively, the hex too (some senders use upper case).
  return same(given?.toLowerCase(), Buffer.from(expected));
}

function same(given: string | undefined, expected: Buffer): boolean {
  if (given === undefined || given === '') return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** The sender's id of this delivery, which its retries repeat. */
export function deliveryId(sender: Sender, headers: IncomingHttpHeaders, registryEventIds: () => string[]): string | undefined {
  const header = (name: string) => (typeof headers[name] === 'string' && headers[name] !== '' ? (headers[name] as string) : undefined);
  switch (sender) {
    case 'github':
      return header('x-github-delivery');
    case 'gitlab':
      // Newer GitLab: X-Gitlab-Event-UUID (a retry repeats it); X-Gitlab-Webhook-UUID names the hook, not the delivery.
      return header('x-gitlab-event-uuid');
    case 'gitea':
      return header('x-gitea-delivery') ?? header('x-forgejo-delivery');
    case 'generic':
      return header('x-delivery-id');
    case 'registry': {
      const ids = registryEventIds();
      return ids.length > 0 ? ids.join(',') : undefined;
    }
  }
}
