import { execFile } from 'node:child_process';
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { SqliteStorage } from '../../src/control-plane/sqlite-storage.js';
import { sampleReport } from '../helpers/report.js';
import { cert, report, storageContract } from './storage-contract.js';

const run = promisify(execFile);

storageContract({
  name: 'SQLite',
  async fresh() {
    const dir = await mkdtemp(join(tmpdir(), 'vigil-sq-'));
    return { storage: new SqliteStorage(dir), reopen: () => Promise.resolve(new SqliteStorage(dir)) };
  },
});

describe('SqliteStorage', () => {
  it('stores a report ID sent twice in one batch once, and both callers learn the same outcome as a retry would', async () => {
    const s = new SqliteStorage(await mkdtemp(join(tmpdir(), 'vigil-sq-')));
    await s.enrollDevice({ id: 'dev-s1', facts: sampleReport().device, secretId: 'x', now: 1 });
    const r1 = report(1);
    // Same turn of the event loop: one transaction.
    const results = await Promise.all([s.ingestReport(r1), s.ingestReport({ ...r1 }), s.ingestReport(report(2))]);
    expect(results).toEqual([
      { inserted: true, becameLatest: true, previousSeq: null, seqAnomaly: false },
      { inserted: false, becameLatest: false, previousSeq: null, seqAnomaly: false },
      { inserted: true, becameLatest: true, previousSeq: 1, seqAnomaly: false },
    ]);
    expect(await s.ingestReport({ ...r1 })).toEqual({ inserted: false, becameLatest: false, previousSeq: null, seqAnomaly: false });
    expect((await s.listReports('dev-s1', { after: null, limit: 10 })).items.map((r) => r.seq)).toEqual([2, 1]);
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
    db.prepare('UPDATE reports SET body = ?').run(JSON.stringify(r.sent));
    db.prepare("UPDATE meta SET value = '1' WHERE key = 'schema'").run();
    db.close();
    const again = new SqliteStorage(dir);
    expect((await again.getLatestReport('dev-s1'))?.report).toEqual(r.sent);
    await again.close();
  });

  it('migrates a schema 2 database, whose reports are keyed by report ID alone', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vigil-sq-'));
    await new SqliteStorage(dir).close();
    const r = report(4);
    // The reports table and index exactly as schema 2 created them.
    const db = new Database(join(dir, 'control-plane.sqlite'));
    // The devices table as schema 3 had it.
    db.exec(`DROP TABLE devices; DROP TABLE events;
      CREATE TABLE devices (
        id TEXT PRIMARY KEY, facts TEXT NOT NULL, enrolled_at INTEGER NOT NULL, secret_id TEXT, revoked_at INTEGER,
        last_seen INTEGER, last_seq INTEGER, access_level TEXT, cert TEXT, dropped INTEGER NOT NULL DEFAULT 0,
        announced_level TEXT, announced_state TEXT, recheck_id TEXT, recheck_at INTEGER, latest_report_id TEXT
      );
      DROP TABLE reports;
      CREATE TABLE reports (
        report_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, seq INTEGER NOT NULL, generated_at TEXT NOT NULL,
        received_at INTEGER NOT NULL, access_level TEXT NOT NULL, body TEXT NOT NULL
      );
      CREATE INDEX reports_by_device ON reports (device_id, seq);
      UPDATE meta SET value = '2' WHERE key = 'schema';`);
    db.prepare("INSERT INTO devices (id, facts, enrolled_at, last_seq, latest_report_id) VALUES ('dev-s1', '{}', 1, 4, ?)").run(r.reportId);
    db.prepare('INSERT INTO reports VALUES (?, ?, ?, ?, ?, ?, ?)').run(r.reportId, 'dev-s1', 4, r.generatedAt, 1004, 'full', r.body);
    db.close();

    const s = new SqliteStorage(dir);
    expect((await s.getLatestReport('dev-s1'))?.report).toEqual(r.sent);
    expect(await s.ingestReport(r)).toEqual({ inserted: false, becameLatest: false, previousSeq: null, seqAnomaly: false });
    expect(await s.ingestReport(report(5))).toEqual({ inserted: true, becameLatest: true, previousSeq: 4, seqAnomaly: false });
    await s.close();
    const after = new Database(join(dir, 'control-plane.sqlite'), { readonly: true });
    expect(after.prepare("SELECT value FROM meta WHERE key = 'schema'").pluck().get()).toBe('6');
    expect(after.prepare("SELECT sql FROM sqlite_master WHERE name = 'reports_by_device'").pluck().get()).toContain('(device_id, seq, report_id)');
    after.close();
  });

  it('migrates a schema 4 database: devices keep their data and gain posture and announced attributes; API tokens work', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vigil-sq-'));
    const s4 = new SqliteStorage(dir);
    await s4.enrollDevice({ id: 'dev-s1', facts: sampleReport().device, secretId: 'x', now: 1 });
    await s4.ingestReport(report(1));
    await s4.announceMany([{ id: 'dev-s1', level: 'full', state: 'active', attrs: 'attrs', event: { device: 'dev-s1', previous: null, current: 'full', compliant: true, state: 'active', cause: 'report', at: new Date(1000).toISOString() } }]);
    await s4.close();
    // What schema 4 had: no api_tokens, no posture or announced_attrs on devices.
    const db = new Database(join(dir, 'control-plane.sqlite'));
    db.exec("DROP TABLE api_tokens; ALTER TABLE devices DROP COLUMN posture; ALTER TABLE devices DROP COLUMN announced_attrs; UPDATE meta SET value = '4' WHERE key = 'schema'");
    db.close();

    const s = new SqliteStorage(dir);
    expect(await s.getDevice('dev-s1')).toMatchObject({ lastSeq: 1, accessLevel: 'full', cert, announcedLevel: 'full', posture: null, announcedAttrs: null });
    // The next report stores what gateways need of the OS and management.
    await s.ingestReport(report(2));
    expect((await s.getDevice('dev-s1'))?.posture).toMatchObject({ os: { platform: 'linux' }, managed: false });
    await s.createApiToken({ id: '0123456789abcdef', hash: Buffer.alloc(32, 1), scope: 'gateway', name: 'gw', createdAt: 5 });
    expect(await s.revokeApiToken('0123456789abcdef', 6)).toBe(true);
    expect(await s.revokeApiToken('0123456789abcdef', 7)).toBe(false);
    expect((await s.listApiTokens({ after: null, limit: 10 })).items).toEqual([{ id: '0123456789abcdef', hash: Buffer.alloc(32, 1), scope: 'gateway', name: 'gw', createdAt: 5, revokedAt: 6 }]);
    await s.close();
    const after = new Database(join(dir, 'control-plane.sqlite'), { readonly: true });
    expect(after.prepare("SELECT value FROM meta WHERE key = 'schema'").pluck().get()).toBe('6');
    after.close();
  });

  it('upgrades a schema 5 database: console accounts, sessions, audit log and fleet snapshots', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vigil-sq-'));
    await new SqliteStorage(dir).close();
    const db = new Database(join(dir, 'control-plane.sqlite'));
    db.exec("DROP TABLE admins; DROP TABLE sessions; DROP TABLE audit; DROP TABLE fleet_snapshots; UPDATE meta SET value = '5' WHERE key = 'schema'");
    db.close();
    const s = new SqliteStorage(dir);
    expect(await s.createAdmin({ name: 'alice', passwordHash: 'h', createdAt: 1 })).toBe(true);
    expect(await s.createAdmin({ name: 'alice', passwordHash: 'h2', createdAt: 2 })).toBe(false);
    await s.createSession({ idHash: Buffer.alloc(32, 7), admin: 'alice', csrf: 'c', createdAt: 10, ip: '127.0.0.1', userAgent: null });
    expect(await s.getSession(Buffer.alloc(32, 7))).toMatchObject({ admin: 'alice', lastSeen: 10 });
    expect(await s.pruneSessions(11, 0)).toBe(1);
    expect(await s.appendAudit({ at: 1, actor: 'admin:alice', action: 'x', target: null, ip: null, detail: { a: 1 } })).toBe(1);
    expect(await s.appendAudit({ at: 2, actor: 'admin:alice', action: 'y', target: 't', ip: '::1', detail: null })).toBe(2);
    expect((await s.listAudit(10, null)).map((e) => e.action)).toEqual(['y', 'x']);
    expect((await s.listAudit(10, 2)).map((e) => e.detail)).toEqual([{ a: 1 }]);
    await s.putFleetSnapshot({ at: 3_600_000, full: 1, limited: 2, blocked: 3, stale: 0 });
    await s.putFleetSnapshot({ at: 3_600_000, full: 4, limited: 2, blocked: 3, stale: 1 });
    expect(await s.listFleetSnapshots(0)).toEqual([{ at: 3_600_000, full: 4, limited: 2, blocked: 3, stale: 1 }]);
    await s.close();
    const after = new Database(join(dir, 'control-plane.sqlite'), { readonly: true });
    expect(after.prepare("SELECT value FROM meta WHERE key = 'schema'").pluck().get()).toBe('6');
    after.close();
  });

  it('refuses a database from a newer control plane, and leaves it as it was', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vigil-sq-'));
    await new SqliteStorage(dir).close();
    const db = new Database(join(dir, 'control-plane.sqlite'));
    db.prepare("UPDATE meta SET value = '99' WHERE key = 'schema'").run();
    db.close();
    expect(() => new SqliteStorage(dir)).toThrow('database schema 99 is newer than this control plane understands (6)');
  });

  it('serves devices from memory, kept current by its own writes and by commits from other connections', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vigil-sq-'));
    const s = new SqliteStorage(dir, { maxCachedDevices: 2 });
    for (const id of ['dev-s1', 'dev-s2', 'dev-s3']) await s.enrollDevice({ id, facts: sampleReport().device, secretId: 'x', now: 1 });
    expect(await s.getDevice('dev-s1')).toMatchObject({ lastSeq: null, accessLevel: null });
    // The cached copy follows the report's transaction, including a pending recheck it answers.
    await s.setRecheck('dev-s1', { requestId: 'rq-1', requestedAt: 5 });
    expect((await s.getDevice('dev-s1'))?.recheck).toEqual({ requestId: 'rq-1', requestedAt: 5 });
    await s.ingestReport(report(7, { accessLevel: 'limited', dropped: 3, answersRecheck: 'rq-1' }));
    const cached = await s.getDevice('dev-s1');
    expect(cached).toMatchObject({ lastSeq: 7, accessLevel: 'limited', droppedReports: 3, lastSeen: 1007, recheck: null, cert });
    expect(Object.isFrozen(cached)).toBe(true);
    // A report with a lower seq received later is the posture now; the cache follows it, anomaly count included.
    await s.ingestReport(report(6, { accessLevel: 'blocked' }));
    expect(await s.getDevice('dev-s1')).toMatchObject({ lastSeq: 6, accessLevel: 'blocked', lastSeen: 1007, seqAnomalies: 1 });

    // Another process revokes the device: the next read sees it, not the cached copy.
    const other = new Database(join(dir, 'control-plane.sqlite'));
    other.prepare("UPDATE devices SET revoked_at = 99 WHERE id = 'dev-s1'").run();
    other.close();
    // Looked at once per event-loop turn.
    await new Promise((resolve) => setImmediate(resolve));
    expect((await s.getDevice('dev-s1'))?.revokedAt).toBe(99);

    // Bounded: a cached device comes back as the same object; reading a third evicts the least recently read.
    const s2 = await s.getDevice('dev-s2');
    const s1 = await s.getDevice('dev-s1');
    expect(await s.getDevice('dev-s2')).toBe(s2);
    await s.getDevice('dev-s3');
    expect(await s.getDevice('dev-s2')).toBe(s2);
    const again = await s.getDevice('dev-s1');
    expect(again).not.toBe(s1);
    expect(again).toEqual(s1);
    await s.close();
  });

  it('checkpoints the WAL from its worker thread, so that the writer starts it again instead of growing it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vigil-sq-'));
    const errors: unknown[] = [];
    const s = new SqliteStorage(dir, { backgroundCheckpoints: true, onCheckpointerError: (e) => errors.push(e) });
    await s.enrollDevice({ id: 'dev-s1', facts: sampleReport().device, secretId: 'x', now: 1 });
    const wal = join(dir, 'control-plane.sqlite-wal');
    // Bytes 12-15 of the WAL header count how often the WAL was started again from its beginning, which
    // happens only after a checkpoint has copied all of it into the database.
    const restarts = async (): Promise<number> => (await readFile(wal)).readUInt32BE(12);
    const before = await restarts();
    let seq = 0;
    // About 3,000 pages of reports: far below the 16,000 at which a commit would checkpoint by itself.
    for (let round = 0; round < 15; round++) {
      await Promise.all(Array.from({ length: 200 }, () => s.ingestReport(report(++seq))));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    await s.ingestReport(report(++seq));
    expect(await restarts()).toBeGreaterThan(before);
    expect((await stat(wal)).size).toBeLessThan(16_000 * 4096);
    expect((await s.listReports('dev-s1', { after: null, limit: 1 })).items[0]?.seq).toBe(seq);
    await s.close();
    expect(errors).toEqual([]);
    // Closed cleanly: the last connection checkpointed and removed the WAL.
    await expect(stat(wal)).rejects.toThrow('ENOENT');
  }, 30_000);

  it('finishes closing in a process with nothing else to do (the checkpoint thread does not hold it open)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vigil-sq-'));
    // The worker is unref'd so that it never keeps a server alive; close() must still wait for it to exit.
    // Run where nothing else is pending, the process used to end inside close() and leave the WAL behind.
    const script = `
      import { SqliteStorage } from ${JSON.stringify(pathToFileURL(join(import.meta.dirname, '../../src/control-plane/sqlite-storage.ts')).href)};
      const s = new SqliteStorage(${JSON.stringify(dir)}, { backgroundCheckpoints: true });
      await s.enrollDevice({ id: 'dev-s1', facts: { hostname: 'h', os: 'linux', osVersion: '12', arch: 'x64' }, secretId: 'x', now: 1 });
      await new Promise((resolve) => setTimeout(resolve, 400));
      await s.close();
      console.log('closed');
    `;
    const r = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { timeout: 30_000 }).catch(
      (e: unknown) => ({ stdout: `failed: ${String(e)}` }),
    );
    expect(r.stdout.trim()).toBe('closed');
    await expect(stat(join(dir, 'control-plane.sqlite-wal'))).rejects.toThrow('ENOENT');
  }, 30_000);
});
