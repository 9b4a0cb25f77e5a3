import { execFile } from 'node:child_process';
import { randomUUID, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTROL_PLANE_CLI } from '../harness/control-plane.js';
import { accessLevelEventSchema, apiTokenCreateResponseSchema, apiTokenListSchema, decisionDocumentSchema, deviceListSchema } from '../../src/protocol/admin.js';
import { errorBodySchema, type ReportEnvelope } from '../../src/protocol/wire.js';
import { ADMIN_TOKEN, startHarness, type Harness } from '../helpers/control-plane.js';
import { call, openSse, type CallOptions } from '../helpers/https.js';
import type { Issued } from '../helpers/pki.js';
import { sampleReport } from '../helpers/report.js';

const execFileP = promisify(execFile);

let h: Harness;
const api = (path: string, o?: CallOptions) => call(h.pki.rootPem, `${h.cp.url}${path}`, o);
const admin = (path: string, o: CallOptions = {}) => api(path, { ...o, token: ADMIN_TOKEN });
const errorOf = (r: { json: unknown }) => errorBodySchema.parse(r.json).error;
const fingerprintOf = (tls: Issued): string => new X509Certificate(tls.certPem).fingerprint256.replaceAll(':', '').toLowerCase();

const envelope = (seq: number, report = sampleReport()): ReportEnvelope => ({ protocolVersion: 1, reportId: randomUUID(), seq, dropped: 0, report });

async function enrolledDevice(id: string): Promise<Issued> {
  const secret = (await admin('/v1/admin/secrets', { body: {} })).json as { secret: string };
  expect((await api('/v1/enroll', { body: { protocolVersion: 1, enrollmentSecret: secret.secret, deviceId: id, facts: sampleReport().device } })).status).toBe(200);
  const tls = await h.pki.device(id);
  expect((await api('/v1/enroll/confirm', { method: 'POST', tls })).status).toBe(200);
  return tls;
}

async function newToken(scope: 'admin' | 'gateway', name: string) {
  const r = await admin('/v1/admin/tokens', { body: { scope, name } });
  expect(r.status, JSON.stringify(r.json)).toBe(201);
  return apiTokenCreateResponseSchema.parse(r.json);
}

beforeAll(async () => {
  h = await startHarness({ adminAuthFailuresPerMinute: 1000 });
});
afterAll(async () => {
  await h.cp.close();
});

