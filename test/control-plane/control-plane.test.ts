import { randomUUID, X509Certificate } from 'node:crypto';
import { request } from 'node:https';
import { gzipSync } from 'node:zlib';
import { calculateJwkThumbprint, decodeProtectedHeader, importJWK, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteStorage } from '../../src/control-plane/sqlite-storage.js';
import { generateSecret } from '../../src/control-plane/secrets.js';
import { rootFingerprint } from '../../src/control-plane/ott.js';
import { decisionDocumentSchema, deviceListSchema, reportHistorySchema } from '../../src/protocol/admin.js';
import { directivesSchema, enrollResponseSchema, errorBodySchema, reportAckSchema, type ReportEnvelope } from '../../src/protocol/wire.js';
import { ADMIN_TOKEN, startHarness, type Harness } from '../helpers/control-plane.js';
import { call, openSse, type CallOptions } from '../helpers/https.js';
import type { Issued } from '../helpers/pki.js';
import { sampleReport } from '../helpers/report.js';

const FACTS = sampleReport().device;

let h: Harness;
const api = (path: string, o?: CallOptions) => call(h.pki.rootPem, `${h.cp.url}${path}`, o);
const admin = (path: string, o: CallOptions = {}) => api(path, { ...o, token: ADMIN_TOKEN });
const errorOf = (r: { json: unknown }) => errorBodySchema.parse(r.json).error;
const serialOf = (tls: Issued): string => new X509Certificate(tls.certPem).serialNumber.toLowerCase();

async function newSecret(uses = 1): Promise<string> {
  const r = await admin('/v1/admin/secrets', { body: { uses } });
  expect(r.status).toBe(201);
  return (r.json as { secret: string }).secret;
}

/** Enrolls through the API and returns the device's certificate as step-ca would issue it, once confirmed. */
async function enrolledDevice(id: string): Promise<Issued> {
  const r = await api('/v1/enroll', { body: { protocolVersion: 1, enrollmentSecret: await newSecret(), deviceId: id, facts: FACTS } });
  expect(r.status).toBe(200);
  const tls = await h.pki.device(id);
  const confirmed = await api('/v1/enroll/confirm', { method: 'POST', tls });
  expect([confirmed.status, confirmed.json]).toEqual([200, { protocolVersion: 1, deviceId: id }]);
  return tls;
}

function envelope(opts: { seq: number; failing?: string[]; reportId?: string; inResponseTo?: string }): ReportEnvelope {
  return {
    protocolVersion: 1,
    reportId: opts.reportId ?? randomUUID(),
    seq: opts.seq,
    dropped: 0,
    ...(opts.inResponseTo ? { inResponseTo: opts.inResponseTo } : {}),
    report: sampleReport({ failing: opts.failing ?? [] }),
  };
}

/** A POST with a pre-encoded body. */
function rawPost(path: string, body: Buffer, headers: Record<string, string>, tls: Issued): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request(`${h.cp.url}${path}`, {
      method: 'POST',
      ca: h.pki.rootPem,
      cert: tls.certPem,
      key: tls.keyPem,
      agent: false,
      headers: { 'content-type': 'application/json', 'content-length': String(body.length), ...headers },
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode ?? 0, json: text ? (JSON.parse(text) as unknown) : null });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.cp.close();
});

