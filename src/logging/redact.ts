/**
 * Redaction by construction: every log record passes through here before any transport sees it, so a
 * secret handed to the logger by mistake still never reaches a file or a terminal.
 */
const SENSITIVE_KEY =
  /^(.*[-_])?(token|ott|secret|password|passphrase|passwd|pin|authorization|cookie|private[-_]?key|privatekey|key[-_]?pem|data[-_]?key|api[-_]?key|admin[-_]?token|enrollment[-_]?secret|jwk|d)$/i;

const PATTERNS: readonly [RegExp, string][] = [
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g, '[REDACTED PRIVATE KEY]'],
  // JWTs and JWS: three base64url segments, the first a JSON header.
  [/\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g, '[REDACTED JWT]'],
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi, '$1 [REDACTED]'],
  // Control-plane API tokens and enrollment secrets keep their public id, which names them in `token list`.
  [/\b(vgt|vges)_([0-9a-f]{16})_[A-Za-z0-9_-]{43}/g, '$1_$2_[REDACTED]'],
];

export const REDACTED = '[REDACTED]';

export function isSensitiveKey(key: string): boolean {
  return SENSITIVE_KEY.test(key);
}

export function redactString(s: string): string {
  let out = s;
  for (const [re, replacement] of PATTERNS) out = out.replace(re, replacement);
  return out;
}

/** Returns a redacted deep copy; cycles and depth are bounded so a strange object cannot hang logging. */
export function redact(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return redactString(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth > 8 || seen.has(value)) return '[…]';
  seen.add(value);
  if (value instanceof Error) {
    return { name: value.name, message: redactString(value.message), stack: value.stack ? redactString(value.stack) : undefined };
  }
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return `[${value.byteLength} bytes]`;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1, seen));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = isSensitiveKey(k) && v !== undefined && v !== null && v !== '' ? REDACTED : redact(v, depth + 1, seen);
  }
  return out;
}
