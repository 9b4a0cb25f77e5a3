import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addAdmin } from '../../src/control-plane/accounts.js';
import { CONSOLE_CSP } from '../../src/control-plane/console-static.js';
import { SqliteStorage } from '../../src/control-plane/sqlite-storage.js';
import type { ReportEnvelope } from '../../src/protocol/wire.js';
import defaultPolicyJson from '../../src/policy/default-policy.json' with { type: 'json' };
import { ADMIN_TOKEN, startHarness, type Harness } from '../helpers/control-plane.js';
import { call, type CallOptions } from '../helpers/https.js';
import type { Issued } from '../helpers/pki.js';
import { sampleReport } from '../helpers/report.js';

const PASSWORD = 'correct horse battery staple';

let h: Harness;
let consoleDir: string;
let session: { cookie: string; csrf: string };
const api = (path: string, o?: CallOptions) => call(h.pki.rootPem, `${h.cp.url}${path}`, o);
const admin = (path: string, o: CallOptions = {}) => api(path, { ...o, token: ADMIN_TOKEN });
/** As the console calls the API: the session cookie, and the CSRF token on anything but a read. */
const browser = (path: string, o: CallOptions = {}) =>
  api(path, { ...o, headers: { cookie: session.cookie, ...(o.method === undefined && o.body === undefined ? {} : { 'x-csrf-token': session.csrf }), ...o.headers } });

interface AuditEntry {
  id: number;
  at: number;
  actor: string;
  action: string;
  target: string | null;
  ip: string;
  detail: Record<string, unknown> | null;
}
const newestAudit = async (): Promise<AuditEntry> => {
  const r = await admin('/v1/admin/audit?limit=1');
  expect(r.status).toBe(200);
  const e = (r.json as { entries: AuditEntry[] }).entries[0];
  if (!e) throw new Error('the audit log is empty');
  return e;
};

async function enrolled(id: string, hostname = id): Promise<Issued> {
  const secret = (await admin('/v1/admin/secrets', { body: {} })).json as { secret: string };
  const facts = { ...sampleReport().device, hostname };
  expect((await api('/v1/enroll', { body: { protocolVersion: 1, enrollmentSecret: secret.secret, deviceId: id, facts } })).status).toBe(200);
  const tls = await h.pki.device(id);
  expect((await api('/v1/enroll/confirm', { method: 'POST', tls })).status).toBe(200);
  return tls;
}

async function reporting(id: string, failing: string[] = []): Promise<Issued> {
  const tls = await enrolled(id);
  const report = sampleReport({ failing });
  report.device.hostname = id;
  const env: ReportEnvelope = { protocolVersion: 1, reportId: randomUUID(), seq: 1, dropped: 0, report };
  expect((await api('/v1/reports', { body: env, tls })).status).toBe(200);
  return tls;
}

beforeAll(async () => {
  consoleDir = await mkdtemp(join(tmpdir(), 'vigil-console-'));
  await mkdir(join(consoleDir, 'assets'));
  await writeFile(join(consoleDir, 'index.html'), '<!doctype html><title>Vigil</title><script type="module" src="/console/app.js"></script>');
  await writeFile(join(consoleDir, 'app.js'), 'console.log("vigil")');
  await writeFile(join(consoleDir, 'app.css'), 'body{}');
  await writeFile(join(consoleDir, 'assets', 'logo.svg'), '<svg/>');
  h = await startHarness({ maxReportAgeSeconds: 3600 }, undefined, { consoleDir });
  const s = new SqliteStorage(h.config.dataDir);
  try {
    await addAdmin(s, 'alice', PASSWORD, Date.now());
  } finally {
    await s.close();
  }
  const r = await api('/console/api/session', { body: { name: 'alice', password: PASSWORD } });
  expect(r.status).toBe(200);
  const value = /^__Host-vigil_session=([^;]+);/.exec(String(r.headers['set-cookie']?.[0]))?.[1] ?? '';
  session = { cookie: `__Host-vigil_session=${value}`, csrf: (r.json as { csrf: string }).csrf };
});
afterAll(async () => {
  await h.cp.close();
});

