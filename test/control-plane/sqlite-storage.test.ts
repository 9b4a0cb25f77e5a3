import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { SqliteStorage } from '../../src/control-plane/sqlite-storage.js';
import { generateSecret } from '../../src/control-plane/secrets.js';
import type { NewReport } from '../../src/control-plane/storage.js';
import { sampleReport } from '../helpers/report.js';

const cert = { serial: '01', subject: 'CN=device-dev-s1', issuer: 'CN=int', not_after: new Date(0).toISOString(), fingerprint_sha256: 'ab' };

function report(seq: number, over: Partial<NewReport> = {}): NewReport {
  return { reportId: randomUUID(), deviceId: 'dev-s1', seq, receivedAt: 1000 + seq, accessLevel: 'full', dropped: 0, cert, answersRecheck: null, report: sampleReport(), ...over };
}

describe('SqliteStorage', () => {
  it('keeps the highest seq as the latest posture, dedupes by reportId, and prunes history', async () => {
    const s = new SqliteStorage(await mkdtemp(join(tmpdir(), 'vigil-sq-')));
    await s.enrollDevice({ id: 'dev-s1', facts: sampleReport().device, secretId: 'x', now: 1 });
    const r5 = report(5, { accessLevel: 'blocked' });
    expect(await s.ingestReport(r5)).toEqual({ inserted: true, becameLatest: true });
    expect(await s.ingestReport(r5)).toEqual({ inserted: false, becameLatest: false });
    // A late retry of an older report goes to history only.
    expect(await s.ingestReport(report(3, { dropped: 2 }))).toEqual({ inserted: true, becameLatest: false });
    const d = await s.getDevice('dev-s1');
    expect(d).toMatchObject({ lastSeq: 5, accessLevel: 'blocked', lastSeen: 1005, droppedReports: 2 });
    expect((await s.getLatestReport('dev-s1'))?.reportId).toBe(r5.reportId);
    for (let i = 6; i < 10; i++) await s.ingestReport(report(i));
    expect(await s.pruneReports(3)).toBe(3);
    expect((await s.listReports('dev-s1', 100)).map((r) => r.seq)).toEqual([9, 8, 7]);
    // Re-enrollment (a reinstalled agent) starts the sequence again.
    await s.enrollDevice({ id: 'dev-s1', facts: sampleReport().device, secretId: 'y', now: 2 });
    expect(await s.ingestReport(report(0))).toEqual({ inserted: true, becameLatest: true });
    await s.close();
  });

  it('stores a report ID sent twice in one batch once, and both callers learn the same outcome as a retry would', async () => {
    const s = new SqliteStorage(await mkdtemp(join(tmpdir(), 'vigil-sq-')));
    await s.enrollDevice({ id: 'dev-s1', facts: sampleReport().device, secretId: 'x', now: 1 });
    const r1 = report(1);
    // Same turn of the event loop: one transaction.
    const results = await Promise.all([s.ingestReport(r1), s.ingestReport({ ...r1 }), s.ingestReport(report(2))]);
    expect(results).toEqual([
      { inserted: true, becameLatest: true },
      { inserted: false, becameLatest: false },
      { inserted: true, becameLatest: true },
    ]);
    expect(await s.ingestReport({ ...r1 })).toEqual({ inserted: false, becameLatest: false });
    expect((await s.listReports('dev-s1', 10)).map((r) => r.seq)).toEqual([2, 1]);
    await s.close();
  });

  it('keeps the envelope as received (gzip or text) and reads the report back from it', async () => {
    const s = new SqliteStorage(await mkdtemp(join(tmpdir(), 'vigil-sq-')));
    await s.enrollDevice({ id: 'dev-s1', facts: sampleReport().device, secretId: 'x', now: 1 });
    const gz = report(1, { report: sampleReport({ failing: ['firewall'] }) });
    await s.ingestReport({ ...gz, raw: gzipSync(JSON.stringify({ protocolVersion: 1, reportId: gz.reportId, seq: 1, dropped: 0, report: gz.report })) });
    expect((await s.getLatestReport('dev-s1'))?.report).toEqual(gz.report);
    const text = report(2);
    await s.ingestReport({ ...text, raw: JSON.stringify({ protocolVersion: 1, reportId: text.reportId, seq: 2, dropped: 0, report: text.report }) });
    expect((await s.getLatestReport('dev-s1'))?.report).toEqual(text.report);
    await s.close();
  });

  it('migrates a schema 1 database, whose bodies are bare reports', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vigil-sq-'));
    const s = new SqliteStorage(dir);
    await s.enrollDevice({ id: 'dev-s1', facts: sampleReport().device, secretId: 'x', now: 1 });
    const r = report(1);
    await s.ingestReport(r);
    await s.close();
    // What schema 1 wrote: the report itself as the body.
    const db = new Database(join(dir, 'control-plane.sqlite'));
    db.prepare('UPDATE reports SET body = ?').run(JSON.stringify(r.report));
    db.prepare("UPDATE meta SET value = '1' WHERE key = 'schema'").run();
    db.close();
    const again = new SqliteStorage(dir);
    expect((await again.getLatestReport('dev-s1'))?.report).toEqual(r.report);
    await again.close();
  });

  it('spends secret uses atomically and reports why a secret cannot be used', async () => {
    const s = new SqliteStorage(await mkdtemp(join(tmpdir(), 'vigil-sq-')));
    const g = generateSecret();
    await s.createSecret({ id: g.id, hash: g.hash, label: null, createdAt: 0, expiresAt: 10_000, usesTotal: 2 });
    expect([await s.consumeSecret(g.id, 1), await s.consumeSecret(g.id, 2), await s.consumeSecret(g.id, 3)]).toEqual(['ok', 'ok', 'used-up']);
    expect(await s.consumeSecret(g.id, 20_000)).toBe('expired');
    expect(await s.consumeSecret('nope', 1)).toBe('unknown');
    expect(await s.revokeSecret(g.id)).toBe(true);
    expect(await s.consumeSecret(g.id, 1)).toBe('revoked');
    await s.close();
  });
});
