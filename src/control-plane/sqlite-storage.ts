import { closeSync, fdatasync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import type { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { policySchema, type AccessLevel, type Policy } from '../policy/schema.js';
import type { EvaluatedResult } from '../policy/evaluate.js';
import type { Platform } from '../posture/types.js';
import { DEVICE_STATES, type AccessLevelEvent, type CertInfo, type DeviceState } from '../protocol/admin.js';
import { postureReportSchema, type DeviceFacts } from '../protocol/report.js';
import {
  InvalidCursorError,
  type Announcement,
  type ConsumeOutcome,
  type DeviceFilter,
  type DevicePageQuery,
  type Ingested as IngestOutcome,
  type Page,
  type PageQuery,
  type RetentionRules,
  type NewReport,
  type NewReservation,
  type StoredEvent,
  type NewSecret,
  type NewApiToken,
  type Storage,
  type StoredApiToken,
  type StoredDevice,
  type StoredReport,
  type StoredReportMeta,
  type StoredSecret,
  type NewAdmin,
  type StoredAdmin,
  type NewSession,
  type StoredSession,
  type NewAuditEntry,
  type StoredAuditEntry,
  type FleetCountsPage,
  type DeviceResults,
  type FleetSnapshot,
} from './storage.js';
import { level, toAdmin, toApiToken, toAudit, toDevice, toMeta, toSecret, toSession } from './storage-rows.js';
import type { AdminRow, ApiTokenRow, AuditRow, DeviceRow, ReportMetaRow, SecretRow, SessionRow } from './storage-rows.js';
import { spawnWorker } from './spawn-worker.js';
import { yieldToLoop } from './yield.js';
import type { CheckpointerData, CheckpointerReply, CheckpointerRequest } from './wal-checkpointer-worker.js';

/**
 * 2: `reports.body` holds the envelope as the agent sent it (gzip BLOB or JSON text), not the bare report.
 * 3: reports are keyed by (device_id, seq, report_id) in one unique index instead of a report_id primary key
 * beside a (device_id, seq) index. A random UUID key dirtied one more B-tree page per report, which SQLite
 * wrote to the WAL and again at checkpoint: about 40% of the SQLite time of a report. A retry repeats its
 * envelope byte for byte, so the wider key dedupes it just the same.
 * 4: the device's current posture follows the newest report received, not the highest seq (a forged seq far
 * ahead froze it); devices keep the previous seq, a count of sequence anomalies, why and which certificate was
 * revoked, and whether an admin allowed re-enrollment; access-level events are kept in `events`, so a stream
 * consumer resumes across restarts; an enrollment holds a use of its secret (`reservations`) until the device
 * first presents its certificate, so a failed enrollment spends nothing and leaves no device behind.
 * 5: scoped bearer tokens (`api_tokens`, SHA-256 only); devices keep the OS and managed flag of their latest
 * report (`posture`) and what was last announced of their certificate, OS and management (`announced_attrs`),
 * so that gateways following the event stream learn of a renewed certificate or an OS upgrade.
 * 6: retention and 100,000 devices. Reports keep their body's size (`body_size`) and are indexed by arrival
 * time (age pruning walks that index); devices keep how many reports and bytes of history they have
 * (`report_count`, `report_bytes`, so pruning by count and size finds the devices over a limit without
 * reading their reports) and which checks failed in their latest report (`failing_checks`, for the device
 * list's filter; NULL until a device's first report after the upgrade).
 * 6 (merged): also the admin console: named accounts (`admins`, scrypt hashes), their sessions (`sessions`, SHA-256 of the
 * cookie only), the audit log (`audit`) and hourly fleet counts (`fleet_snapshots`). New tables only, so the
 * upgrade is the CREATE TABLE IF NOT EXISTS below.
 */
export const SCHEMA_VERSION = 6;

/** The database's file name in the data dir. */
export const SQLITE_FILE = 'control-plane.sqlite';

const REPORTS_TABLE = `(
  report_id TEXT NOT NULL, device_id TEXT NOT NULL, seq INTEGER NOT NULL, generated_at TEXT NOT NULL,
  received_at INTEGER NOT NULL, access_level TEXT NOT NULL, body TEXT NOT NULL, body_size INTEGER NOT NULL DEFAULT 0
)`;
const REPORTS_INDEX = 'CREATE UNIQUE INDEX IF NOT EXISTS reports_by_device ON reports (device_id, seq, report_id)';
/** Arrival times only grow, so this index is appended to at its tail: cheap on ingest. */
const REPORTS_BY_RECEIVED = 'CREATE INDEX IF NOT EXISTS reports_by_received ON reports (received_at)';

/** Device columns added by schema 4, for a devices table created before it. */
const DEVICE_COLUMNS_V4: Record<string, string> = {
  prev_seq: 'INTEGER',
  seq_anomalies: 'INTEGER NOT NULL DEFAULT 0',
  revoked_reason: 'TEXT',
  revoked_serial: 'TEXT',
  reenroll_allowed: 'INTEGER NOT NULL DEFAULT 0',
};

/** Device columns added by schema 5. */
const DEVICE_COLUMNS_V5: Record<string, string> = {
  posture: 'TEXT',
  announced_attrs: 'TEXT',
};

/** Device columns added by schema 6; `failing_checks` is `,id,id,` (see failingChecksColumn). */
const DEVICE_COLUMNS_V6: Record<string, string> = {
  report_count: 'INTEGER NOT NULL DEFAULT 0',
  report_bytes: 'INTEGER NOT NULL DEFAULT 0',
  failing_checks: 'TEXT',
};

/** Rebuilds a schema 1 or 2 reports table (report_id primary key) as schema 3. */
const REPORTS_TO_V3 = `
CREATE TABLE reports_v3 ${REPORTS_TABLE};
INSERT INTO reports_v3 (report_id, device_id, seq, generated_at, received_at, access_level, body)
  SELECT report_id, device_id, seq, generated_at, received_at, access_level, body FROM reports ORDER BY rowid;
DROP TABLE reports;
ALTER TABLE reports_v3 RENAME TO reports;
${REPORTS_INDEX};
`;

const MIGRATIONS = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS secrets (
  id TEXT PRIMARY KEY, hash BLOB NOT NULL, label TEXT, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
  uses_total INTEGER NOT NULL, uses_left INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS devices (
  id TEXT PRIMARY KEY, facts TEXT NOT NULL, enrolled_at INTEGER NOT NULL, secret_id TEXT, revoked_at INTEGER,
  last_seen INTEGER, last_seq INTEGER, access_level TEXT, cert TEXT, dropped INTEGER NOT NULL DEFAULT 0,
  announced_level TEXT, announced_state TEXT, recheck_id TEXT, recheck_at INTEGER, latest_report_id TEXT,
  prev_seq INTEGER, seq_anomalies INTEGER NOT NULL DEFAULT 0, revoked_reason TEXT, revoked_serial TEXT,
  reenroll_allowed INTEGER NOT NULL DEFAULT 0, posture TEXT, announced_attrs TEXT,
  report_count INTEGER NOT NULL DEFAULT 0, report_bytes INTEGER NOT NULL DEFAULT 0, failing_checks TEXT
);
CREATE TABLE IF NOT EXISTS api_tokens (
  id TEXT PRIMARY KEY, hash BLOB NOT NULL, scope TEXT NOT NULL, name TEXT NOT NULL, created_at INTEGER NOT NULL,
  revoked_at INTEGER
);
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reservations (
  device_id TEXT PRIMARY KEY, secret_id TEXT NOT NULL, facts TEXT NOT NULL, created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL, refuse_serial TEXT
);
CREATE INDEX IF NOT EXISTS reservations_by_secret ON reservations (secret_id, expires_at);
CREATE TABLE IF NOT EXISTS policies (
  id INTEGER PRIMARY KEY AUTOINCREMENT, version TEXT NOT NULL, body TEXT NOT NULL, set_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS admins (
  name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, created_at INTEGER NOT NULL, disabled INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sessions (
  id_hash BLOB PRIMARY KEY, admin TEXT NOT NULL, csrf TEXT NOT NULL, created_at INTEGER NOT NULL,
  last_seen INTEGER NOT NULL, ip TEXT NOT NULL, user_agent TEXT
);
CREATE INDEX IF NOT EXISTS sessions_by_admin ON sessions (admin);
CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
  target TEXT, ip TEXT, detail TEXT
);
CREATE TABLE IF NOT EXISTS fleet_snapshots (
  at INTEGER PRIMARY KEY, full INTEGER NOT NULL, limited INTEGER NOT NULL, blocked INTEGER NOT NULL, stale INTEGER NOT NULL
);
`;

interface OldReportRow {
  rowid: number;
  received_at: number;
  device_id: string;
  body_size: number;
  latest: number;
}

interface Ingested extends IngestOutcome {
  applied?: AppliedRow;
}

/** A device row's columns that a report changes, as `applyReport` leaves them. */
type AppliedRow = Pick<
  DeviceRow,
  'last_seen' | 'dropped' | 'recheck_id' | 'recheck_at' | 'access_level' | 'last_seq' | 'prev_seq' | 'seq_anomalies'
> & { anomaly: number };

interface ReportRow extends ReportMetaRow {
  rowid?: number;
  body: string | Buffer;
}

/**
 * The effective state and level of effectiveOf (service.ts) in SQL, with `@staleBefore` = now - maxReportAge.
 * Kept beside it by the contract tests, which compare the device list's filters with effectiveOf.
 */
const STATE_SQL = `(CASE WHEN revoked_at IS NOT NULL THEN 'revoked' WHEN last_seen IS NULL OR access_level IS NULL THEN 'enrolled'
  WHEN last_seen < @staleBefore THEN 'stale' ELSE 'active' END)`;
const LEVEL_SQL = `(CASE WHEN ${STATE_SQL} = 'active' THEN access_level ELSE 'blocked' END)`;

/** The device list's filters as SQL conditions on a devices row, with the parameters they take. */
const FILTER_SQL: { [K in keyof Required<DeviceFilter>]: string } = {
  state: `${STATE_SQL} = @state`,
  level: `${LEVEL_SQL} = @level`,
  os: `@os IN (COALESCE(json_extract(posture, '$.os.id'), json_extract(facts, '$.os.id')),
    COALESCE(json_extract(posture, '$.os.platform'), json_extract(facts, '$.platform')))`,
  failingCheck: "instr(failing_checks, ',' || @failingCheck || ',') > 0",
  seenBefore: 'last_seen < @seenBefore',
  seenAfter: 'last_seen >= @seenAfter',
  q: "(instr(id, @q) > 0 OR instr(lower(json_extract(facts, '$.hostname')), @q) > 0)",
};

/** `,a,b,` so that one check is found with instr(); '' when none failed. */
function failingChecksColumn(ids: readonly string[]): string {
  return ids.length === 0 ? '' : `,${ids.join(',')},`;
}

/**
 * Rows examined per synchronous step of a scan over devices (listing, pruning): a dense page reads and parses
 * at most this many devices at once (about 2-3 ms), and a sparse filter yields to other requests this often.
 */
const SCAN_STEP = 250;

/** Announcements in one call from which the call is paced like other bulk writes (see afterBulkWrite). */
const BULK_ANNOUNCEMENTS = 50;

/** Reports deleted per transaction when a device is removed. */
const DELETE_BATCH = 200;

/** `created_at:id`, the position of a secret or token in its newest-first list. */
function timeCursor(after: string | null): { at: number; id: string } | null {
  if (after === null) return null;
  const m = /^(\d{1,16}):(.{1,200})$/.exec(after);
  if (!m?.[1] || m[2] === undefined) throw new InvalidCursorError('cursor: not one this list handed out');
  return { at: Number(m[1]), id: m[2] };
}

export interface SqliteStorageOptions {
  /** Flushes the WAL file to stable storage. Tests substitute it to hold a commit open or make it fail. */
  syncWal?: (fd: number) => Promise<void>;
  /** Devices kept in memory; about 2 KB each. The least recently read is evicted first. */
  maxCachedDevices?: number;
  /**
   * Checkpoint the WAL into the database from a worker thread (the server) instead of inside a commit on the
   * event loop. A checkpoint syncs the database file, which stalled every request for about 10 ms several
   * times a second under load. One-shot CLI commands leave this off.
   */
  backgroundCheckpoints?: boolean;
  /** Told when the checkpoint worker fails; SQLite then checkpoints inside commits again, as without it. */
  onCheckpointerError?: (err: unknown) => void;
}

/** Often enough to keep the WAL to a few megabytes at full ingest, rarely enough to be free when idle. */
const CHECKPOINT_EVERY_MS = 200;
/** SQLite's own default, for a connection that checkpoints inside its commits. */
const AUTOCHECKPOINT_PAGES = 1000;
/** With a checkpoint worker: only if it cannot keep up (or a reader pins the WAL) does a commit checkpoint. */
const BACKSTOP_AUTOCHECKPOINT_PAGES = 16_000;

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

const NOT_INSERTED: IngestOutcome = Object.freeze({ inserted: false, becameLatest: false, previousSeq: null, seqAnomaly: false });

/** A stored report body: the envelope, gzip-compressed (BLOB) or as JSON text. */
function envelopeReport(body: string | Buffer): unknown {
  const text = typeof body === 'string' ? body : gunzipSync(body).toString('utf8');
  const env = JSON.parse(text) as { report?: unknown };
  return env.report;
}

/**
 * SQLite in WAL mode. Nothing is acknowledged before it is durable: every write resolves only after the WAL
 * holding it has been flushed with fdatasync, which is what `synchronous=FULL` adds over `NORMAL` in WAL mode
 * (one WAL sync per commit; checkpoint syncs are the same in both). Doing that flush ourselves, on libuv's
 * thread pool, keeps the event loop serving TLS and parsing while the disk works, and lets one flush cover
 * every commit made before it started (group commit). Statements are prepared once; better-sqlite3 is
 * synchronous, which on one node process is the fastest SQLite access there is.
 */
export class SqliteStorage implements Storage {
  private readonly db: Database.Database;
  private readonly st;
  private readonly ingestTx: (reports: NewReport[]) => Ingested[];
  private readonly batch: {
    r: NewReport;
    resolve: (v: IngestOutcome) => void;
    reject: (err: unknown) => void;
  }[] = [];
  private readonly walFd: number;
  private readonly syncWal: (fd: number) => Promise<void>;
  /** The flush under way, if any; commits made after it started wait for `nextSync`. */
  private syncing: Promise<void> | null = null;
  private nextSync: Waiter[] = [];
  /** After a failed flush the page cache may hold data the disk lost; nothing more may be acknowledged. */
  private failed: Error | null = null;
  private readonly certJson = new WeakMap<CertInfo, string>();
  /**
   * Devices as last read or written, so that authenticating a report costs no query and no JSON parsing.
   * Entries are frozen: callers share them. Writes by this connection update or drop their entry; a commit by
   * any other connection (the CLI, a second server on the same file) bumps `PRAGMA data_version`, which is
   * read once per event-loop turn (it costs as much as a query), and the whole cache is dropped.
   */
  private readonly devices = new Map<string, StoredDevice>();
  private devicesVersion = -1;
  private versionCheckedThisTurn = false;
  private readonly maxCachedDevices: number;
  private checkpointer: Worker | null = null;
  /** Checkpoint requests sent to the worker and replies received; replies come in order. */
  private checkpointsAsked = 0;
  private checkpointsDone = 0;
  private checkpointWaiters: { upTo: number; resolve: () => void }[] = [];
  private checkpointTimer: NodeJS.Timeout | null = null;

  constructor(dataDir: string, opts: SqliteStorageOptions = {}) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const file = join(dataDir, SQLITE_FILE);
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    // The per-commit WAL sync is ours (see the class comment); NORMAL still syncs around checkpoints.
    this.db.pragma('synchronous = NORMAL');
    // The CLI (`secret create`) may write while the server runs.
    this.db.pragma('busy_timeout = 5000');
    try {
      this.migrate();
    } catch (err) {
      this.db.close();
      throw err;
    }
    // The WAL file exists from the first read in WAL mode and keeps its inode while this connection is open
    // (SQLite only deletes it when the last connection closes). SQLite takes no locks on it, so a second
    // descriptor cannot disturb SQLite's POSIX locks.
    this.walFd = openSync(`${file}-wal`, 'r');
    this.syncWal = opts.syncWal ?? promisify(fdatasync);
    this.maxCachedDevices = opts.maxCachedDevices ?? 50_000;
    if (opts.backgroundCheckpoints === true) this.startCheckpointer(file, opts.onCheckpointerError);
    const db = this.db;
    this.st = {
      insertSecret: db.prepare(
        'INSERT INTO secrets (id, hash, label, created_at, expires_at, uses_total, uses_left) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      getSecret: db.prepare<[string], SecretRow>('SELECT * FROM secrets WHERE id = ?'),
      listSecrets: db.prepare<{ at: number | null; id: string; limit: number }, SecretRow>(`SELECT * FROM secrets
        WHERE @at IS NULL OR created_at < @at OR (created_at = @at AND id > @id) ORDER BY created_at DESC, id LIMIT @limit`),
      takeUse: db.prepare('UPDATE secrets SET uses_left = uses_left - 1 WHERE id = ? AND uses_left > 0'),
      heldUses: db.prepare<[string, string, number], number>(
        'SELECT COUNT(*) FROM reservations WHERE secret_id = ? AND device_id != ? AND expires_at > ?',
      ).pluck(),
      reserve: db.prepare(`INSERT INTO reservations (device_id, secret_id, facts, created_at, expires_at, refuse_serial)
        VALUES (@deviceId, @secretId, @facts, @now, @expiresAt, @refuseSerial) ON CONFLICT (device_id) DO UPDATE SET
        secret_id = @secretId, facts = @facts, created_at = @now, expires_at = @expiresAt, refuse_serial = @refuseSerial`),
      getReservation: db.prepare<[string, number], { secret_id: string; facts: string; created_at: number; refuse_serial: string | null }>(
        'SELECT secret_id, facts, created_at, refuse_serial FROM reservations WHERE device_id = ? AND expires_at > ?',
      ),
      dropReservation: db.prepare('DELETE FROM reservations WHERE device_id = ?'),
      pruneReservations: db.prepare('DELETE FROM reservations WHERE expires_at <= ?'),
      setCert: db.prepare('UPDATE devices SET cert = ? WHERE id = ?'),
      revokeSecret: db.prepare('UPDATE secrets SET revoked = 1 WHERE id = ?'),
      enroll: db.prepare(`INSERT INTO devices (id, facts, enrolled_at, secret_id) VALUES (@id, @facts, @now, @secretId)
        ON CONFLICT (id) DO UPDATE SET facts = @facts, enrolled_at = @now, secret_id = @secretId, last_seq = NULL, prev_seq = NULL,
          reenroll_allowed = 0, last_seen = NULL, access_level = NULL, latest_report_id = NULL, cert = NULL, posture = NULL,
          revoked_serial = COALESCE(@refuseSerial, revoked_serial)`),
      getDevice: db.prepare<[string], DeviceRow>('SELECT * FROM devices WHERE id = ?'),
      dataVersion: db.prepare<[], number>('PRAGMA data_version').pluck(),
      // Where a scan step that starts after an id ends: SCAN_STEP rows on, by the primary key's index.
      stepEnd: db.prepare<[string, number], string>('SELECT id FROM devices WHERE id > ? ORDER BY id LIMIT 1 OFFSET ?').pluck(),
      // Devices whose announced state, level or attrs are not what they are now (see devicesNeedingAnnouncement).
      unannounced: db.prepare<{ after: string; upto: string; staleBefore: number }, DeviceRow>(`SELECT * FROM devices
        WHERE id > @after AND id <= @upto AND (announced_state IS NOT ${STATE_SQL} OR announced_level IS NOT ${LEVEL_SQL}
          OR announced_attrs IS NULL) ORDER BY id`),
      // The certificate the device held is remembered, so that it stays refused after an admin re-admits it.
      revokeDevice: db.prepare(`UPDATE devices SET revoked_at = ?, revoked_reason = ?, revoked_serial = json_extract(cert, '$.serial')
        WHERE id = ? AND revoked_at IS NULL`),
      // Back to "enrolled": the device must enroll again (its certificate was revoked) and reports afresh.
      readmitDevice: db.prepare(`UPDATE devices SET revoked_at = NULL, revoked_reason = NULL, reenroll_allowed = 1, last_seen = NULL,
        access_level = NULL, last_seq = NULL, prev_seq = NULL, latest_report_id = NULL, cert = NULL, posture = NULL WHERE id = ? AND revoked_at IS NOT NULL`),
      allowReenroll: db.prepare('UPDATE devices SET reenroll_allowed = 1 WHERE id = ?'),
      deleteSomeReports: db.prepare<[string, number]>('DELETE FROM reports WHERE rowid IN (SELECT rowid FROM reports WHERE device_id = ? LIMIT ?)'),
      deleteDevice: db.prepare('DELETE FROM devices WHERE id = ?'),
      insertEvent: db.prepare<[number, string], { id: number }>('INSERT INTO events (at, body) VALUES (?, ?) RETURNING id'),
      eventsSince: db.prepare<[number, number], { id: number; body: string }>('SELECT id, body FROM events WHERE id > ? ORDER BY id LIMIT ?'),
      eventBounds: db.prepare<[], { oldest: number | null; newest: number | null }>('SELECT MIN(id) AS oldest, MAX(id) AS newest FROM events'),
      // AUTOINCREMENT's counter survives deletion, so ids are never reused and a consumer's Last-Event-ID stays meaningful.
      eventCounter: db.prepare<[], { seq: number }>("SELECT seq FROM sqlite_sequence WHERE name = 'events'"),
      // Only the oldest `limit` events are looked at: ids and times grow together, so once one of those is kept,
      // every later one is too, and a prune with nothing to do reads one page.
      pruneEvents: db.prepare<{ keepAbove: number; olderThan: number; limit: number }>(`DELETE FROM events WHERE id IN (
        SELECT id FROM (SELECT id, at FROM events ORDER BY id LIMIT @limit) WHERE id <= @keepAbove OR at < @olderThan)`),
      maxEventId: db.prepare<[], number | null>('SELECT MAX(id) FROM events').pluck(),
      setLevel: db.prepare('UPDATE devices SET access_level = ? WHERE id = ? AND latest_report_id = ?'),
      announce: db.prepare('UPDATE devices SET announced_level = ?, announced_state = ?, announced_attrs = ? WHERE id = ?'),
      announceIf: db.prepare<Record<string, string | number | null>>(`UPDATE devices SET announced_level = @level, announced_state = @state,
        announced_attrs = @attrs WHERE id = @id AND last_seen IS @lastSeen AND revoked_at IS @revokedAt
        AND announced_level IS @announcedLevel AND announced_state IS @announcedState`),
      setRecheck: db.prepare('UPDATE devices SET recheck_id = ?, recheck_at = ? WHERE id = ?'),
      insertReport: db.prepare(`INSERT INTO reports (report_id, device_id, seq, generated_at, received_at, access_level, body, body_size)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device_id, seq, report_id) DO NOTHING`),
      // One statement for everything a new report changes on its device. The newest report received is the
      // device's posture whatever its seq: a seq is the agent's claim, and trusting its order let one report
      // with a seq far ahead freeze the verdict. A seq that goes back, or jumps past what the reports the agent
      // says it dropped explain, is counted. SET expressions all see the row as it was.
      applyReport: db.prepare<Record<string, string | number | null>, AppliedRow>(`UPDATE devices SET
          last_seen = MAX(COALESCE(last_seen, 0), @now), dropped = dropped + @dropped, cert = @cert, posture = @posture,
          recheck_id = CASE WHEN recheck_id = @answers THEN NULL ELSE recheck_id END,
          recheck_at = CASE WHEN recheck_id = @answers THEN NULL ELSE recheck_at END,
          access_level = @level, latest_report_id = @reportId, prev_seq = last_seq, last_seq = @seq, failing_checks = @failing,
          report_count = report_count + 1, report_bytes = report_bytes + @size,
          seq_anomalies = seq_anomalies + (last_seq IS NOT NULL AND (@seq <= last_seq OR @seq > last_seq + 1 + @dropped))
        WHERE id = @id RETURNING last_seen, dropped, recheck_id, recheck_at, access_level, last_seq, prev_seq, seq_anomalies,
          (prev_seq IS NOT NULL AND (@seq <= prev_seq OR @seq > prev_seq + 1 + @dropped)) AS anomaly`),
      latestReport: db.prepare<[string], ReportRow>(
        'SELECT r.* FROM devices d JOIN reports r ON r.device_id = d.id AND r.seq = d.last_seq AND r.report_id = d.latest_report_id WHERE d.id = ?',
      ),
      // History is in the order reports arrived (rowid), for the same reason the posture is.
      listReports: db.prepare<[string, number, number], ReportRow>(`SELECT rowid, report_id, seq, generated_at, received_at, access_level,
        body_size, '' AS body FROM reports WHERE device_id = ? AND rowid < ? ORDER BY rowid DESC LIMIT ?`),
      // Age: the oldest reports by arrival after a position in that order, and whether each is its device's latest.
      oldReports: db.prepare<{ olderThan: number; at: number; rowid: number; limit: number }, OldReportRow>(`SELECT r.rowid, r.received_at,
          r.device_id, r.body_size, (d.latest_report_id IS r.report_id AND d.last_seq IS r.seq) AS latest
        FROM reports r LEFT JOIN devices d ON d.id = r.device_id
        WHERE r.received_at < @olderThan AND (r.received_at, r.rowid) > (@at, @rowid) ORDER BY r.received_at, r.rowid LIMIT @limit`),
      deleteReport: db.prepare<[number]>('DELETE FROM reports WHERE rowid = ?'),
      // Counters follow what pruning deleted, so the next prune does not visit the device again.
      uncount: db.prepare<[number, number, string]>('UPDATE devices SET report_count = report_count - ?, report_bytes = report_bytes - ? WHERE id = ?'),
      overLimit: db.prepare<{ after: string; upto: string; keep: number; maxBytes: number }, string>(`SELECT id FROM devices
        WHERE id > @after AND id <= @upto AND (report_count > @keep OR report_bytes > @maxBytes) ORDER BY id`).pluck(),
      // A device's reports past the newest `keep`, or past `maxBytes` counted from the newest; never the newest.
      excessReports: db.prepare<{ id: string; keep: number; maxBytes: number; limit: number }, { rowid: number; body_size: number }>(`
        SELECT rowid, body_size FROM (SELECT rowid, body_size, ROW_NUMBER() OVER w AS n, SUM(body_size) OVER w AS total
          FROM reports WHERE device_id = @id WINDOW w AS (ORDER BY rowid DESC))
        WHERE n > 1 AND (n > @keep OR total > @maxBytes) LIMIT @limit`),
      getPolicy: db.prepare<[], { body: string }>('SELECT body FROM policies ORDER BY id DESC LIMIT 1'),
      setPolicy: db.prepare('INSERT INTO policies (version, body, set_at) VALUES (?, ?, ?)'),
      insertApiToken: db.prepare('INSERT INTO api_tokens (id, hash, scope, name, created_at) VALUES (?, ?, ?, ?, ?)'),
      getApiToken: db.prepare<[string], ApiTokenRow>('SELECT * FROM api_tokens WHERE id = ?'),
      listApiTokens: db.prepare<{ at: number | null; id: string; limit: number }, ApiTokenRow>(`SELECT * FROM api_tokens
        WHERE @at IS NULL OR created_at < @at OR (created_at = @at AND id > @id) ORDER BY created_at DESC, id LIMIT @limit`),
      revokeApiToken: db.prepare('UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),
      insertAdmin: db.prepare('INSERT INTO admins (name, password_hash, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING'),
      getAdmin: db.prepare<[string], AdminRow>('SELECT * FROM admins WHERE name = ?'),
      listAdmins: db.prepare<[], AdminRow>('SELECT * FROM admins ORDER BY name'),
      setAdminPassword: db.prepare('UPDATE admins SET password_hash = ? WHERE name = ?'),
      deleteAdmin: db.prepare('DELETE FROM admins WHERE name = ?'),
      deleteAdminSessions: db.prepare('DELETE FROM sessions WHERE admin = ?'),
      insertSession: db.prepare(`INSERT INTO sessions (id_hash, admin, csrf, created_at, last_seen, ip, user_agent)
        VALUES (@idHash, @admin, @csrf, @createdAt, @createdAt, @ip, @userAgent)`),
      getSession: db.prepare<[Buffer], SessionRow>('SELECT * FROM sessions WHERE id_hash = ?'),
      touchSession: db.prepare('UPDATE sessions SET last_seen = MAX(last_seen, ?) WHERE id_hash = ?'),
      deleteSession: db.prepare('DELETE FROM sessions WHERE id_hash = ?'),
      pruneSessions: db.prepare('DELETE FROM sessions WHERE last_seen < ? OR created_at < ?'),
      insertAudit: db.prepare<[number, string, string, string | null, string | null, string | null], { id: number }>(
        'INSERT INTO audit (at, actor, action, target, ip, detail) VALUES (?, ?, ?, ?, ?, ?) RETURNING id',
      ),
      listAudit: db.prepare<[number, number], AuditRow>('SELECT * FROM audit WHERE id < ? ORDER BY id DESC LIMIT ?'),
      pageLastId: db.prepare<[string, number], string | null>('SELECT MAX(id) FROM (SELECT id FROM devices WHERE id > ? ORDER BY id LIMIT ?)').pluck(),
      countPage: db.prepare<{ staleBefore: number; after: string; limit: number }, { state: string; level: string | null; os: string | null; n: number }>(
        `SELECT state, CASE WHEN state = 'active' THEN access_level ELSE 'blocked' END AS level, os, COUNT(*) AS n FROM (
           SELECT ${STATE_SQL} AS state, access_level, COALESCE(json_extract(posture, '$.os.name'), json_extract(facts, '$.os.name')) AS os
           FROM (SELECT * FROM devices WHERE id > @after ORDER BY id LIMIT @limit)) GROUP BY 1, 2, 3`,
      ),
      failingPage: db.prepare<[string, number], string>(
        `SELECT failing_checks FROM (SELECT failing_checks, revoked_at FROM devices WHERE id > ? ORDER BY id LIMIT ?)
         WHERE revoked_at IS NULL AND failing_checks IS NOT NULL AND failing_checks != ','`,
      ).pluck(),
      latestResultsPage: db.prepare<[string, number], DeviceRow & { report_rid: string | null; report_body: string | Buffer | null }>(
        `SELECT d.*, r.report_id AS report_rid, r.body AS report_body FROM devices d
         LEFT JOIN reports r ON r.device_id = d.id AND r.seq = d.last_seq AND r.report_id = d.latest_report_id
         WHERE d.id > ? ORDER BY d.id LIMIT ?`,
      ),
      putSnapshot: db.prepare(`INSERT INTO fleet_snapshots (at, full, limited, blocked, stale) VALUES (@at, @full, @limited, @blocked, @stale)
        ON CONFLICT (at) DO UPDATE SET full = @full, limited = @limited, blocked = @blocked, stale = @stale`),
      listSnapshots: db.prepare<[number], FleetSnapshot>('SELECT at, full, limited, blocked, stale FROM fleet_snapshots WHERE at >= ? ORDER BY at'),
      pruneSnapshots: db.prepare('DELETE FROM fleet_snapshots WHERE at < ?'),
    };
    this.ingestTx = db.transaction((reports: NewReport[]) => reports.map((r) => this.ingestOne(r)));
  }

  private migrate(): void {
    const db = this.db;
    db.transaction(() => {
      db.exec(MIGRATIONS);
      const ver = db.prepare<[], { value: string }>("SELECT value FROM meta WHERE key = 'schema'").get();
      if (!ver) {
        db.exec(`CREATE TABLE reports ${REPORTS_TABLE}; ${REPORTS_INDEX}; ${REPORTS_BY_RECEIVED};`);
        db.prepare("INSERT INTO meta (key, value) VALUES ('schema', ?)").run(String(SCHEMA_VERSION));
        return;
      }
      const from = Number(ver.value);
      if (from > SCHEMA_VERSION) {
        throw new Error(`database schema ${ver.value} is newer than this control plane understands (${SCHEMA_VERSION})`);
      }
      if (from === SCHEMA_VERSION) return;
      if (from < 2) db.exec("UPDATE reports SET body = json_object('report', json(body))");
      if (from < 3) db.exec(REPORTS_TO_V3);
      if (from < 4) {
        const have = new Set(db.prepare<[], { name: string }>('SELECT name FROM pragma_table_info(\'devices\')').all().map((c) => c.name));
        for (const [col, type] of Object.entries(DEVICE_COLUMNS_V4)) if (!have.has(col)) db.exec(`ALTER TABLE devices ADD COLUMN ${col} ${type}`);
      }
      if (from < 5) {
        // api_tokens came with MIGRATIONS above. announced_attrs starts NULL, so every device's next announcement
        // (the stale sweep reaches all of them) tells gateways its certificate, OS and management.
        const have = new Set(db.prepare<[], { name: string }>('SELECT name FROM pragma_table_info(\'devices\')').all().map((c) => c.name));
        for (const [col, type] of Object.entries(DEVICE_COLUMNS_V5)) if (!have.has(col)) db.exec(`ALTER TABLE devices ADD COLUMN ${col} ${type}`);
      }
      if (from < 6) {
        // One pass over the history: slow on a big database, but once, inside the upgrade's transaction.
        const columns = (table: string): Set<string> =>
          new Set(db.prepare<[string], { name: string }>('SELECT name FROM pragma_table_info(?)').all(table).map((c) => c.name));
        if (!columns('reports').has('body_size')) db.exec('ALTER TABLE reports ADD COLUMN body_size INTEGER NOT NULL DEFAULT 0');
        db.exec(`UPDATE reports SET body_size = length(CAST(body AS BLOB)); ${REPORTS_BY_RECEIVED};`);
        const have = columns('devices');
        for (const [col, type] of Object.entries(DEVICE_COLUMNS_V6)) if (!have.has(col)) db.exec(`ALTER TABLE devices ADD COLUMN ${col} ${type}`);
        db.exec(`UPDATE devices SET report_count = (SELECT COUNT(*) FROM reports WHERE device_id = devices.id),
          report_bytes = (SELECT COALESCE(SUM(body_size), 0) FROM reports WHERE device_id = devices.id)`);
      }
      db.prepare("UPDATE meta SET value = ? WHERE key = 'schema'").run(String(SCHEMA_VERSION));
    }).immediate();
  }

  private startCheckpointer(file: string, onError: ((err: unknown) => void) | undefined): void {
    const worker = spawnWorker('wal-checkpointer-worker', { workerData: { file } satisfies CheckpointerData });
    // The server's sockets keep the process alive, not its housekeeping.
    worker.unref();
    const fallBack = (err: unknown): void => {
      if (this.checkpointer !== worker) return;
      this.checkpointer = null;
      for (const w of this.checkpointWaiters.splice(0)) w.resolve();
      this.db.pragma(`wal_autocheckpoint = ${AUTOCHECKPOINT_PAGES}`);
      onError?.(err);
    };
    worker.on('error', fallBack);
    worker.on('exit', (code) => {
      fallBack(new Error(`the WAL checkpoint worker exited with code ${code}`));
    });
    worker.on('message', (m: unknown) => {
      if (m !== ('checkpointed' satisfies CheckpointerReply)) return;
      this.checkpointsDone += 1;
      this.checkpointWaiters = this.checkpointWaiters.filter((w) => {
        if (w.upTo > this.checkpointsDone) return true;
        w.resolve();
        return false;
      });
    });
    this.db.pragma(`wal_autocheckpoint = ${BACKSTOP_AUTOCHECKPOINT_PAGES}`);
    this.checkpointer = worker;
  }

  /** After a commit: the worker checkpoints what has accumulated, at most every CHECKPOINT_EVERY_MS. */
  private scheduleCheckpoint(): void {
    if (!this.checkpointer || this.checkpointTimer) return;
    this.checkpointTimer = setTimeout(() => {
      this.checkpointTimer = null;
      this.askCheckpoint();
    }, CHECKPOINT_EVERY_MS);
    this.checkpointTimer.unref();
  }

  private askCheckpoint(): number {
    this.checkpointer?.postMessage('checkpoint' satisfies CheckpointerRequest);
    return ++this.checkpointsAsked;
  }

  /**
   * Paces bulk work (pruning, deleting a history, a sweep's announcements): after each batch, waits for the
   * checkpoint worker to copy the WAL into the database. Unpaced, 50,000 deletions outran it, the WAL passed
   * the 16,000 pages at which a commit checkpoints by itself, and that checkpoint held the event loop for
   * 300-750 ms. Without a worker (the CLI), SQLite checkpoints every 1,000 pages inside commits anyway.
   */
  private afterBulkWrite(): Promise<void> {
    if (!this.checkpointer) return yieldToLoop();
    const upTo = this.askCheckpoint();
    return new Promise((resolve) => {
      this.checkpointWaiters.push({ upTo, resolve });
    });
  }

  private async stopCheckpointer(): Promise<void> {
    const worker = this.checkpointer;
    if (this.checkpointTimer) clearTimeout(this.checkpointTimer);
    this.checkpointTimer = null;
    if (!worker) return;
    this.checkpointer = null;
    for (const w of this.checkpointWaiters.splice(0)) w.resolve();
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    // Unref'd, it would not keep the process alive until it has closed its connection, and ours must be last.
    worker.ref();
    worker.postMessage('close' satisfies CheckpointerRequest);
    await exited;
  }

  ping(): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    try {
      this.db.prepare('SELECT 1').get();
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  async close(): Promise<void> {
    // Commit what is queued and let the acknowledgements already promised finish before the WAL goes away.
    while (this.syncing || this.batch.length > 0) {
      if (!this.syncing) this.commitBatch();
      await this.syncing?.catch(() => undefined);
    }
    // Its connection closes first, so that ours is the last and checkpoints and removes the WAL on close.
    await this.stopCheckpointer();
    this.db.close();
    closeSync(this.walFd);
  }

  /**
   * Resolves once everything committed so far is on stable storage. A flush already running may have started
   * before the caller's commit, so callers then wait for the one after it, which all of them share.
   */
  private durable(): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    this.scheduleCheckpoint();
    if (this.syncing) return new Promise((resolve, reject) => this.nextSync.push({ resolve, reject }));
    return this.startSync();
  }

  private startSync(): Promise<void> {
    const run = this.syncWal(this.walFd).then(
      () => {
        this.afterSync();
      },
      (err: unknown) => {
        this.failed = err instanceof Error ? err : new Error(String(err));
        this.afterSync();
        throw this.failed;
      },
    );
    this.syncing = run;
    return run;
  }

  private afterSync(): void {
    this.syncing = null;
    const waiting = this.nextSync.splice(0);
    // Reports that arrived while the disk was busy go into one transaction now, covered by the next flush.
    if (this.batch.length > 0) this.commitBatch();
    if (waiting.length === 0) return;
    if (this.failed) {
      for (const w of waiting) w.reject(this.failed);
      return;
    }
    // The flush commitBatch may just have started also began after these waiters' commits.
    this.runningOrNewSync().then(
      () => {
        for (const w of waiting) w.resolve();
      },
      (err: unknown) => {
        for (const w of waiting) w.reject(err);
      },
    );
  }

  private runningOrNewSync(): Promise<void> {
    return this.syncing ?? this.startSync();
  }

  /** Runs a synchronous write, then waits until it is durable. */
  private async write<T>(fn: () => T): Promise<T> {
    const v = fn();
    await this.durable();
    return v;
  }

  createSecret(s: NewSecret): Promise<void> {
    return this.write(() => {
      this.st.insertSecret.run(s.id, s.hash, s.label, s.createdAt, s.expiresAt, s.usesTotal, s.usesTotal);
    });
  }

  getSecret(id: string): Promise<StoredSecret | null> {
    const row = this.st.getSecret.get(id);
    return Promise.resolve(row ? toSecret(row) : null);
  }

  reserveEnrollment(r: NewReservation): Promise<ConsumeOutcome> {
    const tx = this.db.transaction((): ConsumeOutcome => {
      const row = this.st.getSecret.get(r.secretId);
      if (!row) return 'unknown';
      if (row.revoked !== 0) return 'revoked';
      if (row.expires_at <= r.now) return 'expired';
      // A retry by the same device replaces its own reservation rather than holding a second use.
      if (row.uses_left <= (this.st.heldUses.get(r.secretId, r.deviceId, r.now) ?? 0)) return 'used-up';
      this.st.pruneReservations.run(r.now);
      this.st.reserve.run({ ...r, facts: JSON.stringify(r.facts) });
      return 'ok';
    });
    return this.write(() => tx.immediate());
  }

  confirmEnrollment(deviceId: string, cert: CertInfo, certValidFrom: number, now: number): Promise<StoredDevice | null> {
    // Asked whenever a device shows a certificate the server has not stored yet (after each renewal, say):
    // without a reservation there is nothing to write, and nothing to wait for the disk for.
    if (!this.st.getReservation.get(deviceId, now)) return Promise.resolve(null);
    const tx = this.db.transaction((): boolean => {
      const res = this.st.getReservation.get(deviceId, now);
      // A certificate older than the enrollment (an earlier one of this ID, revoked or not) cannot confirm it.
      // step-ca backdates NotBefore by a minute; five allow for clock skew between it and us.
      if (!res || certValidFrom < res.created_at - 5 * 60_000) return false;
      // The use was held for this enrollment, so it is spent even if the secret expired or was revoked since.
      this.st.takeUse.run(res.secret_id);
      this.st.enroll.run({ id: deviceId, facts: res.facts, now, secretId: res.secret_id, refuseSerial: res.refuse_serial });
      this.st.setCert.run(JSON.stringify(cert), deviceId);
      this.st.dropReservation.run(deviceId);
      return true;
    });
    return this.writeDevice(deviceId, () => tx.immediate()).then((ok) => (ok ? this.getDevice(deviceId) : null));
  }

  listSecrets(page: PageQuery): Promise<Page<StoredSecret>> {
    const c = timeCursor(page.after);
    const rows = this.st.listSecrets.all({ at: c?.at ?? null, id: c?.id ?? '', limit: page.limit + 1 });
    const items = rows.slice(0, page.limit).map(toSecret);
    const last = items.at(-1);
    return Promise.resolve({ items, next: rows.length > page.limit && last ? `${last.createdAt}:${last.id}` : null });
  }

  revokeSecret(id: string): Promise<boolean> {
    return this.write(() => this.st.revokeSecret.run(id).changes === 1);
  }

  enrollDevice(d: { id: string; facts: DeviceFacts; secretId: string; now: number; refuseSerial?: string | null }): Promise<void> {
    return this.write(() => {
      this.devices.delete(d.id);
      this.st.enroll.run({ id: d.id, facts: JSON.stringify(d.facts), now: d.now, secretId: d.secretId, refuseSerial: d.refuseSerial ?? null });
    });
  }

  /** Drops every cached device if another connection has committed since the last look. */
  private checkDevicesVersion(): void {
    if (this.versionCheckedThisTurn) return;
    this.versionCheckedThisTurn = true;
    setImmediate(() => {
      this.versionCheckedThisTurn = false;
    });
    const v = this.st.dataVersion.get();
    if (v !== this.devicesVersion) {
      this.devices.clear();
      this.devicesVersion = v ?? -1;
    }
  }

  private cacheDevice(d: StoredDevice): StoredDevice {
    this.devices.delete(d.id);
    if (this.devices.size >= this.maxCachedDevices) {
      const oldest = this.devices.keys().next();
      if (oldest.done !== true) this.devices.delete(oldest.value);
    }
    const frozen = Object.freeze(d);
    this.devices.set(d.id, frozen);
    return frozen;
  }

  getDevice(id: string): Promise<StoredDevice | null> {
    this.checkDevicesVersion();
    const cached = this.devices.get(id);
    if (cached) {
      // Refreshes its place in the eviction order.
      this.devices.delete(id);
      this.devices.set(id, cached);
      return Promise.resolve(cached);
    }
    const row = this.st.getDevice.get(id);
    return Promise.resolve(row ? this.cacheDevice(toDevice(row)) : null);
  }

  /** The last id of the scan step that starts after `after`, or null when the rest of the table is one step. */
  private stepEnd(after: string): string | null {
    return this.st.stepEnd.get(after, SCAN_STEP - 1) ?? null;
  }

  /** One prepared statement per combination of filters given (at most 2^7), made when first used. */
  private readonly filterStatements = new Map<string, Database.Statement<Record<string, string | number>, DeviceRow>>();

  private filterStatement(keys: (keyof DeviceFilter)[]): Database.Statement<Record<string, string | number>, DeviceRow> {
    const key = keys.join(',');
    let st = this.filterStatements.get(key);
    if (!st) {
      const where = ['id > @after', 'id <= @upto', ...keys.map((k) => FILTER_SQL[k])].join(' AND ');
      st = this.db.prepare<Record<string, string | number>, DeviceRow>(`SELECT * FROM devices WHERE ${where} ORDER BY id LIMIT @limit`);
      this.filterStatements.set(key, st);
    }
    return st;
  }

  async listDevicesPage(q: DevicePageQuery): Promise<{ devices: StoredDevice[]; next: string | null }> {
    const keys = (Object.keys(FILTER_SQL) as (keyof DeviceFilter)[]).filter((k) => q.filter[k] !== undefined);
    const st = this.filterStatement(keys);
    const params: Record<string, string | number> = { staleBefore: q.staleBefore };
    for (const k of keys) {
      const v = q.filter[k];
      if (v !== undefined) params[k] = k === 'q' && typeof v === 'string' ? v.toLowerCase() : v;
    }
    const devices: StoredDevice[] = [];
    let after = q.after ?? '';
    // A sparse filter may have to look at every device: one bounded step at a time, serving others between.
    for (;;) {
      const upto = this.stepEnd(after);
      // U+FFFF sorts after every device id (lower-case ASCII), so the last step reaches the end of the table.
      for (const row of st.all({ ...params, after, upto: upto ?? '\uffff', limit: q.limit - devices.length })) devices.push(toDevice(row));
      if (devices.length >= q.limit) return { devices, next: devices.at(-1)?.id ?? null };
      if (upto === null) return { devices, next: null };
      after = upto;
      await yieldToLoop();
    }
  }

  devicesNeedingAnnouncement(q: { after: string | null; limit: number; staleBefore: number }): Promise<{ devices: StoredDevice[]; next: string | null }> {
    const after = q.after ?? '';
    const upto = this.st.stepEnd.get(after, q.limit - 1) ?? null;
    const rows = this.st.unannounced.all({ after, upto: upto ?? '\uffff', staleBefore: q.staleBefore });
    return Promise.resolve({ devices: rows.map(toDevice), next: upto });
  }

  /** Runs a write that changes one device row, which is then read afresh. */
  private writeDevice<T>(id: string, fn: () => T): Promise<T> {
    return this.write(() => {
      this.devices.delete(id);
      return fn();
    });
  }

  revokeDevice(id: string, now: number, reason: string): Promise<boolean> {
    return this.writeDevice(id, () => this.st.revokeDevice.run(now, reason, id).changes === 1);
  }

  readmitDevice(id: string): Promise<boolean> {
    return this.writeDevice(id, () => this.st.readmitDevice.run(id).changes === 1);
  }

  allowReenroll(id: string): Promise<boolean> {
    return this.writeDevice(id, () => this.st.allowReenroll.run(id).changes === 1);
  }

  async deleteDevice(id: string): Promise<boolean> {
    // The history goes in batches, each its own transaction, so that a device with a long one stalls nobody;
    // the device row goes last, with whatever arrived meanwhile, so a crash half-way leaves a device to delete
    // again rather than reports without a device.
    while ((await this.write(() => this.st.deleteSomeReports.run(id, DELETE_BATCH).changes)) === DELETE_BATCH) await this.afterBulkWrite();
    const tx = this.db.transaction(() => {
      while (this.st.deleteSomeReports.run(id, DELETE_BATCH).changes > 0);
      return this.st.deleteDevice.run(id).changes === 1;
    });
    return this.writeDevice(id, () => tx.immediate());
  }

  setDeviceLevels(items: readonly { id: string; level: AccessLevel; reportId: string }[]): Promise<boolean[]> {
    const tx = this.db.transaction(() => items.map((i) => this.st.setLevel.run(i.level, i.id, i.reportId).changes === 1));
    return this.write(() => {
      for (const i of items) this.devices.delete(i.id);
      return tx.immediate();
    }).then(async (applied) => {
      if (items.length >= BULK_ANNOUNCEMENTS) await this.afterBulkWrite();
      return applied;
    });
  }

  announceMany(items: readonly Announcement[]): Promise<(number | null)[]> {
    const tx = this.db.transaction(() =>
      items.map((a) => {
        if (a.ifUnchanged) {
          const seen = a.ifUnchanged;
          const params = { id: a.id, level: a.level, state: a.state, attrs: a.attrs, ...seen };
          if (this.st.announceIf.run(params).changes === 0) return null;
        } else {
          this.st.announce.run(a.level, a.state, a.attrs, a.id);
        }
        const row = this.st.insertEvent.get(Date.parse(a.event.at), JSON.stringify(a.event));
        if (!row) throw new Error('INSERT ... RETURNING gave no row');
        return row.id;
      }),
    );
    return this.write(() => {
      for (const a of items) this.devices.delete(a.id);
      return tx.immediate();
    }).then(async (ids) => {
      // A report's announcement is one row; a sweep's batch is hundreds, and many batches follow.
      if (items.length >= BULK_ANNOUNCEMENTS) await this.afterBulkWrite();
      return ids;
    });
  }

  eventsSince(afterId: number, limit: number): Promise<StoredEvent[]> {
    return Promise.resolve(this.st.eventsSince.all(afterId, limit).map((r) => ({ id: r.id, event: JSON.parse(r.body) as AccessLevelEvent })));
  }

  eventBounds(): Promise<{ oldest: number | null; newest: number }> {
    const b = this.st.eventBounds.get();
    // With every event pruned the table is empty, but the counter still knows the last id handed out.
    return Promise.resolve({ oldest: b?.oldest ?? null, newest: b?.newest ?? this.st.eventCounter.get()?.seq ?? 0 });
  }

  async pruneEvents(keep: number, olderThan: number, batchLimit: number): Promise<number> {
    const keepAbove = (this.st.maxEventId.get() ?? 0) - keep;
    let removed = 0;
    for (;;) {
      const n = await this.write(() => this.st.pruneEvents.run({ keepAbove, olderThan, limit: batchLimit }).changes);
      removed += n;
      if (n < batchLimit) return removed;
      await this.afterBulkWrite();
    }
  }

  setRecheck(id: string, recheck: { requestId: string; requestedAt: number } | null): Promise<void> {
    return this.writeDevice(id, () => {
      this.st.setRecheck.run(recheck?.requestId ?? null, recheck?.requestedAt ?? null, id);
    });
  }

  /**
   * Group commit: reports share one transaction and one WAL flush, so under load the per-commit cost is paid
   * once per batch instead of once per report. A batch is what arrived in one event-loop turn, or, while a
   * flush is running, everything that arrives until it ends: those reports could not be acknowledged before
   * the next flush anyway, and one bigger transaction writes hot pages (the device rows, the index tails)
   * once instead of once per turn. Each caller gets its result only after the flush covering its commit; if
   * the transaction or the flush fails, every report of the batch fails.
   */
  ingestReport(r: NewReport): Promise<IngestOutcome> {
    return new Promise((resolve, reject) => {
      this.batch.push({ r, resolve, reject });
      if (this.batch.length === 1) setImmediate(() => {
        // While a flush runs, afterSync commits the batch when it ends.
        if (!this.syncing && this.batch.length > 0) this.commitBatch();
      });
    });
  }

  private commitBatch(): void {
    const batch = this.batch.splice(0);
    if (this.failed) {
      for (const b of batch) b.reject(this.failed);
      return;
    }
    let results: Ingested[];
    try {
      results = this.ingestTx(batch.map((b) => b.r));
    } catch (err) {
      for (const b of batch) b.reject(err);
      return;
    }
    batch.forEach((b, i) => {
      const applied = results[i]?.applied;
      if (applied) this.afterReport(b.r, applied);
    });
    this.durable().then(
      () => {
        batch.forEach((b, i) => {
          const r = results[i];
          b.resolve(r ? { inserted: r.inserted, becameLatest: r.becameLatest, previousSeq: r.previousSeq, seqAnomaly: r.seqAnomaly } : NOT_INSERTED);
        });
      },
      (err: unknown) => {
        for (const b of batch) b.reject(err);
      },
    );
  }

  /** A committed report's changes to its device, applied to the cached copy instead of reading it again. */
  private afterReport(r: NewReport, row: AppliedRow): void {
    const d = this.devices.get(r.deviceId);
    if (!d) return;
    this.devices.set(
      r.deviceId,
      Object.freeze({
        ...d,
        lastSeen: row.last_seen,
        lastSeq: row.last_seq,
        accessLevel: level(row.access_level),
        cert: r.cert,
        posture: r.posture,
        droppedReports: row.dropped,
        seqAnomalies: row.seq_anomalies,
        recheck: row.recheck_id !== null && row.recheck_at !== null ? { requestId: row.recheck_id, requestedAt: row.recheck_at } : null,
      }),
    );
  }

  private ingestOne(r: NewReport): Ingested {
    const size = typeof r.body === 'string' ? Buffer.byteLength(r.body) : r.body.length;
    const ins = this.st.insertReport.run(r.reportId, r.deviceId, r.seq, r.generatedAt, r.receivedAt, r.accessLevel, r.body, size);
    if (ins.changes === 0) return NOT_INSERTED;
    let cert = this.certJson.get(r.cert);
    if (cert === undefined) {
      cert = JSON.stringify(r.cert);
      this.certJson.set(r.cert, cert);
    }
    const row = this.st.applyReport.get({
      id: r.deviceId,
      now: r.receivedAt,
      dropped: r.dropped,
      cert,
      posture: JSON.stringify(r.posture),
      answers: r.answersRecheck,
      seq: r.seq,
      level: r.accessLevel,
      reportId: r.reportId,
      failing: failingChecksColumn(r.failingChecks),
      size,
    });
    // No row: the device was removed under the report; there is nothing to cache.
    if (!row) return { inserted: true, becameLatest: false, previousSeq: null, seqAnomaly: false };
    return { inserted: true, becameLatest: true, previousSeq: row.prev_seq, seqAnomaly: row.anomaly === 1, applied: row };
  }

  getLatestReport(deviceId: string): Promise<StoredReport | null> {
    const row = this.st.latestReport.get(deviceId);
    if (!row) return Promise.resolve(null);
    return Promise.resolve({ ...toMeta(row), report: postureReportSchema.parse(envelopeReport(row.body)) });
  }

  listReports(deviceId: string, page: PageQuery): Promise<Page<StoredReportMeta>> {
    let before = Number.MAX_SAFE_INTEGER;
    if (page.after !== null) {
      if (!/^\d{1,16}$/.test(page.after)) throw new InvalidCursorError('cursor: not one this list handed out');
      before = Number(page.after);
    }
    const rows = this.st.listReports.all(deviceId, before, page.limit + 1);
    const more = rows.length > page.limit;
    const kept = rows.slice(0, page.limit);
    const last = kept.at(-1);
    return Promise.resolve({ items: kept.map(toMeta), next: more && last?.rowid !== undefined ? String(last.rowid) : null });
  }

  async pruneReports(rules: RetentionRules, batchLimit: number): Promise<number> {
    let removed = 0;
    if (rules.olderThan !== null) removed += await this.pruneByAge(rules.olderThan, batchLimit);
    removed += await this.pruneByCountAndSize(rules.keep, rules.maxBytesPerDevice ?? Number.MAX_SAFE_INTEGER, batchLimit);
    return removed;
  }

  /** Walks the arrival-time index from the oldest report, a batch per transaction, skipping devices' latest. */
  private async pruneByAge(olderThan: number, batchLimit: number): Promise<number> {
    let removed = 0;
    let at = Number.MIN_SAFE_INTEGER;
    let rowid = 0;
    for (;;) {
      const rows = this.st.oldReports.all({ olderThan, at, rowid, limit: batchLimit });
      const last = rows.at(-1);
      if (!last) return removed;
      removed += await this.write(() => this.deleteReports(rows.filter((r) => r.latest !== 1)));
      if (rows.length < batchLimit) return removed;
      ({ received_at: at, rowid } = last);
      await this.afterBulkWrite();
    }
  }

  /** Finds the devices over a limit by their counters, a scan step at a time, and trims each. */
  private async pruneByCountAndSize(keep: number, maxBytes: number, batchLimit: number): Promise<number> {
    let removed = 0;
    let after = '';
    for (;;) {
      const upto = this.stepEnd(after);
      for (const id of this.st.overLimit.all({ after, upto: upto ?? '\uffff', keep, maxBytes })) {
        for (;;) {
          const rows = this.st.excessReports.all({ id, keep, maxBytes, limit: batchLimit });
          if (rows.length > 0) {
            removed += await this.write(() => this.deleteReports(rows.map((r) => ({ ...r, device_id: id }))));
            await this.afterBulkWrite();
          }
          if (rows.length < batchLimit) break;
        }
      }
      if (upto === null) return removed;
      after = upto;
      await yieldToLoop();
    }
  }

  /** Deletes these reports and takes them off their devices' counters, in one transaction. */
  private deleteReports(rows: readonly { rowid: number; device_id: string; body_size: number }[]): number {
    const perDevice = new Map<string, { n: number; bytes: number }>();
    this.db.transaction(() => {
      for (const r of rows) {
        if (this.st.deleteReport.run(r.rowid).changes === 0) continue;
        const d = perDevice.get(r.device_id) ?? { n: 0, bytes: 0 };
        d.n += 1;
        d.bytes += r.body_size;
        perDevice.set(r.device_id, d);
      }
      for (const [id, d] of perDevice) this.st.uncount.run(d.n, d.bytes, id);
    }).immediate();
    let n = 0;
    for (const d of perDevice.values()) n += d.n;
    return n;
  }

  getPolicy(): Promise<Policy | null> {
    const row = this.st.getPolicy.get();
    return Promise.resolve(row ? policySchema.parse(JSON.parse(row.body)) : null);
  }

  setPolicy(policy: Policy, now: number): Promise<void> {
    return this.write(() => {
      this.st.setPolicy.run(policy.version, JSON.stringify(policy), now);
    });
  }

  createApiToken(t: NewApiToken): Promise<void> {
    return this.write(() => {
      this.st.insertApiToken.run(t.id, t.hash, t.scope, t.name, t.createdAt);
    });
  }

  getApiToken(id: string): Promise<StoredApiToken | null> {
    const row = this.st.getApiToken.get(id);
    return Promise.resolve(row ? toApiToken(row) : null);
  }

  listApiTokens(page: PageQuery): Promise<Page<StoredApiToken>> {
    const c = timeCursor(page.after);
    const rows = this.st.listApiTokens.all({ at: c?.at ?? null, id: c?.id ?? '', limit: page.limit + 1 });
    const items = rows.slice(0, page.limit).map(toApiToken);
    const last = items.at(-1);
    return Promise.resolve({ items, next: rows.length > page.limit && last ? `${last.createdAt}:${last.id}` : null });
  }

  revokeApiToken(id: string, now: number): Promise<boolean> {
    return this.write(() => this.st.revokeApiToken.run(now, id).changes === 1);
  }

  // ---- admin console ----

  createAdmin(a: NewAdmin): Promise<boolean> {
    return this.write(() => this.st.insertAdmin.run(a.name, a.passwordHash, a.createdAt).changes === 1);
  }

  getAdmin(name: string): Promise<StoredAdmin | null> {
    const row = this.st.getAdmin.get(name);
    return Promise.resolve(row ? toAdmin(row) : null);
  }

  listAdmins(): Promise<StoredAdmin[]> {
    return Promise.resolve(this.st.listAdmins.all().map(toAdmin));
  }

  setAdminPassword(name: string, passwordHash: string): Promise<boolean> {
    const tx = this.db.transaction(() => {
      this.st.deleteAdminSessions.run(name);
      return this.st.setAdminPassword.run(passwordHash, name).changes === 1;
    });
    return this.write(() => tx.immediate());
  }

  deleteAdmin(name: string): Promise<boolean> {
    const tx = this.db.transaction(() => {
      this.st.deleteAdminSessions.run(name);
      return this.st.deleteAdmin.run(name).changes === 1;
    });
    return this.write(() => tx.immediate());
  }

  createSession(s: NewSession): Promise<void> {
    return this.write(() => {
      this.st.insertSession.run(s);
    });
  }

  getSession(idHash: Buffer): Promise<StoredSession | null> {
    const row = this.st.getSession.get(idHash);
    return Promise.resolve(row ? toSession(row) : null);
  }

  touchSession(idHash: Buffer, now: number): Promise<void> {
    return this.write(() => {
      this.st.touchSession.run(now, idHash);
    });
  }

  deleteSession(idHash: Buffer): Promise<boolean> {
    return this.write(() => this.st.deleteSession.run(idHash).changes === 1);
  }

  pruneSessions(idleBefore: number, createdBefore: number): Promise<number> {
    return this.write(() => this.st.pruneSessions.run(idleBefore, createdBefore).changes);
  }

  appendAudit(e: NewAuditEntry): Promise<number> {
    return this.write(() => {
      const row = this.st.insertAudit.get(e.at, e.actor, e.action, e.target, e.ip, e.detail === null ? null : JSON.stringify(e.detail));
      if (!row) throw new Error('INSERT ... RETURNING gave no row');
      return row.id;
    });
  }

  listAudit(limit: number, beforeId: number | null): Promise<StoredAuditEntry[]> {
    return Promise.resolve(this.st.listAudit.all(beforeId ?? Number.MAX_SAFE_INTEGER, limit).map(toAudit));
  }

  fleetCountsPage(staleBefore: number, afterId: string, limit: number): Promise<FleetCountsPage> {
    const lastId = this.st.pageLastId.get(afterId, limit) ?? null;
    if (lastId === null) return Promise.resolve({ lastId, groups: [], failing: [] });
    const groups = this.st.countPage.all({ staleBefore, after: afterId, limit }).map((r) => ({
      state: (DEVICE_STATES as readonly string[]).includes(r.state) ? (r.state as DeviceState) : 'enrolled',
      level: level(r.level) ?? 'blocked',
      os: r.os ?? 'unknown',
      count: r.n,
    }));
    const failing = new Map<string, number>();
    for (const list of this.st.failingPage.all(afterId, limit)) {
      for (const check of list.split(',')) if (check !== '') failing.set(check, (failing.get(check) ?? 0) + 1);
    }
    return Promise.resolve({ lastId, groups, failing: [...failing].map(([check, count]) => ({ check, count })) });
  }

  latestResultsPage(afterId: string, limit: number): Promise<DeviceResults[]> {
    return Promise.resolve(
      this.st.latestResultsPage.all(afterId, limit).map((r) => {
        const body = r.report_body;
        if (body === null || r.report_rid === null) return { device: toDevice(r), latest: null };
        const read = () => {
          // Validated by the decoder when it arrived; the results and platform are all that is read here.
          const report = envelopeReport(body) as { device: { platform: Platform }; results: EvaluatedResult[] };
          return { platform: report.device.platform, results: report.results };
        };
        return { device: toDevice(r), latest: { reportId: r.report_rid, read } };
      }),
    );
  }

  putFleetSnapshot(snapshot: FleetSnapshot): Promise<void> {
    return this.write(() => {
      this.st.putSnapshot.run(snapshot);
    });
  }

  listFleetSnapshots(since: number): Promise<FleetSnapshot[]> {
    return Promise.resolve(this.st.listSnapshots.all(since));
  }

  pruneFleetSnapshots(olderThan: number): Promise<number> {
    return this.write(() => this.st.pruneSnapshots.run(olderThan).changes);
  }
}