describe('audit log', () => {
  it('every state-changing admin route writes an entry, whether it succeeds or not', async () => {
    const changing = h.cp.app.routeTable.filter((r) => !['GET', 'HEAD', 'OPTIONS'].includes(r.method) && r.auth !== 'none' && r.auth !== 'device');
    // The walk below covers whatever is registered; this list only says which routes are known not to write
    // through the hook, and why.
    const own: Record<string, string> = {
      'POST /v1/admin/policy/preview': 'read-only',
      'DELETE /console/api/session': 'writes session.signout itself (tested in console-auth)',
    };
    expect(changing.length).toBeGreaterThanOrEqual(10);
    for (const route of changing) {
      const key = `${route.method} ${route.url}`;
      if (own[key] !== undefined) {
        expect([key, route.audit]).toEqual([key, 'none']);
        continue;
      }
      expect([key, route.audit]).toEqual([key, expect.stringMatching(/^[a-z]+\.[a-z-]+$/) as unknown]);
      const path = route.url.replace(':id', 'no-such-thing');
      const before = (await newestAudit()).id;
      const r = await admin(path, { method: route.method, ...(route.method === 'DELETE' ? {} : { body: {} }) });
      const e = await newestAudit();
      expect([key, e.id > before, e.action, e.actor, e.ip, e.detail?.status]).toEqual([key, true, route.audit, 'token:admin-token-file', '127.0.0.1', r.status]);
    }
  });

  it('names who did what to what, from where, through the console and with a bearer token', async () => {
    await reporting('dev-audit-1');
    expect((await browser('/v1/admin/devices/dev-audit-1/recheck', { method: 'POST' })).status).toBe(202);
    expect(await newestAudit()).toMatchObject({ actor: 'admin:alice', action: 'device.recheck', target: 'dev-audit-1', ip: '127.0.0.1', detail: { status: 202 } });
    expect((await browser('/v1/admin/devices/dev-audit-1/revoke', { method: 'POST' })).status).toBe(200);
    expect(await newestAudit()).toMatchObject({ actor: 'admin:alice', action: 'device.revoke', target: 'dev-audit-1', detail: { status: 200, ca: 'revoked' } });
    const secret = (await admin('/v1/admin/secrets', { body: { uses: 3, label: 'lab' } })).json as { id: string };
    expect(await newestAudit()).toMatchObject({ actor: 'token:admin-token-file', action: 'secret.create', target: secret.id, detail: { uses: 3, label: 'lab' } });
    const tok = (await browser('/v1/admin/tokens', { body: { scope: 'admin', name: 'ops' } })).json as { id: string; token: string };
    expect(await newestAudit()).toMatchObject({ actor: 'admin:alice', action: 'token.create', target: tok.id, detail: { scope: 'admin', name: 'ops' } });
    // A named API token is named in the log.
    expect((await api(`/v1/admin/secrets/${secret.id}`, { method: 'DELETE', token: tok.token })).status).toBe(204);
    expect(await newestAudit()).toMatchObject({ actor: 'token:ops', action: 'secret.revoke', target: secret.id });
    const policy = { ...defaultPolicyJson, version: 'audit-1' };
    expect((await browser('/v1/admin/policy', { method: 'PUT', body: policy })).status).toBe(200);
    expect(await newestAudit()).toMatchObject({ actor: 'admin:alice', action: 'policy.update', target: 'audit-1' });
    expect((await browser('/v1/admin/devices/dev-audit-1', { method: 'DELETE' })).status).toBe(200);
    expect(await newestAudit()).toMatchObject({ actor: 'admin:alice', action: 'device.remove', target: 'dev-audit-1' });
    // Reads are not logged.
    const newest = (await newestAudit()).id;
    await browser('/v1/admin/devices');
    expect((await newestAudit()).id).toBe(newest);
  });

  it('records sign-ins, failed ones and sign-outs; pages newest first with a cursor', async () => {
    expect((await api('/console/api/session', { body: { name: 'alice', password: 'wrong wrong wrong' } })).status).toBe(401);
    expect(await newestAudit()).toMatchObject({ actor: 'anonymous', action: 'session.signin-failed', target: 'alice', ip: '127.0.0.1' });
    const r = await api('/console/api/session', { body: { name: 'alice', password: PASSWORD }, headers: { 'user-agent': 'test-agent' } });
    expect(await newestAudit()).toMatchObject({ actor: 'admin:alice', action: 'session.signin', detail: { userAgent: 'test-agent' } });
    const value = /^__Host-vigil_session=([^;]+);/.exec(String(r.headers['set-cookie']?.[0]))?.[1] ?? '';
    const csrf = (r.json as { csrf: string }).csrf;
    expect((await api('/console/api/session', { method: 'DELETE', headers: { cookie: `__Host-vigil_session=${value}`, 'x-csrf-token': csrf } })).status).toBe(204);
    expect(await newestAudit()).toMatchObject({ actor: 'admin:alice', action: 'session.signout' });

    const all = ((await browser('/v1/admin/audit?limit=500')).json as { entries: AuditEntry[]; next: string | null });
    expect(all.next).toBeNull();
    const ids = all.entries.map((e) => e.id);
    expect(ids).toEqual([...ids].sort((a, b) => b - a));
    const pages: number[] = [];
    let cursor: string | null = null;
    do {
      const page = (await browser(`/v1/admin/audit?limit=7${cursor === null ? '' : `&cursor=${cursor}`}`)).json as { entries: AuditEntry[]; next: string | null };
      pages.push(...page.entries.map((e) => e.id));
      cursor = page.next;
    } while (cursor !== null);
    expect(pages).toEqual(ids);
    expect((await browser('/v1/admin/audit?cursor=abc')).status).toBe(400);
    expect((await api('/v1/admin/audit')).status).toBe(401);
  });
});

