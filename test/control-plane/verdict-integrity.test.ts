import { randomUUID, X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decisionDocumentSchema, deviceDetailSchema } from '../../src/protocol/admin.js';
import { errorBodySchema, reportAckSchema, type ReportEnvelope } from '../../src/protocol/wire.js';
import { startControlPlane } from '../../src/control-plane/server.js';
import { ADMIN_TOKEN, prepare, restartHarness, startHarness, type Harness } from '../helpers/control-plane.js';
import { capturingLogger } from '../helpers/logger.js';
import { call, openSse, type CallOptions } from '../helpers/https.js';
import type { Issued } from '../helpers/pki.js';
import { sampleReport } from '../helpers/report.js';

/*
 * The server's verdict against a client that lies: the control plane in process, over real mTLS with
 * certificates from a test CA. The same attacks run against step-ca and the agent in
 * test/e2e/verdict-integrity.e2e.test.ts.
 */

const FACTS = sampleReport().device;
let h: Harness;
const api = (path: string, o?: CallOptions) => call(h.pki.rootPem, `${h.cp.url}${path}`, o);
const admin = (path: string, o: CallOptions = {}) => api(path, { ...o, token: ADMIN_TOKEN });
const error = (r: { json: unknown }) => errorBodySchema.parse(r.json);
const serialOf = (tls: Issued): string => new X509Certificate(tls.certPem).serialNumber.toLowerCase();
const decision = async (id: string) => decisionDocumentSchema.parse((await admin(`/v1/decision/${id}`)).json).device;

async function newSecret(uses = 1): Promise<{ id: string; secret: string }> {
  const r = await admin('/v1/admin/secrets', { body: { uses } });
  expect(r.status).toBe(201);
  return r.json as { id: string; secret: string };
}

const usesLeft = async (id: string): Promise<number | undefined> =>
  ((await admin('/v1/admin/secrets')).json as { secrets: { id: string; usesLeft: number }[] }).secrets.find((s) => s.id === id)?.usesLeft;

const enrollBody = (secret: string, deviceId: string, hostname = FACTS.hostname) => ({
  protocolVersion: 1,
  enrollmentSecret: secret,
  deviceId,
  facts: { ...FACTS, hostname },
});

async function enrolled(id: string): Promise<Issued> {
  const r = await api('/v1/enroll', { body: enrollBody((await newSecret()).secret, id) });
  expect(r.status, r.text).toBe(200);
  const tls = await h.pki.device(id);
  expect((await api('/v1/enroll/confirm', { method: 'POST', tls })).status).toBe(200);
  return tls;
}

function envelope(seq: number, report = sampleReport()): ReportEnvelope {
  return { protocolVersion: 1, reportId: randomUUID(), seq, dropped: 0, report };
}

const post = async (tls: Issued, env: ReportEnvelope) => {
  const r = await api('/v1/reports', { body: env, tls });
  expect(r.status, r.text).toBe(200);
  return reportAckSchema.parse(r.json);
};

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.cp.close();
});

describe('the server evaluates what the report contains, not what it claims', () => {
  it('a report that leaves out critical checks is not compliant: the missing ones are unknown', async () => {
    const dev = await enrolled('dev-forged-1');
    const honest = sampleReport();
    const forged = {
      ...honest,
      accessLevel: 'full' as const,
      reasons: [],
      results: honest.results.filter((r) => r.id !== 'disk-encryption' && r.id !== 'os-patched'),
    };
    const ack = await post(dev, envelope(1, forged));
    expect(ack.accessLevel).toBe('limited');
    const d = await decision('dev-forged-1');
    expect(d).toMatchObject({ compliant: false, access_level: 'limited' });
    expect(d.checks['disk-encryption']).toEqual({ status: 'unknown', severity: 'critical', reason: 'not in the report' });
    expect(d.checks['os-patched']?.status).toBe('unknown');
    // A stricter policy makes the same report block.
    const pol = (await admin('/v1/policy')).json as Record<string, unknown>;
    expect((await admin('/v1/admin/policy', { method: 'PUT', body: { ...pol, version: 'strict-1', unknownOnCritical: 'blocked' } })).status).toBe(200);
    expect(await decision('dev-forged-1')).toMatchObject({ compliant: false, access_level: 'blocked' });
    expect((await admin('/v1/admin/policy', { method: 'PUT', body: { ...pol, version: 'strict-2' } })).status).toBe(200);
  });

  it('a report claiming another platform is still held to the checks of the platform the device enrolled with', async () => {
    const dev = await enrolledDevice();
    const honest = sampleReport();
    // Claims to be a Mac and sends only checks that pass; Linux's critical checks are still expected.
    const darwin = { ...honest, device: { ...honest.device, platform: 'darwin' as const }, results: honest.results.filter((r) => r.id === 'firewall') };
    expect((await post(dev.tls, envelope(1, darwin))).accessLevel).not.toBe('full');
  });

  async function enrolledDevice(): Promise<{ id: string; tls: Issued }> {
    const id = `dev-${randomUUID().slice(0, 8)}`;
    return { id, tls: await enrolled(id) };
  }
});

