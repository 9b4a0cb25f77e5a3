/**
 * What a non-200 answer from the control plane means for the agent. Permanent refusals are not retried
 * on the usual backoff: repeating them changes nothing until someone acts (re-enrolls, fixes the URL).
 */
export type Refusal =
  /** 401/403: the server does not accept this device's certificate (unknown, revoked, expired, wrong CA). */
  | 'device'
  /** 400/413: this report will never be accepted as is. */
  | 'report'
  /** Any other 3xx/4xx: not a Vigil control plane at this URL, or a protocol mismatch. */
  | 'endpoint';

export type ServerAnswer = { kind: 'transient'; why: string; retryAfterMs?: number } | { kind: 'refused'; refusal: Refusal; status: number; why: string };

/** The longest Retry-After honoured; a server asking for more is treated as asking for this. */
export const MAX_RETRY_AFTER_MS = 3_600_000;

/** Retry-After as delta-seconds or an HTTP-date (RFC 9110 §10.2.3); undefined when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, nowMs: number): number | undefined {
  const v = (Array.isArray(value) ? value[0] : value)?.trim();
  if (v === undefined || v === '') return undefined;
  let ms: number;
  if (/^\d+$/.test(v)) ms = Number(v) * 1000;
  else {
    const at = Date.parse(v);
    if (Number.isNaN(at)) return undefined;
    ms = at - nowMs;
  }
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, ms));
}

/** The server's own words: the control plane answers errors as {"error": code, "message": text}. */
export function errorDetail(body: string): string {
  try {
    const j = JSON.parse(body) as unknown;
    if (j !== null && typeof j === 'object') {
      const { error, message } = j as { error?: unknown; message?: unknown };
      const parts = [typeof error === 'string' ? error : undefined, typeof message === 'string' ? message : undefined].filter((p) => p !== undefined);
      if (parts.length > 0) return parts.join(': ').slice(0, 300);
    }
  } catch {
    // not JSON: fall through to the raw text
  }
  return body.replace(/\s+/g, ' ').trim().slice(0, 200);
}

/** Classifies a response other than 200 to POST /v1/reports (or another device call). */
export function classifyAnswer(status: number, headers: { 'retry-after'?: string | string[] }, body: string, nowMs: number): ServerAnswer {
  const detail = errorDetail(body);
  const said = `HTTP ${status}${detail ? ` ${detail}` : ''}`;
  // 408 and 429 are explicitly "try again"; 5xx are the server's own trouble.
  if (status >= 500 || status === 408 || status === 429 || status < 300) {
    const retryAfterMs = parseRetryAfter(headers['retry-after'], nowMs);
    return retryAfterMs === undefined ? { kind: 'transient', why: said } : { kind: 'transient', why: said, retryAfterMs };
  }
  if (status === 401 || status === 403) {
    return {
      kind: 'refused',
      refusal: 'device',
      status,
      why: `control plane refused the device certificate (${said}): the device is unknown or revoked there, or its certificate is not trusted; enroll again with \`vigil enroll --control-plane <url> --enrollment-secret <secret>\``,
    };
  }
  if (status === 400 || status === 413) {
    return { kind: 'refused', refusal: 'report', status, why: `control plane refused the report itself (${said}); it will not be accepted as it is` };
  }
  return { kind: 'refused', refusal: 'endpoint', status, why: `control plane answered ${said}; check that reporting.controlPlaneUrl points at a Vigil control plane` };
}
