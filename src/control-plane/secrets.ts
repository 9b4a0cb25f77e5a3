import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Enrollment secrets look like `vges_<id>_<random>`. The id (public, not secret) finds the row; only the
 * SHA-256 of the whole secret is stored. 256 random bits make a plain hash as strong as a slow KDF would
 * be, and the comparison is constant-time so response timing says nothing about a near miss.
 */
const PREFIX = 'vges';
const SECRET_RE = /^vges_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export interface GeneratedSecret {
  id: string;
  secret: string;
  hash: Buffer;
}

export function generateSecret(): GeneratedSecret {
  const id = randomBytes(8).toString('hex');
  const secret = `${PREFIX}_${id}_${randomBytes(32).toString('base64url')}`;
  return { id, secret, hash: hashSecret(secret) };
}

export function hashSecret(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

/** The id part of a well-formed secret, or null. */
export function secretId(secret: string): string | null {
  return SECRET_RE.exec(secret)?.[1] ?? null;
}

export function secretMatches(secret: string, storedHash: Buffer): boolean {
  const h = hashSecret(secret);
  return h.length === storedHash.length && timingSafeEqual(h, storedHash);
}

/** Constant-time token comparison; hashing first makes the lengths equal without leaking the length. */
export function tokensEqual(given: string, expected: string): boolean {
  return timingSafeEqual(hashSecret(given), hashSecret(expected));
}