describe('fleet overview and policy preview', () => {
  let fullTls: Issued;
  beforeAll(async () => {
    fullTls = await reporting('ov-full');
    await reporting('ov-limited', ['edr-running']);
    await reporting('ov-blocked', ['disk-encryption', 'edr-running']);
    await reporting('ov-stale');
    await enrolled('ov-enrolled');
    await reporting('ov-revoked', ['firewall']);
    expect((await admin('/v1/admin/devices/ov-revoked/revoke', { method: 'POST' })).status).toBe(200);
    const db = new Database(join(h.config.dataDir, 'control-plane.sqlite'));
    try {
      db.prepare('UPDATE devices SET last_seen = last_seen - ? WHERE id = ?').run(2 * 3_600_000, 'ov-stale');
    } finally {
      db.close();
    }
  });

  it('counts by level, state and OS, set-based; ranks failing checks; keeps hourly history', async () => {
    await h.cp.console.snapshot();
    const r = await browser('/v1/admin/overview');
    expect(r.status).toBe(200);
    const o = r.json as Record<string, unknown> & { history: { at: number }[] };
    expect(o).toMatchObject({
      total: 6,
      byLevel: { full: 1, limited: 1, blocked: 4 },
      stale: 1,
      needsEnrollment: 1,
      revoked: 1,
      byOs: [{ os: 'Debian GNU/Linux 12 (bookworm)', count: 6 }],
      topFailing: [
        { check: 'edr-running', title: 'Antivirus or EDR running', count: 2 },
        { check: 'disk-encryption', title: 'Disk encryption on', count: 1 },
      ],
    });
    const last = o.history.at(-1);
    expect(last).toEqual({ at: Math.floor(Date.now() / 3_600_000) * 3_600_000, full: 1, limited: 1, blocked: 4, stale: 1 });
  });

  it('previews how many devices a stricter draft moves, without saving it', async () => {
    const current = (await admin('/v1/policy')).json as typeof defaultPolicyJson;
    const stricter = { ...current, version: 'preview-strict', checks: { ...current.checks, 'edr-running': 'critical' } };
    const r = await browser('/v1/admin/policy/preview', { body: stricter });
    expect(r.status, r.text).toBe(200);
    expect(r.json).toEqual({
      valid: true,
      current,
      changes: { total: 6, unchanged: 5, toFull: 0, toLimited: 0, toBlocked: 1 },
      examples: [{ id: 'ov-limited', hostname: 'ov-limited', from: 'limited', to: 'blocked' }],
    });
    const looser = { ...current, version: 'preview-loose', checks: { ...current.checks, 'disk-encryption': 'recommended', 'edr-running': 'info' } };
    expect(((await browser('/v1/admin/policy/preview', { body: looser })).json as { changes: unknown }).changes).toEqual({
      total: 6,
      unchanged: 4,
      toFull: 1,
      toLimited: 1,
      toBlocked: 0,
    });
    // Nothing was saved, and a preview is not an action.
    expect(((await admin('/v1/policy')).json as { version: string }).version).toBe(current.version);
    // A device's newer report is read again, not taken from what the previous preview kept.
    const report = sampleReport({ failing: ['edr-running'] });
    const env: ReportEnvelope = { protocolVersion: 1, reportId: randomUUID(), seq: 2, dropped: 0, report };
    expect((await api('/v1/reports', { body: env, tls: fullTls })).status).toBe(200);
    expect(((await browser('/v1/admin/policy/preview', { body: stricter })).json as { changes: unknown }).changes).toEqual({
      total: 6,
      unchanged: 4,
      toFull: 0,
      toLimited: 0,
      toBlocked: 2,
    });
  });

  it('an invalid draft gets the agents\' parser\'s errors with their paths', async () => {
    const r = await browser('/v1/admin/policy/preview', { body: { schemaVersion: 1, name: 'x', version: '', checks: {} } });
    expect(r.status).toBe(400);
    expect(r.json).toEqual({ valid: false, errors: [{ path: 'version', message: 'version: expected a non-empty string, got ""' }] });
    const typo = await browser('/v1/admin/policy/preview', { body: { schemaVersion: 1, name: 'x', version: '2', checks: { 'disk-encryptoin': 'critical' } } });
    expect(typo.status).toBe(400);
    expect(typo.json).toMatchObject({ valid: false, errors: [{ path: 'checks.disk-encryptoin', message: expect.stringContaining('did you mean "disk-encryption"') as unknown }] });
    expect((await browser('/v1/admin/policy/preview', { body: { ...defaultPolicyJson, extra: 1 } })).json).toMatchObject({
      valid: false,
      errors: [{ path: 'extra' }],
    });
  });
});