describe('the sequence is the agent’s claim, not the order of truth', () => {
  it('a report with a seq far ahead does not pin the verdict: the newest report received decides, and the jump is counted', async () => {
    const dev = await enrolled('dev-seq-1');
    await post(dev, envelope(1));
    expect((await decision('dev-seq-1')).access_level).toBe('full');
    // The jump: compliant, far ahead.
    const jump = await post(dev, envelope(1_000_000_000));
    expect(jump.previousSeq).toBe(1);
    // The real agent carries on at 2 with a failing disk: the verdict follows it.
    const real = await post(dev, envelope(2, sampleReport({ failing: ['disk-encryption'] })));
    expect(real.previousSeq).toBe(1_000_000_000);
    expect(real.accessLevel).toBe('blocked');
    expect(await decision('dev-seq-1')).toMatchObject({ compliant: false, access_level: 'blocked' });
    const detail = deviceDetailSchema.parse((await admin('/v1/admin/devices/dev-seq-1')).json);
    expect(detail.device).toMatchObject({ lastSeq: 2, seqAnomalies: 2 });
    // History in the order received.
    const history = (await admin('/v1/admin/devices/dev-seq-1/reports')).json as { reports: { seq: number }[] };
    expect(history.reports.map((r) => r.seq)).toEqual([2, 1_000_000_000, 1]);
  });

  it('an agent whose sequence restarted at 0 (lost or restored state) still moves the verdict', async () => {
    const dev = await enrolled('dev-seq-2');
    for (let seq = 0; seq < 5; seq++) await post(dev, envelope(seq, sampleReport({ failing: ['firewall'] })));
    expect((await decision('dev-seq-2')).access_level).toBe('limited');
    const ack = await post(dev, envelope(0));
    // The ack tells the agent where the server was, so that it can notice and say so.
    expect(ack.previousSeq).toBe(4);
    expect(await decision('dev-seq-2')).toMatchObject({ compliant: true, access_level: 'full' });
  });
});

describe('the log of sequence anomalies', () => {
  it('is kept short: a device whose every report jumps is logged at its 1st, 2nd, 4th, 8th... anomaly', async () => {
    const { logger, records } = capturingLogger();
    const p = await prepare({}, h.pki);
    const cp = await startControlPlane(p.config, { logger, revokeAtCa: () => Promise.resolve('revoked') });
    try {
      const call2 = (path: string, o: CallOptions = {}) => call(h.pki.rootPem, `${cp.url}${path}`, o);
      const { secret } = (await call2('/v1/admin/secrets', { body: { uses: 1 }, token: ADMIN_TOKEN })).json as { secret: string };
      expect((await call2('/v1/enroll', { body: enrollBody(secret, 'dev-noisy-1') })).status).toBe(200);
      const tls = await h.pki.device('dev-noisy-1');
      // Ten reports, each ten ahead of the last: nine anomalies.
      for (let i = 0; i < 10; i++) expect((await call2('/v1/reports', { body: envelope(i * 10), tls })).status).toBe(200);
      const logged = records.filter((r) => r.message === 'report sequence jumped').map((r) => r.anomalies);
      expect(logged).toEqual([1, 2, 4, 8]);
    } finally {
      await cp.close();
    }
  });
});

describe('one policy parser', () => {
  it('refuses an unknown check id with the words an agent uses, and changes nothing', async () => {
    const before = (await admin('/v1/policy')).json as { version: string; checks: Record<string, string> };
    const events = openSse(h.pki.rootPem, `${h.cp.url}/v1/events`, { token: ADMIN_TOKEN });
    await events.ready;
    const r = await admin('/v1/admin/policy', { method: 'PUT', body: { ...before, version: 'typo-1', checks: { 'disk-encrypted': 'critical' } } });
    expect(r.status).toBe(400);
    expect(error(r)).toEqual({
      error: 'bad-request',
      message: 'policy: checks.disk-encrypted: unknown check id (did you mean "disk-encryption"?); see `vigil checks`',
    });
    expect(((await admin('/v1/policy')).json as { version: string }).version).toBe(before.version);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(events.events.filter((e) => e.event === 'access-level' && (e.data as { cause: string }).cause === 'policy')).toEqual([]);
    events.close();
  });
});

