import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import defaultPolicyJson from '../../src/policy/default-policy.json' with { type: 'json' };
import { policySchema } from '../../src/policy/schema.js';
import { generateSecret } from '../../src/control-plane/secrets.js';
import type { NewReport, Storage } from '../../src/control-plane/storage.js';
import type { PostureReport } from '../../src/protocol/report.js';
import { sampleReport } from '../helpers/report.js';

/** A backend under test: each `fresh` store is empty; `reopen` opens the same data again, as after a restart. */
export interface StorageBackend {
  name: string;
  fresh(): Promise<{ storage: Storage; reopen(): Promise<Storage> }>;
}

export const cert = { serial: '01', subject: 'CN=device-dev-s1', issuer: 'CN=int', not_after: new Date(0).toISOString(), fingerprint_sha256: 'ab' };

/** A report as the HTTP layer hands it over, its body the envelope as JSON text unless `gzip`. */
export function report(seq: number, over: Partial<NewReport> = {}, posture: PostureReport = sampleReport(), gzip = false): NewReport & { sent: PostureReport } {
  const reportId = over.reportId ?? randomUUID();
  const text = JSON.stringify({ protocolVersion: 1, reportId, seq, dropped: over.dropped ?? 0, report: posture });
  return {
    reportId,
    deviceId: 'dev-s1',
    seq,
    receivedAt: 1000 + seq,
    accessLevel: 'full',
    dropped: 0,
    cert,
    answersRecheck: null,
    generatedAt: posture.generatedAt,
    posture: { os: { platform: posture.device.platform, id: posture.device.os.id, name: posture.device.os.name, version: posture.device.os.version }, managed: false },
    failingChecks: [],
    body: gzip ? gzipSync(text) : text,
    ...over,
    sent: posture,
  };
}

/**
 * What every Storage must do, whatever holds the data: run by sqlite-storage.test.ts and pg-storage.test.ts.
 * Backend-specific behaviour (migrations from old SQLite schemas, the WAL, caching) is tested beside each.
 */
