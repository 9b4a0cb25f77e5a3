import { gunzipSync } from 'node:zlib';
import pg from 'pg';
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
  type DeviceResults,
  type FleetCountsPage,
  type FleetSnapshot,
  type NewAdmin,
  type NewAuditEntry,
  type NewSession,
  type StoredAdmin,
  type StoredAuditEntry,
  type StoredSession,
  type DevicePageQuery,
  type Ingested,
  type NewApiToken,
  type NewReport,
  type NewReservation,
  type NewSecret,
  type Page,
  type PageQuery,
  type RetentionRules,
  type Storage,
  type StoredApiToken,
  type StoredDevice,
  type StoredEvent,
  type StoredReport,
  type StoredReportMeta,
  type StoredSecret,
} from './storage.js';
import { level, toAdmin, toApiToken, toAudit, toDevice, toMeta, toSecret, toSession } from './storage-rows.js';
import type { AdminRow, ApiTokenRow, AuditRow, DeviceRow, ReportMetaRow, SecretRow, SessionRow } from './storage-rows.js';
import { mapInSteps } from './yield.js';

/**
 * Same numbering as SQLite's: what both backends hold. PostgreSQL starts at 6 (no older PostgreSQL databases
 * exist): report sizes, failing checks of the latest report, device ids in byte order ("C") like SQLite's.
 */
const SCHEMA_VERSION = 6;

/** The NOTIFY channel every instance LISTENs on (see pg-events.ts); payloads are `kind:id`, never data. */
export const CLUSTER_CHANNEL = 'vigil_cluster';

/** Advisory lock keys (one 64-bit space per database): the first half is ours, fixed. */
export const LOCK_MIGRATE = 0x5669_6701n;
export const LOCK_SWEEP = 0x5669_6702n;
export const LOCK_PRUNE = 0x5669_6703n;

/**
 * Times are epoch milliseconds in BIGINT. Report bodies are BYTEA: the gzip envelope as sent, or the JSON text's
 * bytes (no gzip stream starts with `{`). `arrival` orders history by arrival, as SQLite's rowid does. Event ids
 * come from a counter row rather than a sequence: taking the row lock until commit makes ids become visible in
 * order across instances, so a listener that reads `id > last seen` never skips one committed late.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS secrets (
  id TEXT PRIMARY KEY, hash BYTEA NOT NULL, label TEXT, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL,
  uses_total INTEGER NOT NULL, uses_left INTEGER NOT NULL, revoked BOOLEAN NOT NULL DEFAULT false
);
CREATE TABLE IF NOT EXISTS devices (
  id TEXT COLLATE "C" PRIMARY KEY, facts TEXT NOT NULL, enrolled_at BIGINT NOT NULL, secret_id TEXT, revoked_at BIGINT,
  last_seen BIGINT, last_seq BIGINT, access_level TEXT, cert TEXT, dropped BIGINT NOT NULL DEFAULT 0,
  announced_level TEXT, announced_state TEXT, recheck_id TEXT, recheck_at BIGINT, latest_report_id TEXT,
  prev_seq BIGINT, seq_anomalies INTEGER NOT NULL DEFAULT 0, revoked_reason TEXT, revoked_serial TEXT,
  reenroll_allowed BOOLEAN NOT NULL DEFAULT false, posture TEXT, announced_attrs TEXT, failing_checks TEXT[]
);
CREATE TABLE IF NOT EXISTS api_tokens (
  id TEXT PRIMARY KEY, hash BYTEA NOT NULL, scope TEXT NOT NULL, name TEXT NOT NULL, created_at BIGINT NOT NULL,
  revoked_at BIGINT
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO counters (name, value) VALUES ('events', 0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS events (id BIGINT PRIMARY KEY, at BIGINT NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reservations (
  device_id TEXT PRIMARY KEY, secret_id TEXT NOT NULL, facts TEXT NOT NULL, created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL, refuse_serial TEXT
);
CREATE INDEX IF NOT EXISTS reservations_by_secret ON reservations (secret_id, expires_at);
CREATE TABLE IF NOT EXISTS policies (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, version TEXT NOT NULL, body TEXT NOT NULL, set_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS reports (
  arrival BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, report_id TEXT NOT NULL, device_id TEXT COLLATE "C" NOT NULL,
  seq BIGINT NOT NULL, generated_at TEXT NOT NULL, received_at BIGINT NOT NULL, access_level TEXT NOT NULL, body BYTEA NOT NULL,
  body_size INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS reports_by_device ON reports (device_id, seq, report_id);
CREATE INDEX IF NOT EXISTS reports_by_arrival ON reports (device_id, arrival);
CREATE TABLE IF NOT EXISTS admins (
  name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, created_at BIGINT NOT NULL, disabled BOOLEAN NOT NULL DEFAULT false
);
CREATE TABLE IF NOT EXISTS sessions (
  id_hash BYTEA PRIMARY KEY, admin TEXT NOT NULL, csrf TEXT NOT NULL, created_at BIGINT NOT NULL,
  last_seen BIGINT NOT NULL, ip TEXT NOT NULL, user_agent TEXT
);
CREATE INDEX IF NOT EXISTS sessions_by_admin ON sessions (admin);
CREATE TABLE IF NOT EXISTS audit (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at BIGINT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
  target TEXT, ip TEXT, detail TEXT
);
CREATE TABLE IF NOT EXISTS fleet_snapshots (
  at BIGINT PRIMARY KEY, full_count INTEGER NOT NULL, limited INTEGER NOT NULL, blocked INTEGER NOT NULL, stale INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS rate_buckets (
  name TEXT NOT NULL, key TEXT NOT NULL, tokens DOUBLE PRECISION NOT NULL, at BIGINT NOT NULL,
  burst DOUBLE PRECISION NOT NULL, per_minute DOUBLE PRECISION NOT NULL, granted BOOLEAN NOT NULL,
  PRIMARY KEY (name, key)
);
`;

/**
 * BIGINT columns (times in ms, seqs, counts) as numbers: every value we store is below 2^53, and the default
 * string would leak into every caller.
 */