describe('enrollment cannot take over a device', () => {
  it('refuses an enrolled ID without proof, spends no use of the secret, and leaves the device as it was', async () => {
    const victim = await enrolled('dev-victim-1');
    await post(victim, envelope(1));
    const s = await newSecret(3);
    const r = await api('/v1/enroll', { body: enrollBody(s.secret, 'dev-victim-1', 'attacker-box') });
    expect(r.status).toBe(409);
    expect(error(r).message).toContain('vigil-control-plane device allow-reenroll dev-victim-1');
    expect(await usesLeft(s.id)).toBe(3);
    const detail = deviceDetailSchema.parse((await admin('/v1/admin/devices/dev-victim-1')).json);
    expect(detail.device).toMatchObject({ hostname: FACTS.hostname, state: 'active' });
    // A certificate of another device is no proof either.
    const other = await enrolled('dev-other-1');
    expect((await api('/v1/enroll', { body: enrollBody(s.secret, 'dev-victim-1'), tls: other })).status).toBe(409);
  });

  it('the device itself re-enrolls with its current certificate, even an expired one; the old certificate is then refused', async () => {
    const dev = await enrolled('dev-self-1');
    await post(dev, envelope(1));
    const expired = await h.pki.device('dev-self-1', { expired: true });
    // The server last saw `dev`; any certificate of this device from our CA proves the key over TLS.
    const r = await api('/v1/enroll', { body: enrollBody((await newSecret()).secret, 'dev-self-1'), tls: expired });
    expect(r.status, r.text).toBe(200);
    const fresh = await h.pki.device('dev-self-1');
    await post(fresh, envelope(0));
    expect((await decision('dev-self-1')).compliant).toBe(true);
    // Once the new certificate is in use, the one the server knew is replaced: refused here, revoked at the CA.
    await expect.poll(() => h.caRevoked).toContain(serialOf(dev));
    const old = await api('/v1/reports', { body: envelope(2), tls: dev });
    expect([old.status, error(old).error]).toEqual([403, 'device-revoked']);
  });

  it('an admin can allow one re-enrollment without proof (a reinstalled laptop that lost its key)', async () => {
    const dev = await enrolled('dev-reinstall-1');
    await post(dev, envelope(1));
    expect((await admin('/v1/admin/devices/dev-reinstall-1/allow-reenroll', { method: 'POST' })).status).toBe(204);
    expect((await api('/v1/enroll', { body: enrollBody((await newSecret()).secret, 'dev-reinstall-1') })).status).toBe(200);
    await post(await h.pki.device('dev-reinstall-1'), envelope(0));
    // Used up: the next one needs proof or permission again.
    expect((await api('/v1/enroll', { body: enrollBody((await newSecret()).secret, 'dev-reinstall-1') })).status).toBe(409);
  });
});

