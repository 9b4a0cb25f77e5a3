import { existsSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type pg from 'pg';
import { redactDatabaseUrl } from './pg-cluster.js';
import { PgStorage } from './pg-storage.js';
import { SCHEMA_VERSION, SQLITE_FILE } from './sqlite-storage.js';

/** A column's PostgreSQL type, which is also how its SQLite value is converted (see toPg). */
type PgType = 'text' | 'bigint' | 'integer' | 'boolean' | 'bytea';

interface Column {
  name: string;
  type: PgType;
  /** The value to insert, in SQL over the unnest column of the same name, when it is not that column as is. */
  expr?: string;
}

interface Table {
  name: string;
  /** Reads the SQLite rows in the order they are inserted, with the PostgreSQL column names. */
  select: string;
  columns: readonly Column[];
  /**
   * A GENERATED ALWAYS column whose SQLite values are kept (history cursors, audit ids and the policy order
   * stay as they were), so it is inserted OVERRIDING SYSTEM VALUE and its sequence set past the highest.
   */
  identity?: Identity;
  /** Whether an existing target row wins: meta holds PostgreSQL's own schema row. */
  keepExisting?: boolean;
}

interface Identity {
  column: string;
  /** Where SQLite holds it. */
  sqliteColumn: string;
  /** Whether SQLite's AUTOINCREMENT counter (sqlite_sequence) may be past the highest id, rows having gone. */
  autoincrement: boolean;
}

const col = (name: string, type: PgType, expr?: string): Column => (expr === undefined ? { name, type } : { name, type, expr });

/**
 * Every table that carries state, as both CREATE TABLE blocks define it (sqlite-storage.ts, pg-storage.ts).
 * Left out: rate_buckets (PostgreSQL only, refilled within a minute) and the SQLite-only device counters
 * report_count/report_bytes (PostgreSQL prunes by window functions over the history instead).
 */
const TABLES: readonly Table[] = [
  {
    name: 'devices',
    select: `SELECT id, facts, enrolled_at, secret_id, revoked_at, last_seen, last_seq, access_level, cert, dropped, announced_level,
      announced_state, recheck_id, recheck_at, latest_report_id, prev_seq, seq_anomalies, revoked_reason, revoked_serial,
      reenroll_allowed, posture, announced_attrs, failing_checks FROM devices ORDER BY id`,
    columns: [
      col('id', 'text'), col('facts', 'text'), col('enrolled_at', 'bigint'), col('secret_id', 'text'), col('revoked_at', 'bigint'),
      col('last_seen', 'bigint'), col('last_seq', 'bigint'), col('access_level', 'text'), col('cert', 'text'), col('dropped', 'bigint'),
      col('announced_level', 'text'), col('announced_state', 'text'), col('recheck_id', 'text'), col('recheck_at', 'bigint'),
      col('latest_report_id', 'text'), col('prev_seq', 'bigint'), col('seq_anomalies', 'integer'), col('revoked_reason', 'text'),
      col('revoked_serial', 'text'), col('reenroll_allowed', 'boolean'), col('posture', 'text'), col('announced_attrs', 'text'),
      // SQLite keeps `,a,b,` ('' when none failed, NULL before the first report since schema 6); PostgreSQL an array.
      col('failing_checks', 'text', "string_to_array(btrim(failing_checks, ','), ',')"),
    ],
  },
  {
    name: 'reports',
    // rowid is SQLite's arrival order, which history follows; `arrival` is PostgreSQL's.
    select: `SELECT rowid AS arrival, report_id, device_id, seq, generated_at, received_at, access_level, body, body_size
      FROM reports ORDER BY rowid`,
    columns: [
      col('arrival', 'bigint'), col('report_id', 'text'), col('device_id', 'text'), col('seq', 'bigint'), col('generated_at', 'text'),
      col('received_at', 'bigint'), col('access_level', 'text'), col('body', 'bytea'), col('body_size', 'integer'),
    ],
    identity: { column: 'arrival', sqliteColumn: 'rowid', autoincrement: false },
  },
  {
    name: 'secrets',
    select: 'SELECT id, hash, label, created_at, expires_at, uses_total, uses_left, revoked FROM secrets ORDER BY id',
    columns: [
      col('id', 'text'), col('hash', 'bytea'), col('label', 'text'), col('created_at', 'bigint'), col('expires_at', 'bigint'),
      col('uses_total', 'integer'), col('uses_left', 'integer'), col('revoked', 'boolean'),
    ],
  },
  {
    name: 'reservations',
    select: 'SELECT device_id, secret_id, facts, created_at, expires_at, refuse_serial FROM reservations ORDER BY device_id',
    columns: [
      col('device_id', 'text'), col('secret_id', 'text'), col('facts', 'text'), col('created_at', 'bigint'), col('expires_at', 'bigint'),
      col('refuse_serial', 'text'),
    ],
  },
  {
    name: 'api_tokens',
    select: 'SELECT id, hash, scope, name, created_at, revoked_at FROM api_tokens ORDER BY id',
    columns: [col('id', 'text'), col('hash', 'bytea'), col('scope', 'text'), col('name', 'text'), col('created_at', 'bigint'), col('revoked_at', 'bigint')],
  },
  {
    name: 'policies',
    select: 'SELECT id, version, body, set_at FROM policies ORDER BY id',
    columns: [col('id', 'bigint'), col('version', 'text'), col('body', 'text'), col('set_at', 'bigint')],
    identity: { column: 'id', sqliteColumn: 'id', autoincrement: true },
  },
  {
    name: 'events',
    select: 'SELECT id, at, body FROM events ORDER BY id',
    columns: [col('id', 'bigint'), col('at', 'bigint'), col('body', 'text')],
  },
  {
    name: 'admins',
    select: 'SELECT name, password_hash, created_at, disabled FROM admins ORDER BY name',
    columns: [col('name', 'text'), col('password_hash', 'text'), col('created_at', 'bigint'), col('disabled', 'boolean')],
  },
  {
    // Copied, so admins stay signed in: a session is the SHA-256 of its cookie, valid on whichever backend.
    name: 'sessions',
    select: 'SELECT id_hash, admin, csrf, created_at, last_seen, ip, user_agent FROM sessions ORDER BY id_hash',
    columns: [
      col('id_hash', 'bytea'), col('admin', 'text'), col('csrf', 'text'), col('created_at', 'bigint'), col('last_seen', 'bigint'),
      col('ip', 'text'), col('user_agent', 'text'),
    ],
  },
  {
    name: 'audit',
    select: 'SELECT id, at, actor, action, target, ip, detail FROM audit ORDER BY id',
    columns: [
      col('id', 'bigint'), col('at', 'bigint'), col('actor', 'text'), col('action', 'text'), col('target', 'text'), col('ip', 'text'),
      col('detail', 'text'),
    ],
    identity: { column: 'id', sqliteColumn: 'id', autoincrement: true },
  },
  {
    name: 'fleet_snapshots',
    // FULL is reserved in PostgreSQL, where the column is full_count.
    select: 'SELECT at, full AS full_count, limited, blocked, stale FROM fleet_snapshots ORDER BY at',
    columns: [col('at', 'bigint'), col('full_count', 'integer'), col('limited', 'integer'), col('blocked', 'integer'), col('stale', 'integer')],
  },
  {
    name: 'meta',
    select: "SELECT key, value FROM meta WHERE key != 'schema' ORDER BY key",
    columns: [col('key', 'text'), col('value', 'text')],
    keepExisting: true,
  },
];

/** Events keep their ids; SQLite's counter outlives pruned events, as PostgreSQL's row in `counters` must. */
const EVENTS_ID: Identity = { column: 'id', sqliteColumn: 'id', autoincrement: true };

export const COPY_BATCH = 1000;

export interface CopyOptions {
  /** The data dir holding the SQLite database. */
  dataDir: string;
  /** The PostgreSQL URL to fill. */
  database: string;
  /** Rows per INSERT. */
  batchSize?: number;
  /** After each batch, and once per table even when it is empty. */
  onProgress?: (table: string, done: number, total: number) => void;
}

export interface CopySummary {
  /** Rows copied per table, in copy order. */
  tables: { table: string; rows: number }[];
  /** The PostgreSQL event counter after the copy: new events continue after it. */
  lastEventId: number;
  ms: number;
}

/** An SQLite value as the PostgreSQL array element of its column's type. */
function toPg(type: PgType, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  switch (type) {
    case 'boolean':
      return v !== 0;
    case 'bytea':
      // Report bodies are gzip BLOBs or the envelope's JSON text; PostgreSQL holds both as bytes.
      return typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
    default:
      return v;
  }
}

/** One multi-row INSERT per batch: a fixed statement with one array parameter per column, whatever the batch size. */
function insertSql(t: Table): string {
  const names = t.columns.map((c) => c.name).join(', ');
  const arrays = t.columns.map((c, i) => `$${i + 1}::${c.type}[]`).join(', ');
  const values = t.columns.map((c) => c.expr ?? c.name).join(', ');
  return `INSERT INTO ${t.name} (${names}) ${t.identity !== undefined ? 'OVERRIDING SYSTEM VALUE ' : ''}SELECT ${values}
    FROM unnest(${arrays}) AS r(${names})${t.keepExisting === true ? ' ON CONFLICT DO NOTHING' : ''}`;
}

/** Opens the SQLite database read-only and checks it is a control plane's at the schema PostgreSQL holds. */
function openSqlite(dataDir: string): Database.Database {
  const file = join(dataDir, SQLITE_FILE);
  if (!existsSync(file)) throw new Error(`--data-dir ${dataDir}: no ${SQLITE_FILE} there (expected the data dir of a SQLite control plane)`);
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const hasMeta = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get() !== undefined;
    const ver = hasMeta ? db.prepare<[], { value: string }>("SELECT value FROM meta WHERE key = 'schema'").get() : undefined;
    if (!ver) throw new Error(`--data-dir ${dataDir}: ${SQLITE_FILE} is not a control plane's database (no schema version)`);
    if (ver.value !== String(SCHEMA_VERSION)) {
      throw new Error(
        `--data-dir ${dataDir}: ${SQLITE_FILE} is at schema ${ver.value}, expected ${SCHEMA_VERSION} (start this version's server on it once to upgrade it, then stop it)`,
      );
    }
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

async function copyTable(src: Database.Database, c: pg.PoolClient, t: Table, batchSize: number, onProgress: CopyOptions['onProgress']): Promise<number> {
  const total = src.prepare<[], number>(`SELECT COUNT(*) FROM (${t.select})`).pluck().get() ?? 0;
  const sql = insertSql(t);
  let arrays: unknown[][] = t.columns.map(() => []);
  let done = 0;
  const flush = async (): Promise<void> => {
    const n = arrays[0]?.length ?? 0;
    if (n === 0) return;
    await c.query(sql, arrays);
    done += n;
    arrays = t.columns.map(() => []);
    onProgress?.(t.name, done, total);
  };
  // iterate() reads a row at a time: only one batch of the table is ever in memory.
  for (const row of src.prepare<[], Record<string, unknown>>(t.select).iterate()) {
    t.columns.forEach((col, i) => arrays[i]?.push(toPg(col.type, row[col.name])));
    if ((arrays[0]?.length ?? 0) >= batchSize) await flush();
  }
  await flush();
  if (done === 0) onProgress?.(t.name, 0, total);
  return done;
}

/** The highest id SQLite has handed out in a table, 0 if none. */
function highest(src: Database.Database, table: string, id: Identity): number {
  const max = src.prepare<[], number | null>(`SELECT MAX(${id.sqliteColumn}) FROM ${table}`).pluck().get() ?? 0;
  const seq = id.autoincrement ? (src.prepare<[string], number>('SELECT seq FROM sqlite_sequence WHERE name = ?').pluck().get(table) ?? 0) : 0;
  return Math.max(max, seq);
}

/**
 * Copies a stopped SQLite control plane's database into an empty PostgreSQL one, in one PostgreSQL
 * transaction: a failure anywhere leaves the target as it was. The SQLite side is read in one read
 * transaction, so the copy is one consistent snapshot even if something wrote meanwhile.
 */
export async function copyToPostgres(opts: CopyOptions): Promise<CopySummary> {
  const started = Date.now();
  const src = openSqlite(opts.dataDir);
  try {
    let storage: PgStorage;
    try {
      storage = await PgStorage.open(opts.database);
    } catch (err) {
      throw new Error(`--database ${redactDatabaseUrl(opts.database)}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    try {
      src.exec('BEGIN');
      const summary = await storage.tx(async (c) => {
        // Held until COMMIT: an instance started on the target by mistake can neither write under the copy
        // nor make the emptiness checked below untrue.
        await c.query(`LOCK TABLE ${TABLES.map((t) => t.name).join(', ')}, counters IN EXCLUSIVE MODE`);
        for (const t of TABLES) {
          if (t.keepExisting === true) continue;
          const rows = await c.query(`SELECT 1 FROM ${t.name} LIMIT 1`);
          if (rows.rowCount !== 0) {
            throw new Error(`--database ${redactDatabaseUrl(opts.database)}: table ${t.name} already has rows; copy only into an empty database (nothing was copied)`);
          }
        }
        const tables: CopySummary['tables'] = [];
        for (const t of TABLES) {
          let rows: number;
          try {
            rows = await copyTable(src, c, t, opts.batchSize ?? COPY_BATCH, opts.onProgress);
          } catch (err) {
            throw new Error(`copying ${t.name}: ${err instanceof Error ? err.message : String(err)} (nothing was copied: the transaction was rolled back)`, { cause: err });
          }
          tables.push({ table: t.name, rows });
          if (t.identity !== undefined) {
            const top = highest(src, t.name, t.identity);
            // setval(…, 0) is out of range: an empty table leaves the fresh sequence at its start.
            if (top > 0) await c.query('SELECT setval(pg_get_serial_sequence($1, $2), $3)', [t.name, t.identity.column, top]);
          }
        }
        const lastEvent = highest(src, 'events', EVENTS_ID);
        const counter = await c.query<{ value: number }>(
          "UPDATE counters SET value = GREATEST(value, $1) WHERE name = 'events' RETURNING value",
          [lastEvent],
        );
        return { tables, lastEventId: counter.rows[0]?.value ?? lastEvent };
      });
      return { ...summary, ms: Date.now() - started };
    } finally {
      await storage.close();
    }
  } finally {
    src.close();
  }
}