const types = new pg.TypeOverrides();
types.setTypeParser(pg.types.builtins.INT8, Number);

/** A report history row: `arrival` orders it, as SQLite's rowid does. */
interface ReportRow extends ReportMetaRow {
  arrival: number;
}

/** A stored body: a gzip stream (magic 1f 8b) or the envelope's JSON text. */
function envelopeReport(body: Buffer): unknown {
  const text = body[0] === 0x1f && body[1] === 0x8b ? gunzipSync(body).toString('utf8') : body.toString('utf8');
  return (JSON.parse(text) as { report?: unknown }).report;
}

/** Device rows per step of a scan (pruning), and reports deleted per transaction when a device goes. */
const SCAN_STEP = 1000;
const DELETE_BATCH = 500;
/** Rows of a device page parsed (JSON columns) per event-loop turn. */
const CONVERT_STEP = 250;

/**
 * The effective state and level of effectiveOf (service.ts) in SQL, with $s = now - maxReportAge. Kept beside
 * it by the scale contract tests, which compare the device list's filters with effectiveOf.
 */
const STATE_SQL = `(CASE WHEN revoked_at IS NOT NULL THEN 'revoked' WHEN last_seen IS NULL OR access_level IS NULL THEN 'enrolled'
  WHEN last_seen < $s THEN 'stale' ELSE 'active' END)`;
const LEVEL_SQL = `(CASE WHEN ${STATE_SQL} = 'active' THEN access_level ELSE 'blocked' END)`;

/** The device list's filters as SQL on a devices row; `$v` stands for the filter's own parameter. */
const FILTER_SQL: { [K in keyof Required<DeviceFilter>]: string } = {
  state: `${STATE_SQL} = $v`,
  level: `${LEVEL_SQL} = $v`,
  os: `$v IN (COALESCE(posture::jsonb #>> '{os,id}', facts::jsonb #>> '{os,id}'), COALESCE(posture::jsonb #>> '{os,platform}', facts::jsonb ->> 'platform'))`,
  failingCheck: '$v = ANY (failing_checks)',
  seenBefore: 'last_seen < $v',
  seenAfter: 'last_seen >= $v',
  q: "(strpos(id, $v) > 0 OR strpos(lower(facts::jsonb ->> 'hostname'), $v) > 0)",
};

/** Secrets and tokens newest first by (created_at, id), from the cursor `created_at:id` on, as SQLite's. */
const TIME_PAGE = `SELECT * FROM $table WHERE $1::bigint IS NULL OR created_at < $1 OR (created_at = $1 AND id COLLATE "C" > $2)
  ORDER BY created_at DESC, id COLLATE "C" LIMIT $3`;

function timeCursor(after: string | null): { at: number; id: string } | null {
  if (after === null) return null;
  const m = /^(\d{1,16}):(.{1,200})$/.exec(after);
  if (!m?.[1] || m[2] === undefined) throw new InvalidCursorError('cursor: not one this list handed out');
  return { at: Number(m[1]), id: m[2] };
}

/** `rows` holds one more than a page when there is more. */
function timePage<R extends { created_at: number; id: string }, T>(rows: R[], limit: number, to: (r: R) => T): Page<T> {
  const kept = rows.slice(0, limit);
  const last = kept.at(-1);
  return { items: kept.map(to), next: rows.length > limit && last ? `${last.created_at}:${last.id}` : null };
}

const ENROLL = `INSERT INTO devices (id, facts, enrolled_at, secret_id) VALUES ($1, $2, $3, $4)
  ON CONFLICT (id) DO UPDATE SET facts = $2, enrolled_at = $3, secret_id = $4, last_seq = NULL, prev_seq = NULL,
    reenroll_allowed = false, last_seen = NULL, access_level = NULL, latest_report_id = NULL, cert = NULL, posture = NULL,
    revoked_serial = COALESCE($5, devices.revoked_serial)`;

/**
 * One statement, so one round trip and one commit per report: the insert, and everything a new report changes
 * on its device (the same rules as SQLite's applyReport: the newest report received is the posture whatever
 * its seq, and a seq that goes back or jumps past what `dropped` explains is counted). The UPDATE runs only
 * when the insert did; its row lock orders concurrent reports of one device, each seeing the one before.
 */
const INGEST = `WITH ins AS (
  INSERT INTO reports (report_id, device_id, seq, generated_at, received_at, access_level, body, body_size)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $13) ON CONFLICT (device_id, seq, report_id) DO NOTHING RETURNING 1
), upd AS (
  UPDATE devices SET
    last_seen = GREATEST(COALESCE(last_seen, 0), $5), dropped = dropped + $8, cert = $9, posture = $10,
    recheck_id = CASE WHEN recheck_id = $11 THEN NULL ELSE recheck_id END,
    recheck_at = CASE WHEN recheck_id = $11 THEN NULL ELSE recheck_at END,
    access_level = $6, latest_report_id = $1, prev_seq = last_seq, last_seq = $3, failing_checks = $12,
    seq_anomalies = seq_anomalies + CASE WHEN last_seq IS NOT NULL AND ($3 <= last_seq OR $3 > last_seq + 1 + $8) THEN 1 ELSE 0 END
  WHERE id = $2 AND EXISTS (SELECT 1 FROM ins)
  RETURNING prev_seq, (prev_seq IS NOT NULL AND ($3 <= prev_seq OR $3 > prev_seq + 1 + $8)) AS anomaly
)
SELECT EXISTS (SELECT 1 FROM ins) AS inserted, upd.prev_seq, upd.anomaly FROM (SELECT 1) one LEFT JOIN upd ON true`;