export function storageContract(backend: StorageBackend): void {
  describe(`Storage contract: ${backend.name}`, () => {
    it('keeps the newest report received as the latest posture whatever its seq, counts seq anomalies, dedupes, and prunes', async () => {
      const { storage: s } = await backend.fresh();
      await s.enrollDevice({ id: 'dev-s1', facts: sampleReport().device, secretId: 'x', now: 1 });
      const r5 = report(5, { accessLevel: 'blocked' });
      expect(await s.ingestReport(r5)).toEqual({ inserted: true, becameLatest: true, previousSeq: null, seqAnomaly: false });
      expect(await s.ingestReport(r5)).toEqual({ inserted: false, becameLatest: false, previousSeq: null, seqAnomaly: false });
      // A seq far ahead (forged, or an agent that lost count) is the posture while it is the newest, and counted.
      const jump = report(1_000_000, { accessLevel: 'full', receivedAt: 1005 });
      expect(await s.ingestReport(jump)).toEqual({ inserted: true, becameLatest: true, previousSeq: 5, seqAnomaly: true });
      expect((await s.getLatestReport('dev-s1'))?.reportId).toBe(jump.reportId);
      // ...and the real report after it takes over: the verdict follows what was received last.
      const r6 = report(6, { accessLevel: 'blocked', dropped: 2 });
      expect(await s.ingestReport(r6)).toEqual({ inserted: true, becameLatest: true, previousSeq: 1_000_000, seqAnomaly: true });
      expect(await s.getDevice('dev-s1')).toMatchObject({ lastSeq: 6, accessLevel: 'blocked', lastSeen: 1006, droppedReports: 2, seqAnomalies: 2 });
      expect((await s.getLatestReport('dev-s1'))?.reportId).toBe(r6.reportId);
      // Gaps the agent accounts for with `dropped` are not anomalies.
      expect((await s.ingestReport(report(9, { dropped: 2 }))).seqAnomaly).toBe(false);
      for (let i = 10; i < 13; i++) await s.ingestReport(report(i));
      expect(await s.pruneReports({ keep: 3, olderThan: null, maxBytesPerDevice: null }, 100)).toBe(4);
      // History in the order received.
      expect((await s.listReports('dev-s1', { after: null, limit: 100 })).items.map((r) => r.seq)).toEqual([12, 11, 10]);
      // Re-enrollment (a reinstalled agent) starts afresh: no posture until it reports.
      await s.enrollDevice({ id: 'dev-s1', facts: sampleReport().device, secretId: 'y', now: 2, refuseSerial: cert.serial });
      expect(await s.getDevice('dev-s1')).toMatchObject({ lastSeq: null, accessLevel: null, lastSeen: null, cert: null, revokedSerial: cert.serial });
      expect(await s.ingestReport(report(0))).toEqual({ inserted: true, becameLatest: true, previousSeq: null, seqAnomaly: false });
      await s.close();
    });

    it('keeps console accounts, sessions, the audit log, fleet counts and snapshots', async () => {
      const { storage: s } = await backend.fresh();
      expect(await s.createAdmin({ name: 'alice', passwordHash: 'h', createdAt: 1 })).toBe(true);
      expect(await s.createAdmin({ name: 'alice', passwordHash: 'h2', createdAt: 2 })).toBe(false);
      expect(await s.createAdmin({ name: 'bob', passwordHash: 'hb', createdAt: 3 })).toBe(true);
      expect((await s.listAdmins()).map((a) => [a.name, a.passwordHash, a.disabled])).toEqual([
        ['alice', 'h', false],
        ['bob', 'hb', false],
      ]);
      const sid = Buffer.alloc(32, 7);
      await s.createSession({ idHash: sid, admin: 'alice', csrf: 'c', createdAt: 10, ip: '127.0.0.1', userAgent: null });
      await s.touchSession(sid, 20);
      await s.touchSession(sid, 15);
      expect(await s.getSession(sid)).toEqual({ idHash: sid, admin: 'alice', csrf: 'c', createdAt: 10, lastSeen: 20, ip: '127.0.0.1', userAgent: null });
      // A new password ends the account's sessions.
      expect(await s.setAdminPassword('alice', 'h3')).toBe(true);
      expect(await s.getSession(sid)).toBeNull();
      await s.createSession({ idHash: sid, admin: 'bob', csrf: 'c', createdAt: 10, ip: '::1', userAgent: 'ua' });
      expect(await s.pruneSessions(11, 0)).toBe(1);
      expect(await s.deleteAdmin('bob')).toBe(true);
      expect(await s.deleteAdmin('bob')).toBe(false);
      expect(await s.getAdmin('alice')).toMatchObject({ passwordHash: 'h3' });

      const a1 = await s.appendAudit({ at: 1, actor: 'admin:alice', action: 'x', target: null, ip: null, detail: { a: 1 } });
      const a2 = await s.appendAudit({ at: 2, actor: 'admin:alice', action: 'y', target: 't', ip: '::1', detail: null });
      expect(a2).toBeGreaterThan(a1);
      expect((await s.listAudit(10, null)).map((e) => e.action)).toEqual(['y', 'x']);
      expect((await s.listAudit(10, a2)).map((e) => e.detail)).toEqual([{ a: 1 }]);

      await s.putFleetSnapshot({ at: 3_600_000, full: 1, limited: 2, blocked: 3, stale: 0 });
      await s.putFleetSnapshot({ at: 3_600_000, full: 4, limited: 2, blocked: 3, stale: 1 });
      await s.putFleetSnapshot({ at: 7_200_000, full: 5, limited: 0, blocked: 0, stale: 0 });
      expect(await s.listFleetSnapshots(0)).toEqual([
        { at: 3_600_000, full: 4, limited: 2, blocked: 3, stale: 1 },
        { at: 7_200_000, full: 5, limited: 0, blocked: 0, stale: 0 },
      ]);
      expect(await s.pruneFleetSnapshots(7_200_000)).toBe(1);

      // Counted by effective state and level: one active device reporting `full`, one never reported.
      await s.enrollDevice({ id: 'dev-c1', facts: sampleReport().device, secretId: 'x', now: 1 });
      await s.enrollDevice({ id: 'dev-c2', facts: sampleReport().device, secretId: 'x', now: 1 });
      await s.ingestReport({ ...report(1, { accessLevel: 'full', receivedAt: 5000 }), deviceId: 'dev-c1' });
      const first = await s.fleetCountsPage(0, '', 1);
      expect(first.lastId).toBe('dev-c1');
      expect(first.groups).toEqual([{ state: 'active', level: 'full', os: expect.any(String) as string, count: 1 }]);
      const second = await s.fleetCountsPage(0, 'dev-c1', 10);
      expect(second.groups.map((g) => [g.state, g.level, g.count])).toEqual([['enrolled', 'blocked', 1]]);
      expect((await s.fleetCountsPage(0, 'dev-c2', 10)).lastId).toBeNull();
      const latest = await s.latestResultsPage('', 10);
      expect(latest.map((d) => [d.device.id, d.latest === null])).toEqual([
        ['dev-c1', false],
        ['dev-c2', true],
      ]);
      expect(latest[0]?.latest?.read().results.length).toBeGreaterThan(0);
      await s.close();
    });

    it('sets re-evaluated levels in a batch, only where the evaluated report is still the latest', async () => {
      const { storage: s } = await backend.fresh();
      for (const id of ['dev-l1', 'dev-l2', 'dev-l3']) await s.enrollDevice({ id, facts: sampleReport().device, secretId: 'x', now: 1 });
      const r1 = report(1, { deviceId: 'dev-l1', accessLevel: 'full' });
      const r2 = report(1, { deviceId: 'dev-l2', accessLevel: 'full' });
      await s.ingestReport(r1);
      await s.ingestReport(r2);
      // dev-l2 reports again after the policy's page was read: its newer report already carries the verdict.
      await s.ingestReport(report(2, { deviceId: 'dev-l2', accessLevel: 'limited' }));
      const applied = await s.setDeviceLevels([
        { id: 'dev-l1', level: 'blocked', reportId: r1.reportId },
        { id: 'dev-l2', level: 'blocked', reportId: r2.reportId },
        { id: 'dev-l3', level: 'blocked', reportId: 'never-reported' },
      ]);
      expect(applied).toEqual([true, false, false]);
      expect((await s.getDevice('dev-l1'))?.accessLevel).toBe('blocked');
      expect((await s.getDevice('dev-l2'))?.accessLevel).toBe('limited');
      expect((await s.getDevice('dev-l3'))?.accessLevel).toBeNull();
      expect(await s.setDeviceLevels([])).toEqual([]);
      // Announced in one batch, even with a device twice (each is an event; the second write wins).
      const event = { device: 'dev-l1', previous: null, current: 'blocked' as const, compliant: false, state: 'active' as const, cause: 'policy' as const, at: new Date(2).toISOString() };
      const twice = await s.announceMany([
        { id: 'dev-l1', level: 'limited', state: 'active', attrs: 'a', event },
        { id: 'dev-l1', level: 'blocked', state: 'active', attrs: 'b', event },
      ]);
      expect(twice.every((id) => typeof id === 'number')).toBe(true);
      expect(await s.getDevice('dev-l1')).toMatchObject({ announcedLevel: 'blocked', announcedAttrs: 'b' });
      await s.close();
    });

    it('revokes, re-admits and removes a device, remembering the revoked certificate', async () => {
      const { storage: s } = await backend.fresh();
      await s.enrollDevice({ id: 'dev-s1', facts: sampleReport().device, secretId: 'x', now: 1 });
      await s.ingestReport(report(1));
      expect(await s.revokeDevice('dev-s1', 50, 'lost laptop')).toBe(true);
      expect(await s.revokeDevice('dev-s1', 60, 'again')).toBe(false);
      expect(await s.getDevice('dev-s1')).toMatchObject({ revokedAt: 50, revokedReason: 'lost laptop', revokedSerial: cert.serial });
      expect(await s.readmitDevice('dev-s1')).toBe(true);
      expect(await s.getDevice('dev-s1')).toMatchObject({ revokedAt: null, reenrollAllowed: true, revokedSerial: cert.serial, cert: null, accessLevel: null });
      expect(await s.deleteDevice('dev-s1')).toBe(true);
      expect(await s.getDevice('dev-s1')).toBeNull();
      expect((await s.listReports('dev-s1', { after: null, limit: 10 })).items).toEqual([]);
      await s.close();
    });

    it('keeps access-level events with ids that are never reused, and prunes them by count and age', async () => {
      const fresh = await backend.fresh();
      let s = fresh.storage;
      await s.enrollDevice({ id: 'dev-s1', facts: sampleReport().device, secretId: 'x', now: 1 });
      const ev = (i: number) => ({ device: 'dev-s1', previous: null, current: 'full' as const, compliant: true, state: 'active' as const, cause: 'report' as const, at: new Date(i * 1000).toISOString() });
      const ids = [];
      for (let i = 1; i <= 5; i++) ids.push((await s.announceMany([{ id: 'dev-s1', level: 'full', state: 'active', attrs: '', event: ev(i) }]))[0]);
      expect(ids).toEqual([1, 2, 3, 4, 5]);
      expect((await s.eventsSince(3, 10)).map((e) => e.id)).toEqual([4, 5]);
      expect((await s.eventsSince(0, 10))[0]?.event).toEqual(ev(1));
      // Keep 3 and none older than t=2 s.
      expect(await s.pruneEvents(3, 2000, 100)).toBe(2);
      expect(await s.eventBounds()).toEqual({ oldest: 3, newest: 5 });
      expect(await s.pruneEvents(0, 10_000, 100)).toBe(3);
      await s.close();
      s = await fresh.reopen();
      // Across a restart, with every event pruned, the next id still follows the last one handed out.
      expect(await s.eventBounds()).toEqual({ oldest: null, newest: 5 });
      expect(await s.announceMany([{ id: 'dev-s1', level: 'blocked', state: 'active', attrs: '', event: ev(6) }])).toEqual([6]);
      await s.close();
    });

    it('keeps the envelope as received (gzip or text) and reads the report back from it', async () => {
      const { storage: s } = await backend.fresh();
      await s.enrollDevice({ id: 'dev-s1', facts: sampleReport().device, secretId: 'x', now: 1 });
      const gz = report(1, {}, sampleReport({ failing: ['firewall'] }), true);
      await s.ingestReport(gz);
      expect((await s.getLatestReport('dev-s1'))?.report).toEqual(gz.sent);
      const text = report(2);
      await s.ingestReport(text);
      expect((await s.getLatestReport('dev-s1'))?.report).toEqual(text.sent);
      await s.close();
    });

    it('holds a use of a secret per enrollment, spends it when the device confirms, and says why a secret cannot be used', async () => {
      const { storage: s } = await backend.fresh();
      const g = generateSecret();
      await s.createSecret({ id: g.id, hash: g.hash, label: null, createdAt: 0, expiresAt: 10_000, usesTotal: 2 });
      const reserve = (deviceId: string, now: number, secretId = g.id) =>
        s.reserveEnrollment({ deviceId, secretId, facts: sampleReport().device, now, expiresAt: now + 1000, refuseSerial: null });
      expect([await reserve('dev-a', 1), await reserve('dev-b', 2), await reserve('dev-c', 3)]).toEqual(['ok', 'ok', 'used-up']);
      // A retry by the same device replaces its own reservation.
      expect(await reserve('dev-a', 4)).toBe('ok');
      // Expired reservations give their use back.
      expect(await reserve('dev-c', 2000)).toBe('ok');
      expect((await s.getSecret(g.id))?.usesLeft).toBe(2);
      // Confirming spends the use and registers the device with its certificate; a certificate from before the
      // reservation cannot confirm it, and a confirmed reservation is gone.
      expect(await s.confirmEnrollment('dev-c', cert, 2000 - 10 * 60_000, 2100)).toBeNull();
      expect(await s.confirmEnrollment('dev-c', cert, 2000, 2100)).toMatchObject({ id: 'dev-c', cert, enrolledAt: 2100 });
      expect(await s.confirmEnrollment('dev-c', cert, 2000, 2100)).toBeNull();
      expect((await s.getSecret(g.id))?.usesLeft).toBe(1);
      expect(await s.getDevice('dev-a')).toBeNull();
      expect(await reserve('dev-d', 20_000)).toBe('expired');
      expect(await reserve('dev-d', 1, 'nope')).toBe('unknown');
      expect(await s.revokeSecret(g.id)).toBe(true);
      expect(await reserve('dev-d', 2100)).toBe('revoked');
      await s.close();
    });
    it('stores a report ID sent twice at once only once, and the other caller learns what a retry would', async () => {
      const { storage: s } = await backend.fresh();
      await s.enrollDevice({ id: 'dev-s1', facts: sampleReport().device, secretId: 'x', now: 1 });
      const r1 = report(1);
      const results = await Promise.all([s.ingestReport(r1), s.ingestReport({ ...r1 })]);
      expect(results).toContainEqual({ inserted: true, becameLatest: true, previousSeq: null, seqAnomaly: false });
      expect(results).toContainEqual({ inserted: false, becameLatest: false, previousSeq: null, seqAnomaly: false });
      expect(await s.ingestReport(report(2))).toEqual({ inserted: true, becameLatest: true, previousSeq: 1, seqAnomaly: false });
      expect(await s.ingestReport({ ...r1 })).toEqual({ inserted: false, becameLatest: false, previousSeq: null, seqAnomaly: false });
      expect((await s.listReports('dev-s1', { after: null, limit: 10 })).items.map((r) => r.seq)).toEqual([2, 1]);
      await s.close();
    });

    it('never lets concurrent enrollments hold more uses of a secret than it has', async () => {
      const { storage: s } = await backend.fresh();
      const g = generateSecret();
      await s.createSecret({ id: g.id, hash: g.hash, label: null, createdAt: 0, expiresAt: 10_000, usesTotal: 5 });
      const outcomes = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          s.reserveEnrollment({ deviceId: `dev-${i}`, secretId: g.id, facts: sampleReport().device, now: 1, expiresAt: 5000, refuseSerial: null }),
        ),
      );
      expect(outcomes.filter((o) => o === 'ok')).toHaveLength(5);
      expect(outcomes.filter((o) => o === 'used-up')).toHaveLength(15);
      await s.close();
    });

    it('keeps policies, newest first, and API tokens', async () => {
      const { storage: s } = await backend.fresh();
      expect(await s.getPolicy()).toBeNull();
      const policy = policySchema.parse(defaultPolicyJson);
      await s.setPolicy({ ...policy, version: 'v1' }, 1);
      await s.setPolicy({ ...policy, version: 'v2' }, 2);
      expect((await s.getPolicy())?.version).toBe('v2');
      const t = { id: 'tok1', hash: Buffer.from('h'), scope: 'gateway' as const, name: 'gw', createdAt: 5 };
      await s.createApiToken(t);
      expect(await s.getApiToken('tok1')).toEqual({ ...t, revokedAt: null });
      expect(await s.revokeApiToken('tok1', 9)).toBe(true);
      expect(await s.revokeApiToken('tok1', 10)).toBe(false);
      expect((await s.listApiTokens({ after: null, limit: 10 })).items).toEqual([{ ...t, revokedAt: 9 }]);
      await s.close();
    });
  });
}
