import { createHash } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addAdmin } from '../../src/control-plane/accounts.js';
import type { ServeConfig } from '../../src/control-plane/config.js';
import { SqliteStorage } from '../../src/control-plane/sqlite-storage.js';
import { redact, REDACTED } from '../../src/logging/redact.js';
import { ADMIN_TOKEN, startHarness, type Harness } from '../helpers/control-plane.js';
import { call, openSse, type CallOptions } from '../helpers/https.js';

const PASSWORD = 'correct horse battery staple';
const consoleConfig = (perIp: number): ServeConfig['console'] => ({
  idleTimeoutMinutes: 30,
  absoluteLifetimeHours: 12,
  signinFailuresPerMinutePerName: 5,
  signinFailuresPerMinutePerIp: perIp,
});

let h: Harness;
const api = (path: string, o?: CallOptions) => call(h.pki.rootPem, `${h.cp.url}${path}`, o);
const db = () => new Database(join(h.config.dataDir, 'control-plane.sqlite'));

async function withStorage<T>(dataDir: string, fn: (s: SqliteStorage) => Promise<T>): Promise<T> {
  const s = new SqliteStorage(dataDir);
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

interface Signed {
  cookie: string;
  csrf: string;
  value: string;
}

async function signIn(name: string, password = PASSWORD, base = h): Promise<Signed> {
  const r = await call(base.pki.rootPem, `${base.cp.url}/console/api/session`, { body: { name, password } });
  expect(r.status, r.text).toBe(200);
  const set = String(r.headers['set-cookie']?.[0]);
  const value = /^__Host-vigil_session=([A-Za-z0-9_-]{43});/.exec(set)?.[1] ?? '';
  return { value, cookie: `__Host-vigil_session=${value}`, csrf: (r.json as { csrf: string }).csrf };
}

beforeAll(async () => {
  h = await startHarness({ console: consoleConfig(1000) });
  await withStorage(h.config.dataDir, async (s) => {
    for (const name of ['alice', 'bob', 'carol', 'dave']) await addAdmin(s, name, PASSWORD, Date.now());
  });
});
afterAll(async () => {
  await h.cp.close();
});

describe('console sign-in', () => {
  it('a right password opens a session: HttpOnly, Secure, SameSite=Strict __Host- cookie, CSRF token, idle timeout', async () => {
    const r = await api('/console/api/session', { body: { name: 'alice', password: PASSWORD } });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ name: 'alice', csrf: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) as unknown, idleTimeoutSeconds: 1800 });
    const setCookie = r.headers['set-cookie'] ?? [];
    expect(setCookie).toHaveLength(1);
    expect(setCookie[0]).toMatch(/^__Host-vigil_session=[A-Za-z0-9_-]{43}; HttpOnly; Secure; SameSite=Strict; Path=\/$/);
    expect(r.headers['cache-control']).toBe('no-store');
    const value = /=([^;]+);/.exec(setCookie[0] ?? '')?.[1] ?? '';
    const me = await api('/console/api/session', { headers: { cookie: `__Host-vigil_session=${value}` } });
    expect(me.status).toBe(200);
    expect(me.json).toEqual(r.json);
    // A session is the admin scope: the admin API answers it, without a bearer token.
    expect((await api('/v1/admin/devices', { headers: { cookie: `__Host-vigil_session=${value}` } })).status).toBe(200);
    expect((await api('/v1/admin/tokens', { headers: { cookie: `__Host-vigil_session=${value}` } })).status).toBe(200);
    expect((await api('/console/api/session')).status).toBe(401);
    expect((await api('/v1/admin/devices')).status).toBe(401);
  });

  it('only the SHA-256 of the cookie is stored', async () => {
    const s = await signIn('alice');
    const d = db();
    try {
      const rows = d.prepare<[], { id_hash: Buffer; csrf: string; admin: string }>('SELECT id_hash, csrf, admin FROM sessions').all();
      expect(rows.some((row) => row.id_hash.equals(createHash('sha256').update(s.value).digest()))).toBe(true);
      const dump = JSON.stringify(d.prepare('SELECT * FROM sessions').all());
      expect(dump).not.toContain(s.value);
    } finally {
      d.close();
    }
  });

  it('a wrong password and an unknown name get the same 401 and take about as long', async () => {
    const time = async (name: string) => {
      const t0 = performance.now();
      const r = await api('/console/api/session', { body: { name, password: 'not the password at all' } });
      return { r, ms: performance.now() - t0 };
    };
    const wrong = await time('carol');
    const unknown = await time('mallory');
    for (const { r } of [wrong, unknown]) {
      expect(r.status).toBe(401);
      expect(r.json).toEqual({ error: 'wrong name or password', message: 'wrong name or password' });
      expect(r.headers['set-cookie']).toBeUndefined();
    }
    // Both pay for one scrypt (tens of ms); an unknown name must not answer at once.
    expect(unknown.ms).toBeGreaterThan(wrong.ms * 0.4);
  });

  it('failed sign-ins are limited per name: then even the right password waits (429)', async () => {
    for (let i = 0; i < 5; i++) expect((await api('/console/api/session', { body: { name: 'dave', password: `wrong ${i} xxxxxxxx` } })).status).toBe(401);
    const r = await api('/console/api/session', { body: { name: 'dave', password: PASSWORD } });
    expect(r.status).toBe(429);
    expect(Number(r.headers['retry-after'])).toBeGreaterThan(0);
    // Another name from the same address is not held up.
    expect((await api('/console/api/session', { body: { name: 'bob', password: PASSWORD } })).status).toBe(200);
  });

  it('failed sign-ins are limited per address, whatever the names', async () => {
    const other = await startHarness({ console: consoleConfig(3) }, h.pki);
    try {
      const post = (name: string, password: string) => call(other.pki.rootPem, `${other.cp.url}/console/api/session`, { body: { name, password } });
      for (const name of ['n1', 'n2', 'n3']) expect((await post(name, 'whatever-whatever')).status).toBe(401);
      expect((await post('n4', 'whatever-whatever')).status).toBe(429);
    } finally {
      await other.cp.close();
    }
  });

  it('a sign-in posted from another origin is refused (login CSRF)', async () => {
    const r = await api('/console/api/session', { body: { name: 'alice', password: PASSWORD }, headers: { origin: 'https://evil.example' } });
    expect([r.status, r.headers['set-cookie']]).toEqual([403, undefined]);
    expect((await api('/console/api/session', { body: { name: 'alice', password: PASSWORD }, headers: { origin: new URL(h.cp.url).origin } })).status).toBe(200);
  });

  it('the logger redacts the cookie, Set-Cookie and CSRF headers should they ever be logged', () => {
    const out = redact({ headers: { cookie: '__Host-vigil_session=abc', 'set-cookie': ['__Host-vigil_session=abc; HttpOnly'], 'x-csrf-token': 'def' } });
    expect(out).toEqual({ headers: { cookie: REDACTED, 'set-cookie': REDACTED, 'x-csrf-token': REDACTED } });
  });

  it('a malformed body is a 400 naming the field', async () => {
    const r = await api('/console/api/session', { body: { name: 'alice' } });
    expect(r.status).toBe(400);
    expect(JSON.stringify(r.json)).toContain('password');
  });
});

