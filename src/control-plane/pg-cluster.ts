import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Logger } from '../logging/logger.js';
import type { AccessLevelEvent } from '../protocol/admin.js';
import type { Directives } from '../protocol/wire.js';
import type { Cluster, ClusterJob } from './cluster.js';
import { EventHub, type ClusterPeer } from './events.js';
import { CLUSTER_CHANNEL, LOCK_PRUNE, LOCK_SWEEP, type PgStorage } from './pg-storage.js';
import type { RateLimit } from './rate-limit.js';

const JOB_LOCKS: Record<ClusterJob, bigint> = { sweep: LOCK_SWEEP, prune: LOCK_PRUNE };
const REPLAY_PAGE = 500;
const MAX_BACKOFF_MS = 5000;

/** The URL with its password replaced, for logs. */
export function redactDatabaseUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return '(an unparsable database URL)';
  }
}

/**
 * The hub across instances. NOTIFY is only a wake-up (payload `kind:origin:id`); what it announces is read
 * from the tables, so nothing depends on a notification arriving:
 * - access events: the events table is the source of truth. Any wake-up (a NOTIFY sent at the commit of an
 *   announce, or this instance's own publish) reads `eventsSince(last delivered)` and delivers them in id
 *   order, which is commit order (PgStorage.announce), so none is skipped or repeated.
 * - directives and revocations: the instance that made the change delivers to its own streams and notifies;
 *   an instance holding the device's stream reads the device and pushes its directives (or closes it).
 * - policy: stored, then NOTIFY at commit; every instance re-reads it and pushes directives to its devices.
 * The LISTEN connection is a dedicated client (a pooled one would be reused by queries, and pgbouncer in
 * transaction mode cannot carry LISTEN). When it drops, it reconnects with backoff and then catches up from
 * the tables: events by id, the policy, and every connected device's directives.
 */
export class PgEventHub extends EventHub {
  private readonly instance = randomUUID().slice(0, 8);
  private listener: pg.Client | null = null;
  private peer: ClusterPeer | null = null;
  private lastId = 0;
  private closed = false;
  private retry: NodeJS.Timeout | null = null;
  private backoff = 100;
  private catching = false;
  private again = false;

  constructor(
    private readonly storage: PgStorage,
    private readonly url: string,
    private readonly logger: Logger,
  ) {
    super();
  }

  override async start(peer: ClusterPeer): Promise<void> {
    this.peer = peer;
    this.lastId = (await this.storage.eventBounds()).newest;
    await this.listen();
  }

  /** Without the LISTEN connection, events and directives from other instances do not reach this one's clients. */
  override notReady(): string | null {
    return this.listener === null ? 'the LISTEN connection to PostgreSQL is down (reconnecting)' : null;
  }

  override async close(): Promise<void> {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    const c = this.listener;
    this.listener = null;
    await c?.end().catch(() => undefined);
  }

  /** The event is already a committed row: deliver everything up to it, in order, from the table. */
  override publishAccess(_id: number, _event: AccessLevelEvent): void {
    this.catchUp();
  }

  override publishDirectives(deviceId: string, directives: Directives): void {
    this.deliverDirectives(deviceId, directives);
    this.notify(`device:${this.instance}:${deviceId}`);
  }

  override disconnectDevice(deviceId: string): void {
    this.deliverDisconnect(deviceId);
    this.notify(`revoked:${this.instance}:${deviceId}`);
  }

  private notify(payload: string): void {
    // The change itself is stored; a lost wake-up is made good when the other instance next resyncs.
    this.storage.pool.query('SELECT pg_notify($1, $2)', [CLUSTER_CHANNEL, payload]).catch((err: unknown) => {
      this.logger.warn('could not notify the other instances', { component: 'control-plane', err });
    });
  }

  private onNotify(payload: string): void {
    const [kind = '', origin = '', ...rest] = payload.split(':');
    const deviceId = rest.join(':');
    if (kind === 'access') this.catchUp();
    else if (kind === 'policy') void this.policyChanged();
    else if (kind === 'device' && origin !== this.instance) void this.refreshDevice(deviceId);
    else if (kind === 'revoked' && origin !== this.instance) this.deliverDisconnect(deviceId);
  }

  /** Delivers every stored event after the last one delivered; one reader at a time, re-run if woken meanwhile. */
  private catchUp(): void {
    if (this.closed) return;
    if (this.catching) {
      this.again = true;
      return;
    }
    this.catching = true;
    const run = async (): Promise<void> => {
      do {
        this.again = false;
        for (;;) {
          const events = await this.storage.eventsSince(this.lastId, REPLAY_PAGE);
          for (const e of events) {
            this.lastId = e.id;
            this.deliverAccess(e.id, e.event);
          }
          if (events.length < REPLAY_PAGE) break;
        }
      } while (this.wokenMeanwhile());
    };
    run()
      .catch((err: unknown) => {
        this.logger.warn('could not read new access-level events; retrying', { component: 'control-plane', err });
        const t = setTimeout(() => { this.catchUp(); }, 1000);
        t.unref();
      })
      .finally(() => {
        this.catching = false;
      });
  }

  private wokenMeanwhile(): boolean {
    return this.again && !this.closed;
  }

  private async refreshDevice(deviceId: string): Promise<void> {
    if (!this.peer || !this.connectedDevices().includes(deviceId)) return;
    try {
      const d = await this.peer.directivesOf(deviceId);
      if (d) this.deliverDirectives(deviceId, d);
    } catch (err) {
      this.logger.warn('could not read a device changed by another instance', { component: 'control-plane', device: deviceId, err });
    }
  }

