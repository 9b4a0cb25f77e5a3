import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ACCESS_LEVELS, policySchema, type AccessLevel, type Policy } from '../policy/schema.js';
import type { CertInfo } from '../protocol/admin.js';
import { postureReportSchema, type DeviceFacts } from '../protocol/report.js';
import type {
  ConsumeOutcome,
  NewReport,
  NewSecret,
  Storage,
  StoredDevice,
  StoredReport,
  StoredReportMeta,
  StoredSecret,
} from './storage.js';

const SCHEMA_VERSION = 1;

const MIGRATIONS = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS secrets (
  id TEXT PRIMARY KEY, hash BLOB NOT NULL, label TEXT, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
  uses_total INTEGER NOT NULL, uses_left INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS devices (
  id TEXT PRIMARY KEY, facts TEXT NOT NULL, enrolled_at INTEGER NOT NULL, secret_id TEXT, revoked_at INTEGER,
  last_seen INTEGER, last_seq INTEGER, access_level TEXT, cert TEXT, dropped INTEGER NOT NULL DEFAULT 0,
  announced_level TEXT, announced_state TEXT, recheck_id TEXT, recheck_at INTEGER, latest_report_id TEXT
);
CREATE TABLE IF NOT EXISTS reports (
  report_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, seq INTEGER NOT NULL, generated_at TEXT NOT NULL,
  received_at INTEGER NOT NULL, access_level TEXT NOT NULL, body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS reports_by_device ON reports (device_id, seq);
CREATE TABLE IF NOT EXISTS policies (
  id INTEGER PRIMARY KEY AUTOINCREMENT, version TEXT NOT NULL, body TEXT NOT NULL, set_at INTEGER NOT NULL
);
`;

interface SecretRow {
  id: string;
  hash: Buffer;
  label: string | null;
  created_at: number;
  expires_at: number;
  uses_total: number;
  uses_left: number;
  revoked: number;
}

interface DeviceRow {
  id: string;
  facts: string;
  enrolled_at: number;
  secret_id: string | null;
  revoked_at: number | null;
  last_seen: number | null;
  last_seq: number | null;
  access_level: string | null;
  cert: string | null;
  dropped: number;
  announced_level: string | null;
  announced_state: string | null;
  recheck_id: string | null;
  recheck_at: number | null;
}

interface ReportRow {
  report_id: string;
  seq: number;
  generated_at: string;
  received_at: number;
  access_level: string;
  body: string;
}

function level(v: string | null): AccessLevel | null {
  return v !== null && (ACCESS_LEVELS as readonly string[]).includes(v) ? (v as AccessLevel) : null;
}

function toSecret(r: SecretRow): StoredSecret {
  return {
    id: r.id,
    hash: r.hash,
    label: r.label,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    usesTotal: r.uses_total,
    usesLeft: r.uses_left,
    revoked: r.revoked !== 0,
  };
}

function toDevice(r: DeviceRow): StoredDevice {
  return {
    id: r.id,
    // Our own rows, written from validated values: re-validating on every read would cost more than the query.
    facts: JSON.parse(r.facts) as DeviceFacts,
    enrolledAt: r.enrolled_at,
    secretId: r.secret_id,
    revokedAt: r.revoked_at,
    lastSeen: r.last_seen,
    lastSeq: r.last_seq,
    accessLevel: level(r.access_level),
    cert: r.cert === null ? null : (JSON.parse(r.cert) as CertInfo),
    droppedReports: r.dropped,
    announcedLevel: level(r.announced_level),
    announcedState: r.announced_state,
    recheck: r.recheck_id !== null && r.recheck_at !== null ? { requestId: r.recheck_id, requestedAt: r.recheck_at } : null,
  };
}

function toMeta(r: ReportRow): StoredReportMeta {
  return {
    reportId: r.report_id,
    seq: r.seq,
    generatedAt: r.generated_at,
    receivedAt: r.received_at,
    accessLevel: level(r.access_level) ?? 'blocked',
  };
}

/**
 * SQLite in WAL mode: readers never block the writer, and `synchronous=NORMAL` makes a commit an append to
 * the WAL without an fsync; a power cut can lose the last commits but never corrupts the database. The
 * agent's outbox re-sends anything not acknowledged, so that trade is safe here. Statements are prepared
 * once; better-sqlite3 is synchronous, which on one node process is the fastest SQLite access there is.
 */
export class SqliteStorage implements Storage {
  private readonly db: Database.Database;
  private readonly st;
  private readonly ingestTx: (reports: NewReport[]) => { inserted: boolean; becameLatest: boolean }[];
  private readonly batch: {
    r: NewReport;
    resolve: (v: { inserted: boolean; becameLatest: boolean }) => void;
    reject: (err: unknown) => void;
  }[] = [];

  constructor(dataDir: string) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    this.db = new Database(join(dataDir, 'control-plane.sqlite'));
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    // The CLI (`secret create`) may write while the server runs.
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(MIGRATIONS);
    const ver = this.db.prepare<[], { value: string }>("SELECT value FROM meta WHERE key = 'schema'").get();
    if (!ver) this.db.prepare("INSERT INTO meta (key, value) VALUES ('schema', ?)").run(String(SCHEMA_VERSION));
    else if (Number(ver.value) > SCHEMA_VERSION) {
      throw new Error(`database schema ${ver.value} is newer than this control plane understands (${SCHEMA_VERSION})`);
    }
    const db = this.db;
    this.st = {
      insertSecret: db.prepare(
        'INSERT INTO secrets (id, hash, label, created_at, expires_at, uses_total, uses_left) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      getSecret: db.prepare<[string], SecretRow>('SELECT * FROM secrets WHERE id = ?'),
      listSecrets: db.prepare<[], SecretRow>('SELECT * FROM secrets ORDER BY created_at DESC'),
      takeUse: db.prepare('UPDATE secrets SET uses_left = uses_left - 1 WHERE id = ? AND uses_left > 0'),
      revokeSecret: db.prepare('UPDATE secrets SET revoked = 1 WHERE id = ?'),
      enroll: db.prepare(`INSERT INTO devices (id, facts, enrolled_at, secret_id) VALUES (@id, @facts, @now, @secretId)
        ON CONFLICT (id) DO UPDATE SET facts = @facts, enrolled_at = @now, secret_id = @secretId, last_seq = NULL`),
      getDevice: db.prepare<[string], DeviceRow>('SELECT * FROM devices WHERE id = ?'),
      listDevices: db.prepare<[], DeviceRow>('SELECT * FROM devices ORDER BY id'),
      revokeDevice: db.prepare('UPDATE devices SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),
      setLevel: db.prepare('UPDATE devices SET access_level = ? WHERE id = ?'),
      announce: db.prepare('UPDATE devices SET announced_level = ?, announced_state = ? WHERE id = ?'),
      setRecheck: db.prepare('UPDATE devices SET recheck_id = ?, recheck_at = ? WHERE id = ?'),
      insertReport: db.prepare(`INSERT OR IGNORE INTO reports (report_id, device_id, seq, generated_at, received_at, access_level, body)
        VALUES (?, ?, ?, ?, ?, ?, ?)`),
      touchDevice: db.prepare(`UPDATE devices SET last_seen = MAX(COALESCE(last_seen, 0), @now), dropped = dropped + @dropped,
        cert = @cert WHERE id = @id`),
      makeLatest: db.prepare(`UPDATE devices SET last_seq = @seq, access_level = @level, latest_report_id = @reportId
        WHERE id = @id AND (last_seq IS NULL OR last_seq < @seq)`),
      answerRecheck: db.prepare('UPDATE devices SET recheck_id = NULL, recheck_at = NULL WHERE id = ? AND recheck_id = ?'),
      latestReport: db.prepare<[string], ReportRow>(
        'SELECT r.* FROM reports r JOIN devices d ON d.latest_report_id = r.report_id WHERE d.id = ?',
      ),
      listReports: db.prepare<[string, number], ReportRow>(
        'SELECT report_id, seq, generated_at, received_at, access_level, \'\' AS body FROM reports WHERE device_id = ? ORDER BY seq DESC LIMIT ?',
      ),
      prune: db.prepare(`DELETE FROM reports WHERE rowid IN (
        SELECT rowid FROM reports WHERE device_id = ? ORDER BY seq DESC LIMIT -1 OFFSET ?)`),
      deviceIds: db.prepare<[], { id: string }>('SELECT id FROM devices'),
      getPolicy: db.prepare<[], { body: string }>('SELECT body FROM policies ORDER BY id DESC LIMIT 1'),
      setPolicy: db.prepare('INSERT INTO policies (version, body, set_at) VALUES (?, ?, ?)'),
    };
    this.ingestTx = db.transaction((reports: NewReport[]) => reports.map((r) => this.ingestOne(r)));
  }

  close(): Promise<void> {
    if (this.batch.length > 0) this.commitBatch();
    this.db.close();
    return Promise.resolve();
  }

  createSecret(s: NewSecret): Promise<void> {
    this.st.insertSecret.run(s.id, s.hash, s.label, s.createdAt, s.expiresAt, s.usesTotal, s.usesTotal);
    return Promise.resolve();
  }

  getSecret(id: string): Promise<StoredSecret | null> {
    const row = this.st.getSecret.get(id);
    return Promise.resolve(row ? toSecret(row) : null);
  }

  consumeSecret(id: string, now: number): Promise<ConsumeOutcome> {
    const tx = this.db.transaction((): ConsumeOutcome => {
      const row = this.st.getSecret.get(id);
      if (!row) return 'unknown';
      if (row.revoked !== 0) return 'revoked';
      if (row.expires_at <= now) return 'expired';
      return this.st.takeUse.run(id).changes === 1 ? 'ok' : 'used-up';
    });
    return Promise.resolve(tx.immediate());
  }

  listSecrets(): Promise<StoredSecret[]> {
    return Promise.resolve(this.st.listSecrets.all().map(toSecret));
  }

  revokeSecret(id: string): Promise<boolean> {
    return Promise.resolve(this.st.revokeSecret.run(id).changes === 1);
  }

  enrollDevice(d: { id: string; facts: DeviceFacts; secretId: string; now: number }): Promise<void> {
    this.st.enroll.run({ id: d.id, facts: JSON.stringify(d.facts), now: d.now, secretId: d.secretId });
    return Promise.resolve();
  }

  getDevice(id: string): Promise<StoredDevice | null> {
    const row = this.st.getDevice.get(id);
    return Promise.resolve(row ? toDevice(row) : null);
  }

  listDevices(): Promise<StoredDevice[]> {
    return Promise.resolve(this.st.listDevices.all().map(toDevice));
  }

  revokeDevice(id: string, now: number): Promise<boolean> {
    return Promise.resolve(this.st.revokeDevice.run(now, id).changes === 1);
  }

  setDeviceLevel(id: string, lvl: AccessLevel): Promise<void> {
    this.st.setLevel.run(lvl, id);
    return Promise.resolve();
  }

  setAnnouncedLevel(id: string, lvl: AccessLevel, state: string): Promise<void> {
    this.st.announce.run(lvl, state, id);
    return Promise.resolve();
  }

  setRecheck(id: string, recheck: { requestId: string; requestedAt: number } | null): Promise<void> {
    this.st.setRecheck.run(recheck?.requestId ?? null, recheck?.requestedAt ?? null, id);
    return Promise.resolve();
  }

  /**
   * Group commit: reports arriving in the same event-loop turn share one transaction, so under load the
   * per-commit cost (WAL append, locking) is paid once per batch instead of once per report. Each caller
   * still gets its own result only after the batch has committed.
   */
  ingestReport(r: NewReport): Promise<{ inserted: boolean; becameLatest: boolean }> {
    return new Promise((resolve, reject) => {
      this.batch.push({ r, resolve, reject });
      if (this.batch.length === 1) setImmediate(() => {
        this.commitBatch();
      });
    });
  }

  private commitBatch(): void {
    const batch = this.batch.splice(0);
    let results: { inserted: boolean; becameLatest: boolean }[];
    try {
      results = this.ingestTx(batch.map((b) => b.r));
    } catch (err) {
      for (const b of batch) b.reject(err);
      return;
    }
    batch.forEach((b, i) => {
      b.resolve(results[i] ?? { inserted: false, becameLatest: false });
    });
  }

  private ingestOne(r: NewReport): { inserted: boolean; becameLatest: boolean } {
    const ins = this.st.insertReport.run(
      r.reportId,
      r.deviceId,
      r.seq,
      r.report.generatedAt,
      r.receivedAt,
      r.accessLevel,
      JSON.stringify(r.report),
    );
    if (ins.changes === 0) return { inserted: false, becameLatest: false };
    this.st.touchDevice.run({ id: r.deviceId, now: r.receivedAt, dropped: r.dropped, cert: JSON.stringify(r.cert) });
    const latest = this.st.makeLatest.run({ id: r.deviceId, seq: r.seq, level: r.accessLevel, reportId: r.reportId });
    if (r.answersRecheck !== null) this.st.answerRecheck.run(r.deviceId, r.answersRecheck);
    return { inserted: true, becameLatest: latest.changes === 1 };
  }

  getLatestReport(deviceId: string): Promise<StoredReport | null> {
    const row = this.st.latestReport.get(deviceId);
    if (!row) return Promise.resolve(null);
    return Promise.resolve({ ...toMeta(row), report: postureReportSchema.parse(JSON.parse(row.body)) });
  }

  listReports(deviceId: string, limit: number): Promise<StoredReportMeta[]> {
    return Promise.resolve(this.st.listReports.all(deviceId, limit).map(toMeta));
  }

  pruneReports(keep: number): Promise<number> {
    let removed = 0;
    for (const { id } of this.st.deviceIds.all()) removed += this.st.prune.run(id, keep).changes;
    return Promise.resolve(removed);
  }

  getPolicy(): Promise<Policy | null> {
    const row = this.st.getPolicy.get();
    return Promise.resolve(row ? policySchema.parse(JSON.parse(row.body)) : null);
  }

  setPolicy(policy: Policy, now: number): Promise<void> {
    this.st.setPolicy.run(policy.version, JSON.stringify(policy), now);
    return Promise.resolve();
  }
}