describe('console sessions', () => {
  it('a session idle past the timeout is refused and deleted', async () => {
    const s = await signIn('bob');
    const hash = createHash('sha256').update(s.value).digest();
    const d = db();
    try {
      d.prepare('UPDATE sessions SET last_seen = last_seen - ? WHERE id_hash = ?').run(31 * 60_000, hash);
      expect((await api('/console/api/session', { headers: { cookie: s.cookie } })).status).toBe(401);
      expect((await api('/v1/admin/devices', { headers: { cookie: s.cookie } })).status).toBe(401);
      expect(d.prepare('SELECT COUNT(*) AS n FROM sessions WHERE id_hash = ?').get(hash)).toEqual({ n: 0 });
    } finally {
      d.close();
    }
  });

  it('a session in use is still ended at its absolute lifetime (12 h)', async () => {
    const s = await signIn('bob');
    const hash = createHash('sha256').update(s.value).digest();
    const d = db();
    try {
      d.prepare('UPDATE sessions SET created_at = created_at - ? WHERE id_hash = ?').run(12 * 3_600_000 + 60_000, hash);
      expect((await api('/console/api/session', { headers: { cookie: s.cookie } })).status).toBe(401);
    } finally {
      d.close();
    }
  });

  it('use refreshes the idle timer', async () => {
    const s = await signIn('bob');
    const hash = createHash('sha256').update(s.value).digest();
    const d = db();
    try {
      d.prepare('UPDATE sessions SET last_seen = last_seen - ? WHERE id_hash = ?').run(29 * 60_000, hash);
      expect((await api('/console/api/session', { headers: { cookie: s.cookie } })).status).toBe(200);
      const row = d.prepare<[Buffer], { last_seen: number }>('SELECT last_seen FROM sessions WHERE id_hash = ?').get(hash);
      expect(Date.now() - (row?.last_seen ?? 0)).toBeLessThan(60_000);
    } finally {
      d.close();
    }
  });

  it('sign-out needs the CSRF token, deletes the session and clears the cookie', async () => {
    const s = await signIn('carol');
    expect((await api('/console/api/session', { method: 'DELETE', headers: { cookie: s.cookie } })).status).toBe(403);
    const events = openSse(h.pki.rootPem, `${h.cp.url}/v1/events`, { headers: { cookie: s.cookie } });
    expect(await events.ready).toBe(200);
    const r = await api('/console/api/session', { method: 'DELETE', headers: { cookie: s.cookie, 'x-csrf-token': s.csrf } });
    expect(r.status).toBe(204);
    expect(r.headers['set-cookie']?.[0]).toBe('__Host-vigil_session=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0');
    expect((await api('/console/api/session', { headers: { cookie: s.cookie } })).status).toBe(401);
    expect((await api('/v1/admin/devices', { headers: { cookie: s.cookie } })).status).toBe(401);
    // Its live event stream ends with it.
    await expect.poll(() => events.closed, { timeout: 5000 }).toBe(true);
  });

  it('removing an account or changing its password ends its sessions', async () => {
    await withStorage(h.config.dataDir, (st) => addAdmin(st, 'erin', PASSWORD, Date.now()));
    const s = await signIn('erin');
    await withStorage(h.config.dataDir, (st) => st.deleteAdmin('erin'));
    expect((await api('/console/api/session', { headers: { cookie: s.cookie } })).status).toBe(401);
  });
});