describe('enrollment', () => {
  it('hands out a step-ca OTT whose claims verify with the provisioner public key', async () => {
    const secret = await newSecret(2);
    const r = await api('/v1/enroll', { body: { protocolVersion: 1, enrollmentSecret: secret, deviceId: 'dev-enroll-1', facts: FACTS } });
    expect(r.status).toBe(200);
    const body = enrollResponseSchema.parse(r.json);
    const key = await importJWK(h.provisionerPublicJwk, 'ES256');
    const { payload, protectedHeader } = await jwtVerify(body.ott, key, {
      issuer: 'vigil-enroll',
      audience: 'https://ca.test:9000/1.0/sign',
      subject: 'device-dev-enroll-1',
    });
    expect(protectedHeader.kid).toBe(await calculateJwkThumbprint(h.provisionerPublicJwk));
    expect(decodeProtectedHeader(body.ott).alg).toBe('ES256');
    expect(payload.sans).toEqual(['urn:vigil:device:dev-enroll-1']);
    expect(payload.sha).toBe(rootFingerprint(h.pki.rootPem));
    expect(payload.sha).toBe(body.rootFingerprint);
    expect(payload.exp).toBe((payload.iat ?? 0) + 300);
    expect(payload.nbf).toBe(payload.iat);
    expect(typeof payload.jti).toBe('string');
    expect(body.caUrl).toBe('https://ca.test:9000');
  });

  it('gives a clear error for a wrong, used-up, expired or revoked secret', async () => {
    const enroll = (enrollmentSecret: string, deviceId = 'dev-enroll-2') =>
      api('/v1/enroll', { body: { protocolVersion: 1, enrollmentSecret, deviceId, facts: FACTS } });

    const wrong = await enroll('vges_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
    expect([wrong.status, errorOf(wrong)]).toEqual([401, 'enrollment-secret-invalid']);
    const garbage = await enroll('hunter2');
    expect([garbage.status, errorOf(garbage)]).toEqual([401, 'enrollment-secret-invalid']);
    // A real id with a wrong random part must not reveal anything about that secret's state.
    const real = await newSecret(1);
    const tampered = `${real.slice(0, -4)}AAAA`;
    expect(errorOf(await enroll(tampered))).toBe('enrollment-secret-invalid');

    expect((await enroll(real)).status).toBe(200);
    const used = await enroll(real, 'dev-enroll-3');
    expect([used.status, errorOf(used)]).toEqual([401, 'enrollment-secret-used-up']);

    // Written straight into the database, as `secret create` does, with an expiry in the past.
    const storage = new SqliteStorage(h.config.dataDir);
    const g = generateSecret();
    await storage.createSecret({ id: g.id, hash: g.hash, label: null, createdAt: Date.now() - 10_000, expiresAt: Date.now() - 1000, usesTotal: 5 });
    await storage.close();
    const expired = await enroll(g.secret);
    expect([expired.status, errorOf(expired)]).toEqual([401, 'enrollment-secret-expired']);
    expect((errorBodySchema.parse(expired.json)).message).toMatch(/expired/);

    const revokedSecret = await admin('/v1/admin/secrets', { body: { uses: 3 } });
    const { id, secret } = revokedSecret.json as { id: string; secret: string };
    expect((await admin(`/v1/admin/secrets/${id}`, { method: 'DELETE' })).status).toBe(204);
    const revoked = await enroll(secret);
    expect([revoked.status, errorOf(revoked)]).toEqual([401, 'enrollment-secret-revoked']);
  });

  it('lists secrets without their value', async () => {
    const r = await admin('/v1/admin/secrets');
    expect(r.status).toBe(200);
    expect(r.text).not.toMatch(/vges_/);
  });

  it('rejects a malformed request with bad-request', async () => {
    const r = await api('/v1/enroll', { body: { protocolVersion: 1, enrollmentSecret: 'x', deviceId: 'UPPER CASE', facts: {} } });
    expect([r.status, errorOf(r)]).toEqual([400, 'bad-request']);
  });
});

describe('mTLS and reports', () => {
  let dev: Issued;
  beforeAll(async () => {
    dev = await enrolledDevice('dev-report-1');
  });

  it('stores a report once however often it is retried', async () => {
    const env = envelope({ seq: 1 });
    const first = await api('/v1/reports', { body: env, tls: dev });
    expect(first.status).toBe(200);
    expect(reportAckSchema.parse(first.json)).toMatchObject({ duplicate: false, accessLevel: 'full' });
    const again = await api('/v1/reports', { body: env, tls: dev });
    expect(reportAckSchema.parse(again.json)).toMatchObject({ duplicate: true, reportId: env.reportId });
    const hist = reportHistorySchema.parse((await admin('/v1/admin/devices/dev-report-1/reports')).json);
    expect(hist.reports.filter((r) => r.reportId === env.reportId)).toHaveLength(1);
  });

  it('evaluates with the server policy, not the level the agent claims', async () => {
    const env = envelope({ seq: 2, failing: ['disk-encryption'] });
    env.report.accessLevel = 'full';
    const r = await api('/v1/reports', { body: env, tls: dev });
    expect(reportAckSchema.parse(r.json).accessLevel).toBe('blocked');
  });

  it('refuses a request without a client certificate', async () => {
    const r = await api('/v1/reports', { body: envelope({ seq: 3 }) });
    expect([r.status, errorOf(r)]).toEqual([401, 'client-certificate-required']);
  });

  it('refuses a certificate from another CA', async () => {
    const r = await api('/v1/reports', { body: envelope({ seq: 3 }), tls: await h.pki.device('dev-report-1', { foreign: true }) });
    expect([r.status, errorOf(r)]).toEqual([401, 'client-certificate-rejected']);
  });

  it('refuses an expired certificate', async () => {
    const r = await api('/v1/reports', { body: envelope({ seq: 3 }), tls: await h.pki.device('dev-report-1', { expired: true }) });
    expect([r.status, errorOf(r)]).toEqual([401, 'client-certificate-rejected']);
    expect(errorBodySchema.parse(r.json).message).toMatch(/expired/i);
  });

  it('refuses a valid certificate for a device that never enrolled', async () => {
    const r = await api('/v1/reports', { body: envelope({ seq: 1 }), tls: await h.pki.device('never-enrolled') });
    expect([r.status, errorOf(r)]).toEqual([403, 'device-not-enrolled']);
  });

  it('takes the device from the CN when the certificate has no URI SAN', async () => {
    await enrolledDevice('dev-cn-only');
    const r = await api('/v1/reports', { body: envelope({ seq: 1 }), tls: await h.pki.device('dev-cn-only', { cnOnly: true }) });
    expect(r.status).toBe(200);
  });

  it('refuses a revoked device and closes its directive stream', async () => {
    const victim = await enrolledDevice('dev-revoked');
    expect((await api('/v1/reports', { body: envelope({ seq: 1 }), tls: victim })).status).toBe(200);
    const stream = openSse(h.pki.rootPem, `${h.cp.url}/v1/directives/stream`, { tls: victim });
    expect(await stream.ready).toBe(200);
    await stream.next((e) => e.event === 'directives');
    const revoke = await admin('/v1/admin/devices/dev-revoked/revoke', { method: 'POST' });
    expect([revoke.status, revoke.json]).toEqual([200, { ca: 'revoked' }]);
    // The certificate the device held, at the CA too.
    expect(h.caRevoked).toContain(serialOf(victim));
    const r = await api('/v1/reports', { body: envelope({ seq: 2 }), tls: victim });
    expect([r.status, errorOf(r)]).toEqual([403, 'device-revoked']);
    await expect.poll(() => stream.closed, { timeout: 3000 }).toBe(true);
    const decision = decisionDocumentSchema.parse((await admin('/v1/decision/dev-revoked')).json);
    expect(decision.device).toMatchObject({ state: 'revoked', compliant: false, access_level: 'blocked' });
    // Re-enrolling a revoked device is refused even with a good secret.
    const again = await api('/v1/enroll', { body: { protocolVersion: 1, enrollmentSecret: await newSecret(), deviceId: 'dev-revoked', facts: FACTS } });
    expect([again.status, errorOf(again)]).toEqual([403, 'device-revoked']);
    expect(errorBodySchema.parse(again.json).message).toContain('vigil-control-plane device readmit dev-revoked');
  });

  it('accepts a gzip body, and stops a compression bomb at the body limit', async () => {
    const env = envelope({ seq: 10 });
    const ok = await rawPost('/v1/reports', gzipSync(JSON.stringify(env)), { 'content-encoding': 'gzip' }, dev);
    expect(ok.status).toBe(200);
    const bomb = gzipSync(JSON.stringify({ ...envelope({ seq: 11 }), padding: ' '.repeat(20 * 1024 * 1024) }));
    expect(bomb.length).toBeLessThan(100 * 1024);
    const r = await rawPost('/v1/reports', bomb, { 'content-encoding': 'gzip' }, dev);
    expect([r.status, errorOf(r)]).toEqual([413, 'payload-too-large']);
    const br = await rawPost('/v1/reports', Buffer.from('x'), { 'content-encoding': 'br' }, dev);
    expect(br.status).toBe(415);
  });

  it('rejects an oversized body with payload-too-large', async () => {
    const env = envelope({ seq: 9 });
    const r = await api('/v1/reports', { body: { ...env, padding: 'x'.repeat(600 * 1024) }, tls: dev });
    expect([r.status, errorOf(r)]).toEqual([413, 'payload-too-large']);
  });
});

describe('admin API', () => {
  it('requires the admin token', async () => {
    const none = await api('/v1/admin/devices');
    expect([none.status, errorOf(none)]).toEqual([401, 'unauthorized']);
    const wrong = await api('/v1/admin/devices', { token: 'not-the-token' });
    expect([wrong.status, errorOf(wrong)]).toEqual([401, 'unauthorized']);
  });

  it('lists devices and shows one with its latest posture', async () => {
    await enrolledDevice('dev-admin-1');
    const list = deviceListSchema.parse((await admin('/v1/admin/devices')).json);
    expect(list.devices.find((d) => d.id === 'dev-admin-1')).toMatchObject({ state: 'enrolled', accessLevel: 'blocked', hostname: 'ws-0142' });
    const detail = await admin('/v1/admin/devices/dev-admin-1');
    expect(detail.status).toBe(200);
    expect((await admin('/v1/admin/devices/nope')).status).toBe(404);
  });

  it('a device may read its own decision but not another device’s', async () => {
    const dev = await enrolledDevice('dev-admin-2');
    expect((await api('/v1/decision/dev-admin-2', { tls: dev })).status).toBe(200);
    const other = await api('/v1/decision/dev-admin-1', { tls: dev });
    expect([other.status, errorOf(other)]).toEqual([403, 'forbidden']);
  });
});

describe('continuous access evaluation', () => {
  it('the decision API and the event stream follow access-level changes', async () => {
    const dev = await enrolledDevice('dev-cae-1');
    const events = openSse(h.pki.rootPem, `${h.cp.url}/v1/events`, { token: ADMIN_TOKEN });
    expect(await events.ready).toBe(200);

    await api('/v1/reports', { body: envelope({ seq: 1 }), tls: dev });
    const up = await events.next((e) => (e.data as { device: string; current: string }).device === 'dev-cae-1' && (e.data as { current: string }).current === 'full');
    expect(up.data).toMatchObject({ previous: 'blocked', compliant: true, state: 'active', cause: 'report' });
    let d = decisionDocumentSchema.parse((await admin('/v1/decision/dev-cae-1')).json);
    expect(d.device).toMatchObject({ id: 'dev-cae-1', compliant: true, access_level: 'full', state: 'active' });
    expect(d.device.checks['disk-encryption']).toEqual({ status: 'pass', severity: 'critical' });
    expect(d.device.cert?.subject).toContain('device-dev-cae-1');

    await api('/v1/reports', { body: envelope({ seq: 2, failing: ['disk-encryption'] }), tls: dev });
    const down = await events.next((e) => (e.data as { device: string; current: string }).device === 'dev-cae-1' && (e.data as { current: string }).current === 'blocked');
    expect(down.data).toMatchObject({ previous: 'full', compliant: false });
    d = decisionDocumentSchema.parse((await admin('/v1/decision/dev-cae-1')).json);
    expect(d.device).toMatchObject({ compliant: false, access_level: 'blocked' });
    expect(d.device.checks['disk-encryption']?.status).toBe('fail');

    // A reconnecting subscriber catches up from Last-Event-ID.
    const replay = openSse(h.pki.rootPem, `${h.cp.url}/v1/events`, { token: ADMIN_TOKEN, headers: { 'last-event-id': up.id ?? '0' } });
    await replay.next((e) => e.id === down.id);
    replay.close();
    events.close();
  });

  it('pushes a policy change to connected devices and re-evaluates them', async () => {
    const dev = await enrolledDevice('dev-policy-1');
    await api('/v1/reports', { body: envelope({ seq: 1, failing: ['firewall'] }), tls: dev });
    expect(decisionDocumentSchema.parse((await admin('/v1/decision/dev-policy-1')).json).device.access_level).toBe('limited');

    const stream = openSse(h.pki.rootPem, `${h.cp.url}/v1/directives/stream`, { tls: dev });
    const initial = directivesSchema.parse((await stream.next((e) => e.event === 'directives')).data);
    const pol = await api('/v1/policy', { tls: dev });
    expect(pol.status).toBe(200);
    const etag = pol.headers.etag;
    expect(typeof etag).toBe('string');
    expect((pol.json as { version: string }).version).toBe(initial.policyVersion);
    expect((await api('/v1/policy', { tls: dev, headers: { 'if-none-match': String(etag) } })).status).toBe(304);

    const next = { ...(pol.json as Record<string, unknown>), version: '2026.12.1', checks: { ...(pol.json as { checks: Record<string, string> }).checks, firewall: 'info' } };
    const bad = await admin('/v1/admin/policy', { method: 'PUT', body: { ...next, checks: { firewall: 'mandatory' } } });
    expect([bad.status, errorOf(bad)]).toEqual([400, 'bad-request']);
    const reuse = await admin('/v1/admin/policy', { method: 'PUT', body: { ...next, version: initial.policyVersion } });
    expect([reuse.status, errorOf(reuse)]).toEqual([409, 'conflict']);
    expect((await admin('/v1/admin/policy', { method: 'PUT', body: next })).status).toBe(200);

    const pushed = await stream.next((e) => directivesSchema.parse(e.data).policyVersion === '2026.12.1', 3000);
    expect(pushed.event).toBe('directives');
    const fresh = await api('/v1/policy', { tls: dev, headers: { 'if-none-match': String(etag) } });
    expect(fresh.status).toBe(200);
    expect(fresh.headers['vigil-policy-version']).toBe('2026.12.1');
    expect(decisionDocumentSchema.parse((await admin('/v1/decision/dev-policy-1')).json).device.access_level).toBe('full');
    stream.close();
  });

  it('delivers a re-check request over the directive stream within seconds', async () => {
    const dev = await enrolledDevice('dev-recheck-1');
    const stream = openSse(h.pki.rootPem, `${h.cp.url}/v1/directives/stream`, { tls: dev });
    await stream.next((e) => e.event === 'directives');
    const t0 = Date.now();
    const r = await admin('/v1/admin/devices/dev-recheck-1/recheck', { method: 'POST' });
    expect(r.status).toBe(202);
    const { requestId } = r.json as { requestId: string };
    const got = await stream.next((e) => directivesSchema.parse(e.data).recheck?.requestId === requestId, 3000);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(got.event).toBe('directives');
    // The report that answers it clears the request.
    const ack = reportAckSchema.parse((await api('/v1/reports', { body: envelope({ seq: 1, inResponseTo: requestId }), tls: dev })).json);
    expect(ack.directives.recheck).toBeNull();
    stream.close();
  });
});

describe('staleness', () => {
  it('a device silent longer than allowed becomes stale and non-compliant', async () => {
    const short = await startHarness({ maxReportAgeSeconds: 1 }, h.pki);
    try {
      const call2 = (path: string, o: CallOptions = {}) => call(h.pki.rootPem, `${short.cp.url}${path}`, o);
      const secret = (await call2('/v1/admin/secrets', { body: {}, token: ADMIN_TOKEN })).json as { secret: string };
      await call2('/v1/enroll', { body: { protocolVersion: 1, enrollmentSecret: secret.secret, deviceId: 'dev-stale-1', facts: FACTS } });
      const dev = await h.pki.device('dev-stale-1');
      const events = openSse(h.pki.rootPem, `${short.cp.url}/v1/events`, { token: ADMIN_TOKEN });
      await events.ready;
      await call2('/v1/reports', { body: envelope({ seq: 1 }), tls: dev });
      await events.next((e) => (e.data as { current: string }).current === 'full');
      const stale = await events.next((e) => (e.data as { state: string }).state === 'stale', 4000);
      expect(stale.data).toMatchObject({ device: 'dev-stale-1', previous: 'full', current: 'blocked', compliant: false, cause: 'stale' });
      const d = decisionDocumentSchema.parse((await call2('/v1/decision/dev-stale-1', { token: ADMIN_TOKEN })).json);
      expect(d.device).toMatchObject({ state: 'stale', compliant: false, access_level: 'blocked' });
      // Reporting again brings it back.
      await call2('/v1/reports', { body: envelope({ seq: 2 }), tls: dev });
      const back = decisionDocumentSchema.parse((await call2('/v1/decision/dev-stale-1', { token: ADMIN_TOKEN })).json);
      expect(back.device).toMatchObject({ state: 'active', compliant: true });
      events.close();
    } finally {
      await short.cp.close();
    }
  });
});

describe('enrollment rate limit', () => {
  it('answers 429 with Retry-After once the burst is spent', async () => {
    const limited = await startHarness({ enrollBurst: 2, enrollPerMinute: 1 }, h.pki);
    try {
      const body = { protocolVersion: 1, enrollmentSecret: 'nope', deviceId: 'dev-rl-1', facts: FACTS };
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await call(h.pki.rootPem, `${limited.cp.url}/v1/enroll`, { body })).status);
      expect(statuses).toEqual([401, 401, 429, 429]);
      const r = await call(h.pki.rootPem, `${limited.cp.url}/v1/enroll`, { body });
      expect(Number(r.headers['retry-after'])).toBeGreaterThan(0);
    } finally {
      await limited.cp.close();
    }
  });

  it('lets a whole office behind one address enroll with one secret, and limits per secret and per device instead', async () => {
    const office = await startHarness({ enrollBurst: 2, enrollPerMinute: 1, enrollPerSecretPerMinute: 30, enrollPerDevicePerMinute: 2 }, h.pki);
    try {
      const enroll = (secret: string, deviceId: string) =>
        call(h.pki.rootPem, `${office.cp.url}/v1/enroll`, { body: { protocolVersion: 1, enrollmentSecret: secret, deviceId, facts: FACTS } });
      const secret = ((await call(h.pki.rootPem, `${office.cp.url}/v1/admin/secrets`, { body: { uses: 100 }, token: ADMIN_TOKEN })).json as { secret: string }).secret;
      // 25 laptops from 127.0.0.1, far past the per-address burst of 2.
      const statuses = [];
      for (let i = 0; i < 25; i++) statuses.push((await enroll(secret, `dev-office-${i}`)).status);
      expect(statuses).toEqual(Array<number>(25).fill(200));
      // One device ID over and over: limited for that ID, with when to retry.
      expect((await enroll(secret, 'dev-office-0')).status).toBe(200);
      const again = await enroll(secret, 'dev-office-0');
      expect([again.status, errorOf(again)]).toEqual([429, 'rate-limited']);
      expect(errorBodySchema.parse(again.json).message).toMatch(/^too many enrollments for device dev-office-0; retry in \d+ s$/);
      expect(Number(again.headers['retry-after'])).toBeGreaterThan(0);
      // The secret itself: 30 a minute.
      const more = [];
      for (let i = 25; i < 32; i++) more.push((await enroll(secret, `dev-office-${i}`)).status);
      expect(more.filter((s) => s === 429).length).toBeGreaterThan(0);
      expect(errorBodySchema.parse((await enroll(secret, 'dev-office-99')).json).message).toMatch(/too many enrollments with this enrollment secret; retry in \d+ s/);
    } finally {
      await office.cp.close();
    }
  });
});
