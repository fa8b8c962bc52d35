/**
 * cosign's key-based signatures, checked in-process with node:crypto.
 *
 * Why not the cosign CLI: it is not a Debian package, and building it from its Go
 * module (github.com/sigstore/cosign/v2, which the module proxy serves) took about
 * 28 minutes on 2 busy cores — more than CI's whole budget for new tools. The part of
 * cosign that a public key verifies is small and stable (the "simple signing" format
 * cosign has written since v1, and still writes with `cosign sign --key` in v2):
 *   - the signatures of manifest sha256:<hex> live in the same repository, in the
 *     manifest tagged `sha256-<hex>.sig`;
 *   - each of its layers of media type application/vnd.dev.cosign.simplesigning.v1+json
 *     is a JSON payload naming the signed digest in critical.image.docker-manifest-digest,
 *     with type "cosign container image signature";
 *   - the layer's annotation dev.cosignproject.cosign/signature is the base64 signature of
 *     the payload bytes (ECDSA P-256/SHA-256 for cosign's own keys; RSA or Ed25519 keys too).
 * A signature counts when it verifies with one of the trusted keys AND its payload names
 * exactly the digest being published. Transparency-log (Rekor) bundles and keyless
 * (Fulcio) certificates are not checked: with a trusted public key they are not needed,
 * as with `cosign verify --key … --insecure-ignore-tlog`. Tests use signatures made by the
 * real cosign (test/fixtures/cosign).
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { SecretNotFoundError, VerificationFailedError } from '../errors.js';
import type { TrustedKey } from '../secrets/trusted-keys.js';

export const COSIGN_KEY_SUFFIX = '.pub';
export const SIMPLE_SIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const COSIGN_SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
/** A payload is a few hundred bytes; anything much larger is not one. */
export const MAX_PAYLOAD_BYTES = 64 * 1024;

export interface CosignKey {
  name: string;
  key: KeyObject;
}

/** The tag holding the signatures of `digest` (sha256:<hex>). */
export function signatureTag(digest: string): string {
  return `${digest.replace(':', '-')}.sig`;
}

/** The Secret's `*.pub` keys as public keys; a key that does not parse is named. */
export function cosignKeys(keys: TrustedKey[], where: string): CosignKey[] {
  return keys.map(({ name, text }) => {
    try {
      return { name, key: createPublicKey({ key: text, format: 'pem' }) };
    } catch {
      throw new SecretNotFoundError(`${where}: key '${name}' holds no PEM public key (-----BEGIN PUBLIC KEY-----, as cosign generate-key-pair writes cosign.pub)`);
    }
  });
}

export interface SignatureLayer {
  digest: string;
  size: number;
  signature: string;
}

/** The simple-signing layers of a `.sig` manifest that carry a signature. */
export function signatureLayers(manifest: Buffer): SignatureLayer[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(manifest.toString('utf8'));
  } catch {
    return [];
  }
  const layers = (parsed as { layers?: unknown }).layers;
  if (!Array.isArray(layers)) return [];
  const out: SignatureLayer[] = [];
  for (const l of layers as Array<Record<string, unknown>>) {
    const annotations = (l?.annotations ?? {}) as Record<string, unknown>;
    const signature = annotations[COSIGN_SIGNATURE_ANNOTATION];
    if (l?.mediaType !== SIMPLE_SIGNING_MEDIA_TYPE || typeof signature !== 'string' || typeof l.digest !== 'string' || typeof l.size !== 'number') continue;
    out.push({ digest: l.digest, size: l.size, signature });
  }
  return out;
}

export type PayloadVerdict = { ok: true; key: string } | { ok: false; why: 'wrong-digest' | 'no-key' | 'not-a-payload' };

/** Whether `payload` with `signature` (base64) is a valid cosign signature of `digest` by one of `keys`. */
export function checkPayload(payload: Buffer, signature: string, digest: string, keys: CosignKey[]): PayloadVerdict {
  const sig = Buffer.from(signature, 'base64');
  const signer = keys.find(({ key }) => {
    try {
      // Ed25519 keys take no digest algorithm; ECDSA and RSA keys sign SHA-256.
      return verify(key.asymmetricKeyType === 'ed25519' ? null : 'sha256', payload, key, sig);
    } catch {
      return false;
    }
  });
  if (!signer) return { ok: false, why: 'no-key' };
  // Only a verified payload is read: its claims mean something only once signed.
  let claims: { critical?: { type?: unknown; image?: { 'docker-manifest-digest'?: unknown } } };
  try {
    claims = JSON.parse(payload.toString('utf8'));
  } catch {
    return { ok: false, why: 'not-a-payload' };
  }
  if (claims.critical?.type !== 'cosign container image signature') return { ok: false, why: 'not-a-payload' };
  if (claims.critical.image?.['docker-manifest-digest'] !== digest) return { ok: false, why: 'wrong-digest' };
  return { ok: true, key: signer.name };
}

/** The VerificationFailed message when no signature passed, from what the checks found. */
export function refusal(digest: string, verdicts: PayloadVerdict[], where: string): VerificationFailedError {
  const sigs = `${verdicts.length} cosign signature${verdicts.length === 1 ? '' : 's'}`;
  if (verdicts.some((v) => !v.ok && v.why === 'wrong-digest')) {
    return new VerificationFailedError(`artifact ${digest}: ${sigs} found, but the signed payload names another digest (a signature copied from another artifact)`);
  }
  return new VerificationFailedError(
    `artifact ${digest}: ${sigs} found, none by a key in ${where}: a wrong key, or a changed artifact or signature (add the signer's cosign.pub as a key ending in '.pub')`,
  );
}
