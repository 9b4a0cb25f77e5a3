import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import defaultPolicyJson from '../../src/policy/default-policy.json' with { type: 'json' };
import { policySchema } from '../../src/policy/schema.js';
import { copyToPostgres } from '../../src/control-plane/copy-to-postgres.js';
import { PgStorage } from '../../src/control-plane/pg-storage.js';
import { startControlPlane } from '../../src/control-plane/server.js';
import { SqliteStorage } from '../../src/control-plane/sqlite-storage.js';
import type { Storage } from '../../src/control-plane/storage.js';
import { silentLogger } from '../../src/logging/logger.js';
import type { AccessLevelEvent } from '../../src/protocol/admin.js';
import { prepare } from '../helpers/control-plane.js';
import { postReport } from '../helpers/https.js';
import { createTestPki, type TestPki } from '../helpers/pki.js';
import { sampleReport } from '../helpers/report.js';
import { CONTROL_PLANE_CLI } from '../harness/control-plane.js';
import { startPostgres, type PgServer } from '../harness/postgres.js';
import { cert, report } from './storage-contract.js';

const run = promisify(execFile);
const FACTS = sampleReport().device;
/** Every table the copy fills, which a failed copy must leave empty. */
const TABLES = ['devices', 'reports', 'secrets', 'reservations', 'api_tokens', 'policies', 'events', 'admins', 'sessions', 'audit', 'fleet_snapshots'];

let server: PgServer;
let pki: TestPki;
/** A SQLite data dir with a bit of everything, written through SqliteStorage and closed (the server is stopped). */
let dataDir: string;
const tmpDirs: string[] = [];

function event(device: string, current: 'full' | 'limited' | 'blocked', at: number): AccessLevelEvent {
  return { device, previous: null, current, compliant: current === 'full', state: 'active', cause: 'report', at: new Date(at).toISOString(), cert: null };
}

async function fill(s: Storage): Promise<void> {
  await s.createSecret({ id: 'sec-spent', hash: Buffer.from('hash-one'), label: 'laptops', createdAt: 100, expiresAt: 9e12, usesTotal: 3 });
  await s.createSecret({ id: 'sec-other', hash: Buffer.from('hash-two'), label: null, createdAt: 100, expiresAt: 9e12, usesTotal: 1 });
  await s.revokeSecret('sec-other');
  // One enrollment confirmed (a use spent), one still holding a use.
  expect(await s.reserveEnrollment({ deviceId: 'dev-e1', secretId: 'sec-spent', facts: FACTS, now: 200, expiresAt: 9e12, refuseSerial: null })).toBe('ok');
  expect(await s.confirmEnrollment('dev-e1', cert, 200, 201)).not.toBeNull();
  expect(await s.reserveEnrollment({ deviceId: 'dev-e2', secretId: 'sec-spent', facts: FACTS, now: 210, expiresAt: 9e12, refuseSerial: 'ff' })).toBe('ok');

  for (const id of ['dev-a1', 'dev-a2', 'dev-a3', 'dev-fresh']) await s.enrollDevice({ id, facts: FACTS, secretId: 'sec-spent', now: 300 });
  let at = 1000;
  const history: [string, number, string[], boolean][] = [
    ['dev-a1', 1, [], true],
    ['dev-a2', 1, ['firewall'], false],
    ['dev-a1', 2, ['firewall'], false],
    ['dev-a1', 3, [], true],
    ['dev-a3', 7, [], false],
    ['dev-a2', 2, [], true],
    ['dev-a1', 4, ['firewall', 'disk-encryption'], true],
  ];
  for (const [deviceId, seq, failing, gzip] of history) {
    at += 10;
    const r = report(seq, { deviceId, receivedAt: at, failingChecks: failing, accessLevel: failing.length > 0 ? 'limited' : 'full' }, sampleReport({ failing }), gzip);
    expect((await s.ingestReport(r)).inserted).toBe(true);
  }
  await s.setRecheck('dev-a2', { requestId: 'rq-1', requestedAt: 1050 });
  await s.revokeDevice('dev-a3', 1100, 'lost laptop');
  await s.allowReenroll('dev-a1');

  await s.createApiToken({ id: '0123456789abcdef', hash: Buffer.alloc(32, 7), scope: 'gateway', name: 'gw-1', createdAt: 400 });
  await s.createApiToken({ id: 'fedcba9876543210', hash: Buffer.alloc(32, 9), scope: 'admin', name: 'ops', createdAt: 401 });
  await s.revokeApiToken('fedcba9876543210', 500);
  await s.createAdmin({ name: 'alice', passwordHash: 'scrypt$alice', createdAt: 600 });
  await s.createAdmin({ name: 'bob', passwordHash: 'scrypt$bob', createdAt: 601 });
  await s.createSession({ idHash: Buffer.alloc(32, 1), admin: 'alice', csrf: 'csrf-1', createdAt: 700, ip: '10.0.0.1', userAgent: 'Firefox' });
  const policy = policySchema.parse(defaultPolicyJson);
  await s.setPolicy({ ...policy, version: 'copy-1' }, 800);
  await s.setPolicy({ ...policy, version: 'copy-2' }, 801);
  const ids = await s.announceMany(
    ['dev-a1', 'dev-a2', 'dev-a3', 'dev-a1'].map((id, i) => ({ id, level: 'full' as const, state: 'active' as const, attrs: `a${i}`, event: event(id, 'full', 900 + i) })),
  );
  expect(ids).toEqual([1, 2, 3, 4]);
  await s.appendAudit({ at: 1200, actor: 'admin:alice', action: 'device.revoke', target: 'dev-a3', ip: '10.0.0.1', detail: { reason: 'lost laptop' } });
  await s.appendAudit({ at: 1201, actor: 'cli:root', action: 'admin.add', target: 'bob', ip: null, detail: null });
  await s.putFleetSnapshot({ at: 3_600_000, full: 2, limited: 1, blocked: 1, stale: 0 });
}