describe('static console', () => {
  it('serves index.html at /console/ and for client routes, with a strict CSP and no caching', async () => {
    for (const path of ['/console/', '/console/devices/dev-1', '/console/policy']) {
      const r = await api(path);
      expect([path, r.status]).toEqual([path, 200]);
      expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(r.text).toContain('<title>Vigil</title>');
      expect(r.headers['content-security-policy']).toBe(CONSOLE_CSP);
      expect(r.headers['x-content-type-options']).toBe('nosniff');
      expect(r.headers['referrer-policy']).toBe('no-referrer');
      expect(r.headers['cache-control']).toBe('no-store');
    }
    expect(CONSOLE_CSP).toBe(
      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    );
  });

  it('serves the built assets with their types, and nothing outside the build', async () => {
    const js = await api('/console/app.js');
    expect([js.status, js.headers['content-type'], js.text]).toEqual([200, 'text/javascript; charset=utf-8', 'console.log("vigil")']);
    expect(js.headers['content-security-policy']).toBe(CONSOLE_CSP);
    expect((await api('/console/app.css')).headers['content-type']).toBe('text/css; charset=utf-8');
    expect((await api('/console/assets/logo.svg')).headers['content-type']).toBe('image/svg+xml');
    expect((await api('/console/missing.js')).status).toBe(404);
    for (const path of ['/console/../package.json', '/console/%2e%2e/%2e%2e/package.json', '/console/..%2fpackage.json', '/console/.hidden.js']) {
      const r = await api(path);
      expect([path, r.text.includes('"name"')]).toEqual([path, false]);
    }
    expect((await api('/console/api/nothing')).status).toBe(404);
  });

  it('redirects / to /console/', async () => {
    const r = await api('/');
    expect([r.status, r.headers.location]).toEqual([302, '/console/']);
  });

  it('says when the console was not built', async () => {
    const other = await startHarness({}, h.pki, { consoleDir: join(consoleDir, 'nope') });
    try {
      const r = await call(other.pki.rootPem, `${other.cp.url}/console/`);
      expect(r.status).toBe(404);
      expect((r.json as { message: string }).message).toContain('the admin console was not built');
    } finally {
      await other.cp.close();
    }
  });
});