  private async policyChanged(force = false): Promise<void> {
    if (!this.peer) return;
    try {
      const changed = await this.peer.reloadPolicy();
      if (!changed && !force) return;
      for (const id of this.connectedDevices()) await this.refreshDevice(id);
    } catch (err) {
      this.logger.warn('could not reload the policy changed by another instance', { component: 'control-plane', err });
    }
  }

  private async listen(): Promise<void> {
    const c = new pg.Client({ connectionString: this.url, keepAlive: true, application_name: 'vigil-control-plane-listen' });
    c.on('notification', (m) => {
      if (m.channel === CLUSTER_CHANNEL && m.payload !== undefined) this.onNotify(m.payload);
    });
    c.on('error', (err) => {
      this.lost(c, err);
    });
    c.on('end', () => {
      this.lost(c, null);
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${CLUSTER_CHANNEL}`);
    } catch (err) {
      await c.end().catch(() => undefined);
      throw err;
    }
    this.listener = c;
    this.backoff = 100;
  }

  private lost(c: pg.Client, err: Error | null): void {
    if (this.listener !== c) return;
    this.listener = null;
    c.end().catch(() => undefined);
    if (this.closed) return;
    this.logger.warn('lost the LISTEN connection to PostgreSQL; reconnecting', { component: 'control-plane', err });
    this.reconnect();
  }

  private reconnect(): void {
    if (this.retry || this.closed) return;
    this.retry = setTimeout(() => {
      this.retry = null;
      this.listen().then(
        () => {
          this.logger.info('LISTEN connection to PostgreSQL restored; catching up', { component: 'control-plane' });
          // What was notified while nobody listened is in the tables.
          this.catchUp();
          void this.policyChanged(true);
        },
        (err: unknown) => {
          this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
          this.logger.debug('PostgreSQL not reachable yet', { component: 'control-plane', err });
          this.reconnect();
        },
      );
    }, this.backoff);
    this.retry.unref();
  }
}

/**
 * A token bucket per (name, key) in one row, refilled and taken in one statement, so instances share it. The
 * clock is each instance's; skew between them only shifts refills by that much.
 */
class PgRateLimit implements RateLimit {
  constructor(
    private readonly pool: pg.Pool,
    private readonly name: string,
    private readonly burst: number,
    private readonly perMinute: number,
    private readonly now: () => number = Date.now,
  ) {}

  async take(key: string): Promise<number> {
    const refill = 'LEAST(EXCLUDED.burst, b.tokens + GREATEST(0, EXCLUDED.at - b.at)::float8 / 60000 * EXCLUDED.per_minute)';
    const res = await this.pool.query<{ tokens: number; granted: boolean }>(
      `INSERT INTO rate_buckets AS b (name, key, tokens, at, burst, per_minute, granted) VALUES ($1, $2, $3::float8 - 1, $4, $3, $5, true)
       ON CONFLICT (name, key) DO UPDATE SET tokens = ${refill} - CASE WHEN ${refill} >= 1 THEN 1 ELSE 0 END,
         granted = ${refill} >= 1, at = GREATEST(b.at, EXCLUDED.at), burst = EXCLUDED.burst, per_minute = EXCLUDED.per_minute
       RETURNING tokens, granted`,
      [this.name, key, this.burst, this.now(), this.perMinute],
    );
    const row = res.rows[0];
    if (!row) throw new Error('rate_buckets: the upsert returned no row');
    return row.granted ? 0 : this.secondsUntilToken(row.tokens);
  }

  async wait(key: string): Promise<number> {
    const res = await this.pool.query<{ tokens: number; at: number }>('SELECT tokens, at FROM rate_buckets WHERE name = $1 AND key = $2', [this.name, key]);
    const row = res.rows[0];
    if (!row) return 0;
    return this.secondsUntilToken(Math.min(this.burst, row.tokens + (Math.max(0, this.now() - row.at) / 60_000) * this.perMinute));
  }

  private secondsUntilToken(tokens: number): number {
    return tokens >= 1 ? 0 : Math.ceil(((1 - tokens) / this.perMinute) * 60);
  }
}

/** Several instances on one PostgreSQL database. */
export function pgCluster(storage: PgStorage, url: string, logger: Logger): Cluster {
  const hub = new PgEventHub(storage, url, logger);
  return {
    hub,
    async exclusive(job, fn) {
      // A session lock on a connection held for the job: released by the unlock, or by the server if this
      // instance dies, so a crashed instance never blocks the others.
      const key = JOB_LOCKS[job].toString();
      const c = await storage.pool.connect();
      let got: boolean;
      try {
        got = (await c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [key])).rows[0]?.ok === true;
      } catch (err) {
        c.release(err instanceof Error ? err : true);
        throw err;
      }
      if (!got) {
        c.release();
        return false;
      }
      try {
        await fn();
      } finally {
        try {
          await c.query('SELECT pg_advisory_unlock($1)', [key]);
          c.release();
        } catch (err) {
          // It may still hold the lock: destroy the connection (the server then releases it) rather than pool it.
          c.release(err instanceof Error ? err : true);
        }
      }
      return true;
    },
    rateLimit: (name, burst, perMinute) => new PgRateLimit(storage.pool, name, burst, perMinute),
    async prune(now) {
      // A bucket that has refilled completely holds nothing a fresh one would not.
      const res = await storage.pool.query('DELETE FROM rate_buckets WHERE tokens + GREATEST(0, $1 - at)::float8 / 60000 * per_minute >= burst', [now]);
      return res.rowCount ?? 0;
    },
    close: () => hub.close(),
  };
}