/** What a backend answers to the calls the console, the API and the gateways make, for comparison. */
async function snapshot(s: Storage): Promise<unknown> {
  const staleBefore = 1065;
  const pages: unknown[] = [];
  for (const filter of [{}, { failingCheck: 'firewall' }, { state: 'stale' as const }, { level: 'blocked' as const }, { os: 'linux' }]) {
    let after: string | null = null;
    do {
      const page: { devices: unknown[]; next: string | null } = await s.listDevicesPage({ after, limit: 2, staleBefore, filter });
      pages.push(page);
      after = page.next;
    } while (after !== null);
  }
  const ids = ['dev-a1', 'dev-a2', 'dev-a3', 'dev-e1', 'dev-fresh'];
  const perDevice = [];
  for (const id of ids) {
    const history = [];
    let after: string | null = null;
    do {
      const page = await s.listReports(id, { after, limit: 2 });
      history.push(page);
      after = page.next;
    } while (after !== null);
    perDevice.push({ device: await s.getDevice(id), latest: await s.getLatestReport(id), history });
  }
  const results = (await s.latestResultsPage('', 100)).map((r) => ({ device: r.device, reportId: r.latest?.reportId, read: r.latest?.read() }));
  const counts = await s.fleetCountsPage(staleBefore, '', 100);
  const sortBy = <T>(xs: T[]): T[] => [...xs].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
  return {
    pages,
    perDevice,
    results,
    counts: { lastId: counts.lastId, groups: sortBy(counts.groups), failing: sortBy(counts.failing) },
    secrets: await s.listSecrets({ after: null, limit: 100 }),
    secret: await s.getSecret('sec-spent'),
    tokens: await s.listApiTokens({ after: null, limit: 100 }),
    token: await s.getApiToken('0123456789abcdef'),
    admins: await s.listAdmins(),
    session: await s.getSession(Buffer.alloc(32, 1)),
    events: await s.eventsSince(0, 100),
    eventBounds: await s.eventBounds(),
    audit: await s.listAudit(100, null),
    policy: await s.getPolicy(),
    snapshots: await s.listFleetSnapshots(0),
  };
}

async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'vigil-copy-'));
  tmpDirs.push(d);
  return d;
}