describe('revocation', () => {
  it('a device whose renewal the CA refused says so, and is revoked: its decision is not compliant and it cannot report', async () => {
    const dev = await enrolled('dev-carevoked-1');
    await post(dev, envelope(1));
    const other = await enrolled('dev-carevoked-2');
    // It can only speak for the certificate on its own connection.
    const wrong = await api('/v1/identity/revoked', { tls: other, body: { protocolVersion: 1, serial: serialOf(dev), reason: 'ca-refused-renewal' } });
    expect(wrong.status).toBe(400);
    const r = await api('/v1/identity/revoked', { tls: dev, body: { protocolVersion: 1, serial: serialOf(dev), reason: 'ca-refused-renewal' } });
    expect(r.status).toBe(204);
    expect(await decision('dev-carevoked-1')).toMatchObject({ state: 'revoked', compliant: false, access_level: 'blocked' });
    expect((await api('/v1/reports', { body: envelope(2), tls: dev })).status).toBe(403);
  });

  it('a device that unenrolls gives up its certificate and may enroll again without an admin', async () => {
    const dev = await enrolled('dev-unenroll-1');
    await post(dev, envelope(1));
    const r = await api('/v1/identity/revoked', { tls: dev, body: { protocolVersion: 1, serial: serialOf(dev).toUpperCase(), reason: 'unenrolled' } });
    expect(r.status).toBe(204);
    expect(await decision('dev-unenroll-1')).toMatchObject({ state: 'enrolled', compliant: false });
    expect((await api('/v1/reports', { body: envelope(2), tls: dev })).status).toBe(403);
    expect((await enrolled('dev-unenroll-1')).certPem).not.toBe(dev.certPem);
  });

  it('an admin re-admits a revoked device, which enrolls again; its revoked certificate stays refused', async () => {
    const dev = await enrolled('dev-readmit-1');
    await post(dev, envelope(1));
    expect((await admin('/v1/admin/devices/dev-readmit-1/revoke', { method: 'POST' })).status).toBe(200);
    expect((await admin('/v1/admin/devices/dev-readmit-1/readmit', { method: 'POST' })).status).toBe(204);
    expect((await admin('/v1/admin/devices/dev-readmit-1/readmit', { method: 'POST' })).status).toBe(409);
    expect(await decision('dev-readmit-1')).toMatchObject({ state: 'enrolled', compliant: false });
    const old = await api('/v1/reports', { body: envelope(2), tls: dev });
    expect([old.status, error(old).error]).toEqual([403, 'device-revoked']);
    expect((await api('/v1/enroll', { body: enrollBody((await newSecret()).secret, 'dev-readmit-1') })).status).toBe(200);
    await post(await h.pki.device('dev-readmit-1'), envelope(0));
    expect((await decision('dev-readmit-1')).compliant).toBe(true);
  });

  it('an admin removes a device: its certificate is revoked at the CA and its history is gone', async () => {
    const dev = await enrolled('dev-remove-1');
    await post(dev, envelope(1));
    const r = await admin('/v1/admin/devices/dev-remove-1', { method: 'DELETE' });
    expect([r.status, r.json]).toEqual([200, { ca: 'revoked' }]);
    expect(h.caRevoked).toContain(serialOf(dev));
    expect((await admin('/v1/admin/devices/dev-remove-1')).status).toBe(404);
    expect((await api('/v1/reports', { body: envelope(2), tls: dev })).status).toBe(403);
  });
});

describe('admin authentication', () => {
  it('limits wrong admin tokens per address, before looking at the token', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await api('/v1/admin/devices', { token: `wrong-token-${i}-0123456789` })).status);
    expect(statuses.slice(0, 10)).toEqual(Array<number>(10).fill(401));
    expect(statuses.slice(10)).toEqual([429, 429]);
    // Even the right token waits: a guesser cannot tell a hit from the refusal.
    const right = await admin('/v1/admin/devices');
    expect(right.status).toBe(429);
    expect(Number(right.headers['retry-after'])).toBeGreaterThan(0);
    h = await restartHarness(h);
  });
});

describe('the event stream survives a restart', () => {
  it('replays what a consumer missed across a restart, and tells one that is too far behind to re-read the state', async () => {
    const dev = await enrolled('dev-events-1');
    const events = openSse(h.pki.rootPem, `${h.cp.url}/v1/events`, { token: ADMIN_TOKEN });
    await events.ready;
    await post(dev, envelope(1));
    const first = await events.next((e) => (e.data as { device: string }).device === 'dev-events-1');
    events.close();
    h = await restartHarness(h);
    await post(dev, envelope(2, sampleReport({ failing: ['disk-encryption'] })));
    const resumed = openSse(h.pki.rootPem, `${h.cp.url}/v1/events`, { token: ADMIN_TOKEN, headers: { 'last-event-id': first.id ?? '' } });
    const missed = await resumed.next((e) => (e.data as { device: string; current: string }).device === 'dev-events-1' && (e.data as { current: string }).current === 'blocked');
    expect(Number(missed.id)).toBeGreaterThan(Number(first.id));
    // Live events follow the replay on the same stream.
    await post(dev, envelope(3));
    await resumed.next((e) => Number(e.id) > Number(missed.id) && (e.data as { current: string }).current === 'full');
    resumed.close();

    // A consumer from another history (an id the server never gave out) is told to re-read everything.
    const stranger = openSse(h.pki.rootPem, `${h.cp.url}/v1/events`, { token: ADMIN_TOKEN, headers: { 'last-event-id': '999999999' } });
    const reset = await stranger.next((e) => e.event === 'reset');
    expect(reset.data).toMatchObject({ resync: '/v1/admin/devices' });
    stranger.close();
  });
});