export interface PgStorageOptions {
  /** Told of errors on idle pooled connections (a restarted server); the pool replaces them. */
  onIdleError?: (err: Error) => void;
  /** Connections per instance; PostgreSQL's max_connections bounds the sum over instances. */
  maxConnections?: number;
}

/**
 * PostgreSQL through a `pg.Pool`. A write resolves only after its COMMIT returned, and the session insists on
 * `synchronous_commit = on`, so the WAL holding it is flushed (on the primary) before any acknowledgement. A
 * failed query or a lost connection rejects: the agent gets a 5xx and retries, never a silent ack. The pool
 * drops broken connections and opens new ones, so the storage recovers by itself from a restarted server.
 * Nothing is cached: another instance may have written any row.
 */
export class PgStorage implements Storage {
  readonly pool: pg.Pool;

  private constructor(pool: pg.Pool) {
    this.pool = pool;
  }

  /** Connects and migrates. Safe with several instances starting at once (an advisory lock orders them). */
  static async open(url: string, opts: PgStorageOptions = {}): Promise<PgStorage> {
    const pool = new pg.Pool({
      connectionString: url,
      max: opts.maxConnections ?? 20,
      types,
      // A server that left must not hang requests forever; the agent retries a 5xx.
      connectionTimeoutMillis: 10_000,
      idleTimeoutMillis: 30_000,
      options: '-c synchronous_commit=on',
      application_name: 'vigil-control-plane',
    });
    // Without a listener, an idle client's error (the server restarted) would crash the process.
    pool.on('error', (err) => opts.onIdleError?.(err));
    const s = new PgStorage(pool);
    try {
      await s.migrate();
    } catch (err) {
      await pool.end();
      throw err;
    }
    return s;
  }

  private async migrate(): Promise<void> {
    await this.tx(async (c) => {
      // Transaction-scoped: released at COMMIT, or by the server if this connection dies.
      await c.query('SELECT pg_advisory_xact_lock($1)', [LOCK_MIGRATE.toString()]);
      const exists = await c.query<{ t: string | null }>("SELECT to_regclass('meta') AS t");
      if (exists.rows[0]?.t) {
        const ver = await c.query<{ value: string }>("SELECT value FROM meta WHERE key = 'schema'");
        const from = Number(ver.rows[0]?.value ?? NaN);
        if (from > SCHEMA_VERSION) {
          throw new Error(`database schema ${from} is newer than this control plane understands (${SCHEMA_VERSION})`);
        }
      }
      await c.query(SCHEMA);
      await c.query("INSERT INTO meta (key, value) VALUES ('schema', $1) ON CONFLICT (key) DO UPDATE SET value = $1", [String(SCHEMA_VERSION)]);
    });
  }

