import type { Session } from './types.js';

/** An answer other than 2xx: `message` is what the server said, ready to show. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body: unknown,
  ) {
    super(message);
  }
}

let csrf: string | null = null;
let onSessionLost: (message: string) => void = () => undefined;
let onActivity: () => void = () => undefined;

export function setSession(s: Session | null): void {
  csrf = s?.csrf ?? null;
}

/** What the app does when the server says the session is gone (idle timeout, sign-out elsewhere). */
export function onUnauthorized(handler: (message: string) => void): void {
  onSessionLost = handler;
}

/** Each answered request refreshes the server's idle timer; the app restarts its own one to match. */
export function onServerActivity(handler: () => void): void {
  onActivity = handler;
}

function messageOf(status: number, body: unknown): string {
  if (typeof body === 'object' && body !== null) {
    const b = body as { message?: unknown; error?: unknown };
    if (typeof b.message === 'string' && b.message !== '') return b.message;
    if (typeof b.error === 'string' && b.error !== '') return b.error;
  }
  return `the server answered HTTP ${status}`;
}

/**
 * Every call to the control plane. Same origin, so the session cookie goes along by itself; every request
 * that changes something carries the CSRF token the session was issued with.
 */
export async function api<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (method !== 'GET' && csrf !== null) headers['x-csrf-token'] = csrf;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    cache: 'no-store',
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  let parsed: unknown = null;
  if (text !== '') {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  if (res.status === 401 && path !== '/console/api/session') {
    onSessionLost('Your session has ended (signed out or idle too long). Sign in again.');
  }
  if (!res.ok) throw new ApiError(res.status, messageOf(res.status, parsed), parsed);
  onActivity();
  return parsed as T;
}

export function query(params: Record<string, string | number | null | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s === '' ? '' : `?${s}`;
}