describe('CSRF', () => {
  it('a state-changing request with the cookie needs the session CSRF token and this origin', async () => {
    const s = await signIn('alice');
    const post = (headers: Record<string, string>) => api('/v1/admin/secrets', { body: { uses: 1 }, headers: { cookie: s.cookie, ...headers } });
    const refused: Record<string, string>[] = [{}, { 'x-csrf-token': 'x'.repeat(43) }, { 'x-csrf-token': s.csrf, origin: 'https://evil.example' }];
    for (const headers of refused) {
      const r = await post(headers);
      expect([JSON.stringify(headers), r.status, r.json]).toEqual([
        JSON.stringify(headers),
        403,
        { error: 'missing or wrong CSRF token', message: 'missing or wrong CSRF token' },
      ]);
    }
    // Another session's token is wrong too.
    const other = await signIn('bob');
    expect((await post({ 'x-csrf-token': other.csrf })).status).toBe(403);
    expect((await post({ 'x-csrf-token': s.csrf })).status).toBe(201);
    const origin = new URL(h.cp.url).origin;
    expect((await post({ 'x-csrf-token': s.csrf, origin })).status).toBe(201);
    // Reads need no token.
    expect((await api('/v1/admin/secrets', { headers: { cookie: s.cookie } })).status).toBe(200);
  });

  it('a bearer token needs no CSRF token (no browser sends it by itself)', async () => {
    expect((await api('/v1/admin/secrets', { body: { uses: 1 }, token: ADMIN_TOKEN })).status).toBe(201);
  });
});