  /** BEGIN ... COMMIT on one pooled connection; a connection that failed is destroyed, not reused. */
  async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      const v = await fn(c);
      await c.query('COMMIT');
      c.release();
      return v;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      c.release(err instanceof Error ? err : true);
      throw err;
    }
  }

  private async rows<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
    return (await this.pool.query<R>(sql, params)).rows;
  }

  private async changed(sql: string, params: unknown[]): Promise<boolean> {
    return ((await this.pool.query(sql, params)).rowCount ?? 0) > 0;
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  async createSecret(s: NewSecret): Promise<void> {
    await this.pool.query('INSERT INTO secrets (id, hash, label, created_at, expires_at, uses_total, uses_left) VALUES ($1, $2, $3, $4, $5, $6, $6)', [
      s.id,
      s.hash,
      s.label,
      s.createdAt,
      s.expiresAt,
      s.usesTotal,
    ]);
  }

  async getSecret(id: string): Promise<StoredSecret | null> {
    const [row] = await this.rows<SecretRow>('SELECT * FROM secrets WHERE id = $1', [id]);
    return row ? toSecret(row) : null;
  }

  reserveEnrollment(r: NewReservation): Promise<ConsumeOutcome> {
    return this.tx(async (c): Promise<ConsumeOutcome> => {
      // The secret's row lock orders every reservation of it, on every instance: the count below cannot go
      // stale before this transaction commits.
      const row = (await c.query<SecretRow>('SELECT * FROM secrets WHERE id = $1 FOR UPDATE', [r.secretId])).rows[0];
      if (!row) return 'unknown';
      if (row.revoked) return 'revoked';
      if (row.expires_at <= r.now) return 'expired';
      // A retry by the same device replaces its own reservation rather than holding a second use.
      const held = await c.query<{ n: number }>('SELECT COUNT(*) AS n FROM reservations WHERE secret_id = $1 AND device_id <> $2 AND expires_at > $3', [
        r.secretId,
        r.deviceId,
        r.now,
      ]);
      if (row.uses_left <= (held.rows[0]?.n ?? 0)) return 'used-up';
      await c.query('DELETE FROM reservations WHERE expires_at <= $1', [r.now]);
      await c.query(
        `INSERT INTO reservations (device_id, secret_id, facts, created_at, expires_at, refuse_serial) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (device_id) DO UPDATE SET secret_id = $2, facts = $3, created_at = $4, expires_at = $5, refuse_serial = $6`,
        [r.deviceId, r.secretId, JSON.stringify(r.facts), r.now, r.expiresAt, r.refuseSerial],
      );
      return 'ok';
    });
  }

  async confirmEnrollment(deviceId: string, cert: CertInfo, certValidFrom: number, now: number): Promise<StoredDevice | null> {
    const live = 'SELECT secret_id, facts, created_at, refuse_serial FROM reservations WHERE device_id = $1 AND expires_at > $2';
    type Res = { secret_id: string; facts: string; created_at: number; refuse_serial: string | null };
    // Asked whenever a device shows a certificate not stored yet (after each renewal): usually nothing to do.
    const [first] = await this.rows<Res>(live, [deviceId, now]);
    if (!first) return null;
    const ok = await this.tx(async (c) => {
      // Secret first, then reservation: the order reserveEnrollment locks them in, so the two cannot deadlock.
      await c.query('SELECT 1 FROM secrets WHERE id = $1 FOR UPDATE', [first.secret_id]);
      const res = (await c.query<Res>(`${live} FOR UPDATE`, [deviceId, now])).rows[0];
      // A certificate older than the enrollment cannot confirm it (five minutes for step-ca's backdating and skew).
      if (!res || certValidFrom < res.created_at - 5 * 60_000) return false;
      // The use was held for this enrollment, so it is spent even if the secret expired or was revoked since.
      await c.query('UPDATE secrets SET uses_left = uses_left - 1 WHERE id = $1 AND uses_left > 0', [res.secret_id]);
      await c.query(ENROLL, [deviceId, res.facts, now, res.secret_id, res.refuse_serial]);
      await c.query('UPDATE devices SET cert = $1 WHERE id = $2', [JSON.stringify(cert), deviceId]);
      await c.query('DELETE FROM reservations WHERE device_id = $1', [deviceId]);
      return true;
    });
    return ok ? this.getDevice(deviceId) : null;
  }

  async listSecrets(page: PageQuery): Promise<Page<StoredSecret>> {
    const c = timeCursor(page.after);
    const rows = await this.rows<SecretRow>(TIME_PAGE.replace('$table', 'secrets'), [c?.at ?? null, c?.id ?? '', page.limit + 1]);
    return timePage(rows, page.limit, toSecret);
  }

  revokeSecret(id: string): Promise<boolean> {
    return this.changed('UPDATE secrets SET revoked = true WHERE id = $1', [id]);
  }

  async enrollDevice(d: { id: string; facts: DeviceFacts; secretId: string; now: number; refuseSerial?: string | null }): Promise<void> {
    await this.pool.query(ENROLL, [d.id, JSON.stringify(d.facts), d.now, d.secretId, d.refuseSerial ?? null]);
  }

  async getDevice(id: string): Promise<StoredDevice | null> {
    // Named: parsed and planned once per connection; every report reads its device.
    const res = await this.pool.query<DeviceRow>({ name: 'get-device', text: 'SELECT * FROM devices WHERE id = $1', values: [id] });
    const row = res.rows[0];
    return row ? toDevice(row) : null;
  }

  async listDevicesPage(q: DevicePageQuery): Promise<{ devices: StoredDevice[]; next: string | null }> {
    const params: unknown[] = [q.after ?? '', q.limit];
    const where = ['id > $1'];
    for (const k of Object.keys(FILTER_SQL) as (keyof DeviceFilter)[]) {
      const v = q.filter[k];
      if (v === undefined) continue;
      params.push(k === 'q' && typeof v === 'string' ? v.toLowerCase() : v);
      let cond = FILTER_SQL[k].replaceAll('$v', `$${params.length}`);
      if (cond.includes('$s')) {
        params.push(q.staleBefore);
        cond = cond.replaceAll('$s', `$${params.length}`);
      }
      where.push(cond);
    }
    // One statement: PostgreSQL walks the primary key and stops at `limit` matches; a sparse filter reads the
    // table on the server, without holding this process's event loop.
    const rows = await this.rows<DeviceRow>(`SELECT * FROM devices WHERE ${where.join(' AND ')} ORDER BY id LIMIT $2`, params);
    // Converted a step at a time: a page of 1,000 rows parsed in one turn held the loop for up to 55 ms.
    return { devices: await mapInSteps(rows, CONVERT_STEP, toDevice), next: rows.length === q.limit ? (rows.at(-1)?.id ?? null) : null };
  }

  async devicesNeedingAnnouncement(q: { after: string | null; limit: number; staleBefore: number }): Promise<{ devices: StoredDevice[]; next: string | null }> {
    const after = q.after ?? '';
    // The step is the next `limit` devices, as SQLite's: `next` is its last id, null when the table ends in it.
    const [end] = await this.rows<{ id: string }>('SELECT id FROM devices WHERE id > $1 ORDER BY id OFFSET $2 LIMIT 1', [after, q.limit - 1]);
    const upto = end?.id ?? null;
    const rows = await this.rows<DeviceRow>(
      `SELECT * FROM devices WHERE id > $1 AND ($2::text IS NULL OR id <= $2) AND (announced_state IS DISTINCT FROM ${STATE_SQL}
         OR announced_level IS DISTINCT FROM ${LEVEL_SQL} OR announced_attrs IS NULL) ORDER BY id`.replaceAll('$s', '$3'),
      [after, upto, q.staleBefore],
    );
    return { devices: rows.map(toDevice), next: upto };
  }

  revokeDevice(id: string, now: number, reason: string): Promise<boolean> {
    // The certificate the device held is remembered, so that it stays refused after an admin re-admits it.
    return this.changed(
      "UPDATE devices SET revoked_at = $1, revoked_reason = $2, revoked_serial = cert::jsonb ->> 'serial' WHERE id = $3 AND revoked_at IS NULL",
      [now, reason, id],
    );
  }

  readmitDevice(id: string): Promise<boolean> {
    return this.changed(
      `UPDATE devices SET revoked_at = NULL, revoked_reason = NULL, reenroll_allowed = true, last_seen = NULL, access_level = NULL,
       last_seq = NULL, prev_seq = NULL, latest_report_id = NULL, cert = NULL, posture = NULL WHERE id = $1 AND revoked_at IS NOT NULL`,
      [id],
    );
  }

  allowReenroll(id: string): Promise<boolean> {
    return this.changed('UPDATE devices SET reenroll_allowed = true WHERE id = $1', [id]);
  }

  async deleteDevice(id: string): Promise<boolean> {
    // The history goes in batches, each its own transaction, so that a long one holds no lock for long; the
    // device row goes last with whatever arrived meanwhile, so a crash half-way leaves a device to delete again.
    const batch = 'DELETE FROM reports WHERE arrival IN (SELECT arrival FROM reports WHERE device_id = $1 LIMIT $2)';
    while (((await this.pool.query(batch, [id, DELETE_BATCH])).rowCount ?? 0) === DELETE_BATCH);
    return this.tx(async (c) => {
      await c.query('DELETE FROM reports WHERE device_id = $1', [id]);
      return ((await c.query('DELETE FROM devices WHERE id = $1', [id])).rowCount ?? 0) > 0;
    });
  }

  async setDeviceLevels(items: readonly { id: string; level: AccessLevel; reportId: string }[]): Promise<boolean[]> {
    if (items.length === 0) return [];
    // One statement for the batch: the rows it updated come back, the others had a newer report meanwhile.
    const res = await this.pool.query<{ id: string }>(
      `UPDATE devices d SET access_level = v.level FROM unnest($1::text[], $2::text[], $3::text[]) AS v(id, level, report_id)
       WHERE d.id = v.id AND d.latest_report_id = v.report_id RETURNING d.id`,
      [items.map((i) => i.id), items.map((i) => i.level), items.map((i) => i.reportId)],
    );
    const applied = new Set(res.rows.map((r) => r.id));
    return items.map((i) => applied.has(i.id));
  }

  announceMany(items: readonly Announcement[]): Promise<(number | null)[]> {
    if (items.length === 0) return Promise.resolve([]);
    return this.tx(async (c) => {
      // The counter row first: announcing transactions take their turn here, before any device row, so two of
      // them (a sweep on one instance, a report's announcement on another) cannot deadlock, and ids become
      // visible in commit order.
      const counter = await c.query<{ value: number }>("SELECT value FROM counters WHERE name = 'events' FOR UPDATE");
      const last = counter.rows[0]?.value;
      if (last === undefined) throw new Error('the events counter row is missing');
      let next = last;
      const updated = await this.announceRows(c, items);
      const ids: (number | null)[] = [];
      const eventIds: number[] = [];
      const ats: number[] = [];
      const bodies: string[] = [];
      items.forEach((a, i) => {
        if (updated[i] !== true) {
          ids.push(null);
          return;
        }
        next += 1;
        ids.push(next);
        eventIds.push(next);
        ats.push(Date.parse(a.event.at));
        bodies.push(JSON.stringify(a.event));
      });
      if (eventIds.length > 0) {
        await c.query('INSERT INTO events (id, at, body) SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[])', [eventIds, ats, bodies]);
        await c.query("UPDATE counters SET value = $1 WHERE name = 'events'", [next]);
        // Delivered to every listening instance at COMMIT, and only if it commits: a wake-up, the rows are the events.
        await c.query('SELECT pg_notify($1, $2)', [CLUSTER_CHANNEL, `access:${next}`]);
      }
      return ids;
    });
  }

  /**
   * The announced columns of the items' devices, in one statement for the batch (a sweep step is hundreds of
   * devices: one round trip each made 100,000 devices going stale take 40 s). An item with `ifUnchanged`
   * applies only while the row still shows what the caller read; returns whether each applied. A device
   * twice in one batch (not something the service does) takes the statement-per-item path, whose later item
   * sees the earlier one's write.
   */
  private async announceRows(c: pg.PoolClient, items: readonly Announcement[]): Promise<boolean[]> {
    if (new Set(items.map((a) => a.id)).size !== items.length) {
      const out: boolean[] = [];
      for (const a of items) out.push(((await this.announceRowsBatch(c, [a])).size) === 1);
      return out;
    }
    const updated = await this.announceRowsBatch(c, items);
    return items.map((a) => updated.has(a.id));
  }

  private async announceRowsBatch(c: pg.PoolClient, items: readonly Announcement[]): Promise<Set<string>> {
    const col = <T>(f: (a: Announcement) => T): T[] => items.map(f);
    const res = await c.query<{ id: string }>(
      `UPDATE devices d SET announced_level = v.level, announced_state = v.state, announced_attrs = v.attrs
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::boolean[], $6::bigint[], $7::bigint[], $8::text[], $9::text[])
         AS v(id, level, state, attrs, checked, seen_last_seen, seen_revoked_at, seen_level, seen_state)
       WHERE d.id = v.id AND (NOT v.checked OR (d.last_seen IS NOT DISTINCT FROM v.seen_last_seen
         AND d.revoked_at IS NOT DISTINCT FROM v.seen_revoked_at AND d.announced_level IS NOT DISTINCT FROM v.seen_level
         AND d.announced_state IS NOT DISTINCT FROM v.seen_state))
       RETURNING d.id`,
      [
        col((a) => a.id),
        col((a) => a.level),
        col((a) => a.state),
        col((a) => a.attrs),
        col((a) => a.ifUnchanged !== undefined),
        col((a) => a.ifUnchanged?.lastSeen ?? null),
        col((a) => a.ifUnchanged?.revokedAt ?? null),
        col((a) => a.ifUnchanged?.announcedLevel ?? null),
        col((a) => a.ifUnchanged?.announcedState ?? null),
      ],
    );
    return new Set(res.rows.map((r) => r.id));
  }

  async eventsSince(afterId: number, limit: number): Promise<StoredEvent[]> {
    const rows = await this.rows<{ id: number; body: string }>('SELECT id, body FROM events WHERE id > $1 ORDER BY id LIMIT $2', [afterId, limit]);
    return rows.map((r) => ({ id: r.id, event: JSON.parse(r.body) as AccessLevelEvent }));
  }

  async eventBounds(): Promise<{ oldest: number | null; newest: number }> {
    const [b] = await this.rows<{ oldest: number | null; newest: number }>(
      "SELECT (SELECT MIN(id) FROM events) AS oldest, (SELECT value FROM counters WHERE name = 'events') AS newest",
    );
    // The counter, not MAX(id): with every event pruned it still knows the last id handed out.
    return { oldest: b?.oldest ?? null, newest: b?.newest ?? 0 };
  }

  async pruneEvents(keep: number, olderThan: number, batchLimit: number): Promise<number> {
    const [max] = await this.rows<{ id: number | null }>('SELECT MAX(id) AS id FROM events');
    const keepAbove = (max?.id ?? 0) - keep;
    let removed = 0;
    for (;;) {
      // Only the oldest `batchLimit` are looked at: ids and times grow together, so once one of them is kept,
      // every later one is too.
      const res = await this.pool.query(
        'DELETE FROM events WHERE id IN (SELECT id FROM (SELECT id, at FROM events ORDER BY id LIMIT $3) e WHERE id <= $1 OR at < $2)',
        [keepAbove, olderThan, batchLimit],
      );
      const n = res.rowCount ?? 0;
      removed += n;
      if (n < batchLimit) return removed;
    }
  }

  async setRecheck(id: string, recheck: { requestId: string; requestedAt: number } | null): Promise<void> {
    await this.pool.query('UPDATE devices SET recheck_id = $1, recheck_at = $2 WHERE id = $3', [recheck?.requestId ?? null, recheck?.requestedAt ?? null, id]);
  }

  /**
   * One autocommit statement per report. PostgreSQL flushes concurrent commits together (its own group commit),
   * so reports arriving at once share WAL flushes without holding any one back.
   */
  async ingestReport(r: NewReport): Promise<Ingested> {
    const body = typeof r.body === 'string' ? Buffer.from(r.body, 'utf8') : r.body;
    // Named: the statement is parsed and planned once per connection, not once per report.
    const res = await this.pool.query<{ inserted: boolean; prev_seq: number | null; anomaly: boolean | null }>({ name: 'ingest', text: INGEST, values: [
      r.reportId,
      r.deviceId,
      r.seq,
      r.generatedAt,
      r.receivedAt,
      r.accessLevel,
      body,
      r.dropped,
      JSON.stringify(r.cert),
      JSON.stringify(r.posture),
      r.answersRecheck,
      r.failingChecks,
      body.length,
    ] });
    const row = res.rows[0];
    if (!row?.inserted) return { inserted: false, becameLatest: false, previousSeq: null, seqAnomaly: false };
    // No device row: it was removed under the report.
    if (row.anomaly === null) return { inserted: true, becameLatest: false, previousSeq: null, seqAnomaly: false };
    return { inserted: true, becameLatest: true, previousSeq: row.prev_seq, seqAnomaly: row.anomaly };
  }

  async getLatestReport(deviceId: string): Promise<StoredReport | null> {
    const [row] = await this.rows<ReportRow & { body: Buffer }>(
      'SELECT r.* FROM devices d JOIN reports r ON r.device_id = d.id AND r.seq = d.last_seq AND r.report_id = d.latest_report_id WHERE d.id = $1',
      [deviceId],
    );
    return row ? { ...toMeta(row), report: postureReportSchema.parse(envelopeReport(row.body)) } : null;
  }

  async listReports(deviceId: string, page: PageQuery): Promise<Page<StoredReportMeta>> {
    let before = Number.MAX_SAFE_INTEGER;
    if (page.after !== null) {
      if (!/^\d{1,16}$/.test(page.after)) throw new InvalidCursorError('cursor: not one this list handed out');
      before = Number(page.after);
    }
    const rows = await this.rows<ReportRow>(
      `SELECT arrival, body_size, report_id, seq, generated_at, received_at, access_level FROM reports
       WHERE device_id = $1 AND arrival < $2 ORDER BY arrival DESC LIMIT $3`,
      [deviceId, before, page.limit + 1],
    );
    const kept = rows.slice(0, page.limit);
    const last = kept.at(-1);
    return { items: kept.map(toMeta), next: rows.length > page.limit && last ? String(last.arrival) : null };
  }

  /**
   * A step of SCAN_STEP devices at a time (by id), and within it at most `batchLimit` reports per statement: the
   * window functions read only that step's histories through (device_id, arrival). A report goes when it is
   * past the newest `keep` of its device, older than `olderThan`, or past `maxBytesPerDevice` counting from the
   * newest; never the device's latest.
   */
  async pruneReports(rules: RetentionRules, batchLimit: number): Promise<number> {
    let removed = 0;
    let after = '';
    for (;;) {
      const [end] = await this.rows<{ id: string }>('SELECT id FROM devices WHERE id > $1 ORDER BY id OFFSET $2 LIMIT 1', [after, SCAN_STEP - 1]);
      const upto = end?.id ?? null;
      for (;;) {
        const res = await this.pool.query(
          `DELETE FROM reports WHERE arrival IN (
             SELECT r.arrival FROM (
               SELECT arrival, device_id, report_id, seq, received_at,
                 row_number() OVER w AS n, sum(body_size) OVER w AS bytes
               FROM reports WHERE device_id > $1 AND ($2::text IS NULL OR device_id <= $2)
               WINDOW w AS (PARTITION BY device_id ORDER BY arrival DESC)
             ) r LEFT JOIN devices d ON d.id = r.device_id
             WHERE (r.n > $3 OR r.received_at < $4 OR r.bytes > $5)
               AND NOT (r.report_id IS NOT DISTINCT FROM d.latest_report_id AND r.seq IS NOT DISTINCT FROM d.last_seq)
             LIMIT $6)`,
          [after, upto, rules.keep, rules.olderThan ?? Number.MIN_SAFE_INTEGER, rules.maxBytesPerDevice ?? Number.MAX_SAFE_INTEGER, batchLimit],
        );
        const n = res.rowCount ?? 0;
        removed += n;
        if (n < batchLimit) break;
      }
      if (upto === null) return removed;
      after = upto;
    }
  }

  async getPolicy(): Promise<Policy | null> {
    const [row] = await this.rows<{ body: string }>('SELECT body FROM policies ORDER BY id DESC LIMIT 1');
    return row ? policySchema.parse(JSON.parse(row.body)) : null;
  }

  async setPolicy(policy: Policy, now: number): Promise<void> {
    await this.tx(async (c) => {
      await c.query('INSERT INTO policies (version, body, set_at) VALUES ($1, $2, $3)', [policy.version, JSON.stringify(policy), now]);
      // Instances reload the policy at COMMIT.
      await c.query('SELECT pg_notify($1, $2)', [CLUSTER_CHANNEL, 'policy:0']);
    });
  }

  async createApiToken(t: NewApiToken): Promise<void> {
    await this.pool.query('INSERT INTO api_tokens (id, hash, scope, name, created_at) VALUES ($1, $2, $3, $4, $5)', [t.id, t.hash, t.scope, t.name, t.createdAt]);
  }

  async getApiToken(id: string): Promise<StoredApiToken | null> {
    const [row] = await this.rows<ApiTokenRow>('SELECT * FROM api_tokens WHERE id = $1', [id]);
    return row ? toApiToken(row) : null;
  }

  async listApiTokens(page: PageQuery): Promise<Page<StoredApiToken>> {
    const c = timeCursor(page.after);
    const rows = await this.rows<ApiTokenRow>(TIME_PAGE.replace('$table', 'api_tokens'), [c?.at ?? null, c?.id ?? '', page.limit + 1]);
    return timePage(rows, page.limit, toApiToken);
  }

  revokeApiToken(id: string, now: number): Promise<boolean> {
    return this.changed('UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [now, id]);
  }

  // ---- admin console ----

  async createAdmin(a: NewAdmin): Promise<boolean> {
    return this.changed('INSERT INTO admins (name, password_hash, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING', [
      a.name,
      a.passwordHash,
      a.createdAt,
    ]);
  }

  async getAdmin(name: string): Promise<StoredAdmin | null> {
    const [row] = await this.rows<AdminRow>('SELECT * FROM admins WHERE name = $1', [name]);
    return row ? toAdmin(row) : null;
  }

  async listAdmins(): Promise<StoredAdmin[]> {
    return (await this.rows<AdminRow>('SELECT * FROM admins ORDER BY name COLLATE "C"')).map(toAdmin);
  }

  setAdminPassword(name: string, passwordHash: string): Promise<boolean> {
    return this.tx(async (c) => {
      await c.query('DELETE FROM sessions WHERE admin = $1', [name]);
      return ((await c.query('UPDATE admins SET password_hash = $1 WHERE name = $2', [passwordHash, name])).rowCount ?? 0) === 1;
    });
  }

  deleteAdmin(name: string): Promise<boolean> {
    return this.tx(async (c) => {
      await c.query('DELETE FROM sessions WHERE admin = $1', [name]);
      return ((await c.query('DELETE FROM admins WHERE name = $1', [name])).rowCount ?? 0) === 1;
    });
  }

  async createSession(s: NewSession): Promise<void> {
    await this.pool.query('INSERT INTO sessions (id_hash, admin, csrf, created_at, last_seen, ip, user_agent) VALUES ($1, $2, $3, $4, $4, $5, $6)', [
      s.idHash,
      s.admin,
      s.csrf,
      s.createdAt,
      s.ip,
      s.userAgent,
    ]);
  }

  async getSession(idHash: Buffer): Promise<StoredSession | null> {
    const [row] = await this.rows<SessionRow>('SELECT * FROM sessions WHERE id_hash = $1', [idHash]);
    return row ? toSession(row) : null;
  }

  async touchSession(idHash: Buffer, now: number): Promise<void> {
    await this.pool.query('UPDATE sessions SET last_seen = GREATEST(last_seen, $1) WHERE id_hash = $2', [now, idHash]);
  }

  deleteSession(idHash: Buffer): Promise<boolean> {
    return this.changed('DELETE FROM sessions WHERE id_hash = $1', [idHash]);
  }

  async pruneSessions(idleBefore: number, createdBefore: number): Promise<number> {
    return (await this.pool.query('DELETE FROM sessions WHERE last_seen < $1 OR created_at < $2', [idleBefore, createdBefore])).rowCount ?? 0;
  }

  async appendAudit(e: NewAuditEntry): Promise<number> {
    const [row] = await this.rows<{ id: number }>('INSERT INTO audit (at, actor, action, target, ip, detail) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id', [
      e.at,
      e.actor,
      e.action,
      e.target,
      e.ip,
      e.detail === null ? null : JSON.stringify(e.detail),
    ]);
    if (!row) throw new Error('INSERT ... RETURNING gave no row');
    return row.id;
  }

  async listAudit(limit: number, beforeId: number | null): Promise<StoredAuditEntry[]> {
    const rows = await this.rows<AuditRow>('SELECT * FROM audit WHERE id < $1 ORDER BY id DESC LIMIT $2', [beforeId ?? Number.MAX_SAFE_INTEGER, limit]);
    return rows.map(toAudit);
  }

  async fleetCountsPage(staleBefore: number, afterId: string, limit: number): Promise<FleetCountsPage> {
    const page = 'SELECT * FROM devices WHERE id > $2 ORDER BY id LIMIT $3';
    const [last] = await this.rows<{ id: string | null }>(`SELECT MAX(id) AS id FROM (${page.replace('$2', '$1').replace('$3', '$2')}) p`, [afterId, limit]);
    const lastId = last?.id ?? null;
    if (lastId === null) return { lastId, groups: [], failing: [] };
    const state = STATE_SQL.replaceAll('$s', '$1');
    const groups = await this.rows<{ state: string; level: string | null; os: string | null; n: number }>(
      `SELECT state, CASE WHEN state = 'active' THEN access_level ELSE 'blocked' END AS level, os, COUNT(*)::int AS n FROM (
         SELECT ${state} AS state, access_level, COALESCE(posture::jsonb #>> '{os,name}', facts::jsonb #>> '{os,name}') AS os
         FROM (${page}) d) g GROUP BY 1, 2, 3`,
      [staleBefore, afterId, limit],
    );
    const failing = await this.rows<{ check: string; n: number }>(
      `SELECT f AS check, COUNT(*)::int AS n FROM (${page.replace('$2', '$1').replace('$3', '$2')}) d, unnest(d.failing_checks) AS f
       WHERE d.revoked_at IS NULL GROUP BY 1`,
      [afterId, limit],
    );
    return {
      lastId,
      groups: groups.map((r) => ({
        state: (DEVICE_STATES as readonly string[]).includes(r.state) ? (r.state as DeviceState) : 'enrolled',
        level: level(r.level) ?? 'blocked',
        os: r.os ?? 'unknown',
        count: r.n,
      })),
      failing: failing.map((r) => ({ check: r.check, count: r.n })),
    };
  }

  async latestResultsPage(afterId: string, limit: number): Promise<DeviceResults[]> {
    const rows = await this.rows<DeviceRow & { report_rid: string | null; report_body: Buffer | null }>(
      `SELECT d.*, r.report_id AS report_rid, r.body AS report_body FROM devices d
       LEFT JOIN reports r ON r.device_id = d.id AND r.seq = d.last_seq AND r.report_id = d.latest_report_id
       WHERE d.id > $1 ORDER BY d.id LIMIT $2`,
      [afterId, limit],
    );
    return rows.map((r) => {
      const body = r.report_body;
      if (body === null || r.report_rid === null) return { device: toDevice(r), latest: null };
      const read = () => {
        // Validated by the decoder when it arrived; the results and platform are all that is read here.
        const report = envelopeReport(body) as { device: { platform: Platform }; results: EvaluatedResult[] };
        return { platform: report.device.platform, results: report.results };
      };
      return { device: toDevice(r), latest: { reportId: r.report_rid, read } };
    });
  }

  async putFleetSnapshot(s: FleetSnapshot): Promise<void> {
    await this.pool.query(
      `INSERT INTO fleet_snapshots (at, full_count, limited, blocked, stale) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (at) DO UPDATE SET full_count = $2, limited = $3, blocked = $4, stale = $5`,
      [s.at, s.full, s.limited, s.blocked, s.stale],
    );
  }

  async listFleetSnapshots(since: number): Promise<FleetSnapshot[]> {
    // FULL is a reserved word in PostgreSQL, hence the column's other name.
    return this.rows<FleetSnapshot>('SELECT at, full_count AS "full", limited, blocked, stale FROM fleet_snapshots WHERE at >= $1 ORDER BY at', [since]);
  }

  async pruneFleetSnapshots(olderThan: number): Promise<number> {
    return (await this.pool.query('DELETE FROM fleet_snapshots WHERE at < $1', [olderThan])).rowCount ?? 0;
  }
}