async function rowCounts(url: string): Promise<Record<string, number>> {
  const c = new pg.Client(url);
  await c.connect();
  try {
    const out: Record<string, number> = {};
    for (const t of TABLES) out[t] = Number((await c.query<{ n: string }>(`SELECT COUNT(*) AS n FROM ${t}`)).rows[0]?.n);
    out.counter = Number((await c.query<{ value: string }>("SELECT value FROM counters WHERE name = 'events'")).rows[0]?.value);
    return out;
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  [server, pki] = await Promise.all([startPostgres(), createTestPki()]);
  dataDir = await tmp();
  const s = new SqliteStorage(dataDir);
  await fill(s);
  await s.close();
});
afterAll(async () => {
  await server.cleanup();
  for (const d of tmpDirs) await rm(d, { recursive: true, force: true });
});

describe('db copy-to-postgres', () => {
  it('copies every table so that PostgreSQL answers as SQLite did, and a control plane on it continues the event ids', async () => {
    const url = await server.createDatabase();
    const progress: string[] = [];
    // Batches of 2, so every table with history spans several INSERTs.
    const summary = await copyToPostgres({ dataDir, database: url, batchSize: 2, onProgress: (t, done, total) => progress.push(`${t} ${done}/${total}`) });
    expect(progress).toContain('reports 2/7');
    expect(progress).toContain('reports 7/7');
    expect(progress).toContain('devices 5/5');
    expect(progress).toContain('fleet_snapshots 1/1');
    expect(progress).toContain('meta 0/0');
    expect(Object.fromEntries(summary.tables.map((t) => [t.table, t.rows]))).toEqual({
      devices: 5, reports: 7, secrets: 2, reservations: 1, api_tokens: 2, policies: 2, events: 4, admins: 2, sessions: 1, audit: 2,
      fleet_snapshots: 1, meta: 0,
    });
    expect(summary.lastEventId).toBe(4);

    const sqlite = new SqliteStorage(dataDir);
    const pgs = await PgStorage.open(url);
    try {
      const want = await snapshot(sqlite);
      expect(await snapshot(pgs)).toEqual(want);
      // ...and what they answer is the data written, not two empty databases agreeing.
      const failing = await pgs.listDevicesPage({ after: null, limit: 10, staleBefore: 0, filter: { failingCheck: 'disk-encryption' } });
      expect(failing.devices.map((d) => d.id)).toEqual(['dev-a1']);
      expect(await pgs.getDevice('dev-a1')).toMatchObject({ lastSeq: 4, accessLevel: 'limited', reenrollAllowed: true, cert });
      expect(await pgs.getDevice('dev-a2')).toMatchObject({ recheck: { requestId: 'rq-1', requestedAt: 1050 } });
      expect(await pgs.getDevice('dev-a3')).toMatchObject({ revokedAt: 1100, revokedReason: 'lost laptop' });
      expect((await pgs.getLatestReport('dev-a3'))?.seq).toBe(7);
      expect((await pgs.listReports('dev-a1', { after: null, limit: 10 })).items.map((r) => r.seq)).toEqual([4, 3, 2, 1]);
      expect((await pgs.getSecret('sec-other'))?.revoked).toBe(true);
      expect((await pgs.getApiToken('fedcba9876543210'))?.revokedAt).toBe(500);
      expect((await pgs.listAudit(10, null))[1]?.detail).toEqual({ reason: 'lost laptop' });
      expect((await pgs.eventsSince(0, 10)).map((e) => e.event.device)).toEqual(['dev-a1', 'dev-a2', 'dev-a3', 'dev-a1']);
      // The pending enrollment came along and still holds its use.
      expect((await pgs.confirmEnrollment('dev-e2', cert, 210, 220))?.id).toBe('dev-e2');
      expect((await pgs.getSecret('sec-spent'))?.usesLeft).toBe(1);
      // The identity sequences continue past the copied ids.
      expect(await pgs.appendAudit({ at: 1300, actor: 'cli:root', action: 'x', target: null, ip: null, detail: null })).toBe(3);
      await pgs.setPolicy({ ...policySchema.parse(defaultPolicyJson), version: 'after-copy' }, 1300);
      expect((await pgs.getPolicy())?.version).toBe('after-copy');
      await pgs.ingestReport(report(5, { deviceId: 'dev-a1', receivedAt: 2000 }));
      const history = await pgs.listReports('dev-a1', { after: null, limit: 1 });
      expect(history.items[0]?.seq).toBe(5);
      expect(Number(history.next)).toBeGreaterThan(7);
    } finally {
      await sqlite.close();
    }

    // A real control plane on the copy: a new report's event comes after the copied ones.
    const p = await prepare({ database: url }, pki);
    const cp = await startControlPlane(p.config, { logger: silentLogger(), ssePingMs: 1000, revokeAtCa: () => Promise.resolve('revoked') });
    try {
      expect(await postReport(pki.rootPem, cp.url, await pki.device('dev-fresh'), { seq: 1 })).toBe(200);
      const deadline = Date.now() + 10_000;
      let fresh: { id: number; event: AccessLevelEvent } | undefined;
      while (!fresh && Date.now() < deadline) {
        fresh = (await pgs.eventsSince(4, 100)).find((e) => e.event.device === 'dev-fresh');
        if (!fresh) await new Promise((r) => setTimeout(r, 50));
      }
      expect(fresh?.id).toBeGreaterThan(4);
      // No id reused and none skipped: the copied ones are still there, and new ones start at 5.
      expect((await pgs.eventsSince(0, 100)).map((e) => e.id).slice(0, 5)).toEqual([1, 2, 3, 4, 5]);
    } finally {
      await cp.close();
      await pgs.close();
    }
  });

  it('refuses a target that has rows, naming the table, and copies nothing', async () => {
    const url = await server.createDatabase();
    const s = await PgStorage.open(url);
    await s.createAdmin({ name: 'carol', passwordHash: 'x', createdAt: 1 });
    await s.close();
    await expect(copyToPostgres({ dataDir, database: url })).rejects.toThrow(/^--database postgres:\/\/.*: table admins already has rows; copy only into an empty database/);
    expect(await rowCounts(url)).toEqual({ ...Object.fromEntries(TABLES.map((t) => [t, 0])), admins: 1, counter: 0 });
  });

  it('refuses a data dir without a SQLite database, or one at another schema', async () => {
    const empty = await tmp();
    const url = await server.createDatabase();
    await expect(copyToPostgres({ dataDir: empty, database: url })).rejects.toThrow(`--data-dir ${empty}: no control-plane.sqlite there`);
    const old = await tmp();
    const db = new Database(join(old, 'control-plane.sqlite'));
    db.exec("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL); INSERT INTO meta VALUES ('schema', '5')");
    db.close();
    await expect(copyToPostgres({ dataDir: old, database: url })).rejects.toThrow(`--data-dir ${old}: control-plane.sqlite is at schema 5, expected 6`);
  });

  it('leaves PostgreSQL empty when the copy fails half-way', async () => {
    const url = await server.createDatabase();
    const s = await PgStorage.open(url);
    // audit comes after devices, reports, events...: those were inserted when its INSERT fails.
    await s.pool.query('ALTER TABLE audit DROP COLUMN detail');
    await s.close();
    const progress: string[] = [];
    await expect(copyToPostgres({ dataDir, database: url, onProgress: (t) => progress.push(t) })).rejects.toThrow(
      /^copying audit: column "detail" of relation "audit" does not exist \(nothing was copied/,
    );
    expect(progress).toContain('events');
    expect(await rowCounts(url)).toEqual({ ...Object.fromEntries(TABLES.map((t) => [t, 0])), counter: 0 });
  });

  it('runs from the CLI: progress on stderr and a summary; a second run refuses the filled target', async () => {
    const url = await server.createDatabase();
    const ok = await run(process.execPath, [CONTROL_PLANE_CLI, 'db', 'copy-to-postgres', '--data-dir', dataDir, '--database', url]);
    expect(ok.stderr).toContain('devices 5/5\n');
    expect(ok.stderr).toContain('reports 7/7\n');
    expect(ok.stdout).toMatch(/^copied 5 devices, 7 reports, 2 secrets, 1 reservations, 2 api_tokens, 2 policies, 4 events, 2 admins, 1 sessions, 2 audit, 1 fleet_snapshots in \d+\.\d s; events continue after id 4\n$/);
    // The URL from the environment, as for the other commands.
    const again = run(process.execPath, [CONTROL_PLANE_CLI, 'db', 'copy-to-postgres', '--data-dir', dataDir], { env: { ...process.env, VIGIL_DATABASE_URL: url } });
    const failed = await again.then(
      () => null,
      (err: unknown) => err as { code: number; stderr: string },
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toMatch(/^vigil-control-plane: --database postgres:\/\/\S+: table devices already has rows; copy only into an empty database \(nothing was copied\)\n$/);
  });
});