describe('scoped API tokens', () => {
  it('a gateway token reads events, devices and decisions, and nothing else', async () => {
    const gw = await newToken('gateway', 'gw-1.example.com');
    expect(gw.token).toMatch(/^vgt_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    await enrolledDevice('dev-tok-1');
    expect((await api('/v1/admin/devices', { token: gw.token })).status).toBe(200);
    expect((await api('/v1/decision/dev-tok-1', { token: gw.token })).status).toBe(200);
    const events = openSse(h.pki.rootPem, `${h.cp.url}/v1/events`, { token: gw.token });
    expect(await events.ready).toBe(200);
    events.close();
    for (const [path, o] of [
      ['/v1/admin/secrets', { body: {} }],
      ['/v1/admin/secrets', {}],
      ['/v1/admin/tokens', {}],
      ['/v1/admin/tokens', { body: { scope: 'admin', name: 'escalate' } }],
      ['/v1/admin/devices/dev-tok-1', {}],
      ['/v1/admin/devices/dev-tok-1/revoke', { method: 'POST' }],
      ['/v1/policy', {}],
    ] as const) {
      const r = await api(path, { ...o, token: gw.token });
      expect([path, r.status, errorOf(r)]).toEqual([path, 403, 'forbidden']);
    }
  });

  it('an admin-scoped token does what the admin token does; tokens are listed without their value and stored hashed', async () => {
    const ad = await newToken('admin', 'ops laptop');
    expect((await api('/v1/admin/secrets', { body: {}, token: ad.token })).status).toBe(201);
    const list = apiTokenListSchema.parse((await admin('/v1/admin/tokens')).json);
    expect(list.tokens.find((t) => t.id === ad.id)).toEqual({ id: ad.id, name: 'ops laptop', scope: 'admin', createdAt: ad.createdAt, revokedAt: null });
    expect(JSON.stringify(list)).not.toContain(ad.token);
    const db = new Database(join(h.config.dataDir, 'control-plane.sqlite'), { readonly: true });
    try {
      const row = db.prepare<[string], { hash: Buffer }>('SELECT hash FROM api_tokens WHERE id = ?').get(ad.id);
      expect(row?.hash.length).toBe(32);
      expect(JSON.stringify(db.prepare('SELECT * FROM api_tokens').all())).not.toContain(ad.token.slice(22));
    } finally {
      db.close();
    }
  });

  it('a revoked token is refused and its event stream ends at once', async () => {
    const gw = await newToken('gateway', 'gw-2');
    const events = openSse(h.pki.rootPem, `${h.cp.url}/v1/events`, { token: gw.token });
    expect(await events.ready).toBe(200);
    expect((await admin(`/v1/admin/tokens/${gw.id}`, { method: 'DELETE' })).status).toBe(204);
    await expect.poll(() => events.closed, { timeout: 3000 }).toBe(true);
    const r = await api('/v1/admin/devices', { token: gw.token });
    expect([r.status, errorOf(r)]).toEqual([401, 'unauthorized']);
    expect((r.json as { message: string }).message).toBe('the API token was revoked');
    expect((await admin(`/v1/admin/tokens/${gw.id}`, { method: 'DELETE' })).status).toBe(404);
    const wrong = await api('/v1/admin/tokens', { body: { scope: 'root', name: '' }, token: ADMIN_TOKEN });
    expect(wrong.status).toBe(400);
    expect((wrong.json as { message: string }).message).toMatch(/^scope: .*"admin".*"gateway"; name: /);
  });

  it('events and the device list carry the current certificate, OS and managed flag; a renewal alone is announced', async () => {
    const dev = await enrolledDevice('dev-tok-cert');
    const events = openSse(h.pki.rootPem, `${h.cp.url}/v1/events`, { token: ADMIN_TOKEN });
    expect(await events.ready).toBe(200);
    expect((await api('/v1/reports', { body: envelope(1), tls: dev })).status).toBe(200);
    const first = accessLevelEventSchema.parse((await events.next((e) => (e.data as { device: string; current: string }).device === 'dev-tok-cert' && (e.data as { current: string }).current === 'full')).data);
    expect(first.cert?.fingerprint_sha256).toBe(fingerprintOf(dev));
    expect(first.os).toEqual({ platform: 'linux', id: sampleReport().device.os.id, name: sampleReport().device.os.name, version: sampleReport().device.os.version });
    expect(first.managed).toBe(false);

    // The device renews: same level and state, new certificate. Gateways must learn it, or they refuse it.
    const renewed = await h.pki.device('dev-tok-cert');
    expect((await api('/v1/reports', { body: envelope(2), tls: renewed })).status).toBe(200);
    const second = accessLevelEventSchema.parse((await events.next((e) => (e.data as { cert?: { fingerprint_sha256: string } }).cert?.fingerprint_sha256 === fingerprintOf(renewed))).data);
    expect(second).toMatchObject({ device: 'dev-tok-cert', previous: 'full', current: 'full', cause: 'report' });

    // A report whose mdm-enrolled check passes makes the device managed.
    const managed = sampleReport();
    const template = managed.results[0];
    if (!template) throw new Error('sampleReport has no results');
    managed.results.push({ ...template, id: 'mdm-enrolled', title: 'Managed by your organisation', status: 'pass', severity: 'info' });
    expect((await api('/v1/reports', { body: envelope(3, managed), tls: renewed })).status).toBe(200);
    await events.next((e) => (e.data as { device: string; managed?: boolean }).device === 'dev-tok-cert' && (e.data as { managed?: boolean }).managed === true);
    const listed = deviceListSchema.parse((await admin('/v1/admin/devices')).json).devices.find((d) => d.id === 'dev-tok-cert');
    expect(listed).toMatchObject({ managed: true, cert: { fingerprint_sha256: fingerprintOf(renewed) }, os: { platform: 'linux' } });
    const d = decisionDocumentSchema.parse((await admin('/v1/decision/dev-tok-cert')).json).device;
    expect(d).toMatchObject({ managed: true, cert: { fingerprint_sha256: fingerprintOf(renewed) }, os: { id: sampleReport().device.os.id } });
    // The same report again changes nothing, so nothing more is announced.
    const count = events.events.length;
    expect((await api('/v1/reports', { body: envelope(4, managed), tls: renewed })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 300));
    expect(events.events.slice(count).filter((e) => e.event === 'access-level')).toEqual([]);
    events.close();
  });
});

describe.skipIf(!existsSync(CONTROL_PLANE_CLI))('vigil-control-plane token (built CLI)', () => {
  it('creates, lists and revokes tokens; bad arguments get one line naming the flag', async () => {
    const dataDir = h.config.dataDir;
    const cli = (...args: string[]) => execFileP(process.execPath, [CONTROL_PLANE_CLI, 'token', ...args, '--data-dir', dataDir]);
    const { stdout, stderr } = await cli('create', '--scope', 'gateway', '--name', 'gw-cli');
    const token = stdout.trim();
    expect(token).toMatch(/^vgt_/);
    const id = /^token ([0-9a-f]{16}) \(gateway, "gw-cli"\)/.exec(stderr)?.[1] ?? '';
    expect(id).not.toBe('');
    // Created on the database by the CLI, honoured by the running server at once.
    expect((await api('/v1/admin/devices', { token })).status).toBe(200);
    const listed = apiTokenListSchema.parse(JSON.parse((await cli('list', '--json')).stdout));
    expect(listed.tokens.find((t) => t.id === id)).toMatchObject({ scope: 'gateway', name: 'gw-cli', revokedAt: null });
    expect((await cli('list')).stdout).toMatch(new RegExp(`^${id}\\s+gateway\\s+gw-cli\\s`, 'm'));
    expect((await cli('revoke', id)).stdout).toBe(`token ${id}: revoked\n`);
    expect((await api('/v1/admin/devices', { token })).status).toBe(401);

    const bad = await cli('create', '--scope', 'root', '--name', 'x').catch((e: unknown) => e as { stderr: string; code: number });
    expect('code' in bad && bad.code).not.toBe(0);
    expect(bad.stderr.trim().split('\n')[0]).toMatch(/--scope.*root.*admin, gateway/);
    const badId = await cli('revoke', 'nope').catch((e: unknown) => e as { stderr: string });
    expect(badId.stderr).toBe('vigil-control-plane: token revoke nope: expected the 16-hex-digit ID that token list shows\n');
    expect(await readFile(join(dataDir, 'control-plane.sqlite')).then((b) => b.includes(Buffer.from(token)))).toBe(false);
  }, 30_000);
});
