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

/**
 * API tokens look like `vgt_<id>_<random>`, made and stored the same way as enrollment secrets (SHA-256 of
 * 256 random bits). The id is public: it names the token in `token list` and `token revoke`.
 */
const TOKEN_RE = /^vgt_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export function generateApiToken(): GeneratedSecret {
  const id = randomBytes(8).toString('hex');
  const secret = `vgt_${id}_${randomBytes(32).toString('base64url')}`;
  return { id, secret, hash: hashSecret(secret) };
}

/** The id part of a well-formed API token, or null (then it may still be the configured admin token). */
export function apiTokenId(token: string): string | null {
  return TOKEN_RE.exec(token)?.[1] ?? null;
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
