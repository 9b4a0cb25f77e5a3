import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatZodError, serveConfigSchema } from '../../src/control-plane/config.js';
import { SqliteStorage } from '../../src/control-plane/sqlite-storage.js';
import type { NewReport } from '../../src/control-plane/storage.js';
import { accessLevelEventSchema, apiTokenListSchema, deviceListSchema, reportHistorySchema, secretListSchema } from '../../src/protocol/admin.js';
import { errorBodySchema } from '../../src/protocol/wire.js';
import { ADMIN_TOKEN, startHarness, type Harness } from '../helpers/control-plane.js';
import { call, openSse } from '../helpers/https.js';
import { sampleReport } from '../helpers/report.js';

/**
 * The admin API at fleet scale, over HTTPS against a running server: paged and filtered lists, refused query
 * parameters, retention, the sweep's batched announcements. Devices are written into the server's database
 * through a second connection (what `vigil-control-plane` commands do), which the server notices.
 */

const cert = { serial: '0c', subject: 'CN=x', issuer: 'CN=int', not_after: new Date(Date.now() + 86_400_000).toISOString(), fingerprint_sha256: 'aa' };

function report(deviceId: string, seq: number, receivedAt: number, over: Partial<NewReport> = {}): NewReport {
  const posture = sampleReport();
  return {
    reportId: randomUUID(),
    deviceId,
    seq,
    receivedAt,
    accessLevel: 'full',
    dropped: 0,
    cert,
    answersRecheck: null,
    generatedAt: posture.generatedAt,
    posture: { os: { platform: 'linux', id: 'ubuntu', name: 'Ubuntu', version: '24.04' }, managed: false },
    failingChecks: [],
    body: gzipSync(JSON.stringify({ protocolVersion: 1, reportId: randomUUID(), seq, dropped: 0, report: posture })),
    ...over,
  };
}

const id = (i: number): string => `dev-h${String(i).padStart(4, '0')}`;

describe('history config', () => {
  const base = { dataDir: '/d', caUrl: 'https://ca:9000', caRoot: 'r', provisioner: 'p', provisionerKey: 'k', adminTokenFile: 'a', tlsCert: 'c', tlsKey: 'k' };

  it('defaults to 1000 reports per device with no age or size limit', () => {
    expect(serveConfigSchema.parse(base).history).toEqual({ maxReports: 1000 });
    expect(serveConfigSchema.parse({ ...base, history: { maxAgeDays: 30 } }).history).toEqual({ maxReports: 1000, maxAgeDays: 30 });
  });

  it('refuses a bad value with one line naming the key', () => {
    for (const [history, key] of [
      [{ maxReports: 0 }, 'history.maxReports'],
      [{ maxAgeDays: 0 }, 'history.maxAgeDays'],
      [{ maxBytesPerDevice: 100 }, 'history.maxBytesPerDevice'],
      [{ maxAgeDays: 1.5 }, 'history.maxAgeDays'],
      [{ maxReport: 10 }, 'history'],
    ] as const) {
      const r = serveConfigSchema.safeParse({ ...base, history });
      expect(r.success).toBe(false);
      const message = r.success ? '' : formatZodError(r.error);
      expect(message.startsWith(`${key}:`), message).toBe(true);
      expect(message).not.toContain('\n');
    }
  });
});

describe('storage config', () => {
  const { dataDir: _sqlite, ...rest } = { dataDir: '/d', caUrl: 'https://ca:9000', caRoot: 'r', provisioner: 'p', provisionerKey: 'k', adminTokenFile: 'a', tlsCert: 'c', tlsKey: 'k' };

  it('needs dataDir for SQLite, and nothing on disk with a PostgreSQL database', () => {
    const none = serveConfigSchema.safeParse(rest);
    expect(none.success ? '' : formatZodError(none.error)).toBe('dataDir: required unless database is set: SQLite keeps the data there');
    expect(serveConfigSchema.parse({ ...rest, database: 'postgres://vigil@db.example.com/vigil' }).dataDir).toBeUndefined();
  });
});

describe('admin lists at scale', () => {
  let h: Harness;
  let db: SqliteStorage;
  const admin = (path: string, method = 'GET') => call(h.pki.rootPem, `${h.cp.url}${path}`, { token: ADMIN_TOKEN, method });

  beforeAll(async () => {
    h = await startHarness({ history: { maxReports: 3, maxAgeDays: 2, maxBytesPerDevice: 64 * 1024 } });
    db = new SqliteStorage(h.config.dataDir);
    // 250 devices; the odd ones reported, every 10th of those with a failing firewall.
    await Promise.all(Array.from({ length: 250 }, (_, i) => db.enrollDevice({ id: id(i), facts: { ...sampleReport().device, hostname: `Host-${i}` }, secretId: 's', now: 1 })));
    await Promise.all(
      Array.from({ length: 250 }, (_, i) => (i % 2 === 1 ? db.ingestReport(report(id(i), 1, Date.now(), { failingChecks: i % 10 === 1 ? ['firewall'] : [] })) : Promise.resolve(null))),
    );
  });
  afterAll(async () => {
    await db.close();
    await h.cp.close();
  });

  it('pages the device list with an opaque cursor until next is null', async () => {
    const ids: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const r = await admin(`/v1/admin/devices?limit=100${cursor === null ? '' : `&cursor=${cursor}`}`);
      expect(r.status).toBe(200);
      const page = deviceListSchema.parse(r.json);
      ids.push(...page.devices.map((d) => d.id));
      cursor = page.next;
      pages++;
    } while (cursor !== null);
    expect(pages).toBe(3);
    expect(ids).toEqual(Array.from({ length: 250 }, (_, i) => id(i)));
    // Without a limit: 100.
    expect(deviceListSchema.parse((await admin('/v1/admin/devices')).json).devices).toHaveLength(100);
  });

  it('filters by state, level, OS, failing check, last seen and id or hostname', async () => {
    const list = async (q: string): Promise<string[]> => {
      const r = await admin(`/v1/admin/devices?limit=1000&${q}`);
      expect(r.status, `${q}: ${r.text}`).toBe(200);
      return deviceListSchema.parse(r.json).devices.map((d) => d.id);
    };
    const odd = Array.from({ length: 125 }, (_, k) => id(2 * k + 1));
    const even = Array.from({ length: 125 }, (_, k) => id(2 * k));
    expect(await list('state=active')).toEqual(odd);
    expect(await list('state=enrolled')).toEqual(even);
    expect(await list('level=full')).toEqual(odd);
    expect(await list('level=blocked&state=enrolled')).toEqual(even);
    expect(await list('failingCheck=firewall')).toEqual(odd.filter((_, k) => k % 5 === 0));
    expect(await list('os=ubuntu&failingCheck=firewall&state=active')).toEqual(odd.filter((_, k) => k % 5 === 0));
    expect(await list('os=windows')).toEqual([]);
    expect(await list(`seenAfter=${new Date(Date.now() - 3_600_000).toISOString()}`)).toEqual(odd);
    expect(await list(`seenBefore=${new Date(Date.now() - 3_600_000).toISOString()}`)).toEqual([]);
    expect(await list('q=HOST-24')).toEqual([id(24), ...Array.from({ length: 10 }, (_, k) => id(240 + k))]);
    expect(await list('q=dev-h0007')).toEqual([id(7)]);
  });

  it('answers a bad query parameter with a one-line 400 that names it', async () => {
    for (const [q, field] of [
      ['limit=0', 'limit'],
      ['limit=1001', 'limit'],
      ['limit=ten', 'limit'],
      ['cursor=%21%21', 'cursor'],
      // "dev-h000" with padding: not the form the server writes.
      ['cursor=ZGV2LWgwMDA%3D', 'cursor'],
      ['state=asleep', 'state'],
      ['level=some', 'level'],
      ['os=Mac%20OS', 'os'],
      ['seenAfter=yesterday', 'seenAfter'],
      ['stat=active', 'stat'],
    ] as const) {
      const r = await admin(`/v1/admin/devices?${q}`);
      expect(r.status, q).toBe(400);
      const body = errorBodySchema.parse(r.json);
      expect(body.error).toBe('bad-request');
      expect(body.message, q).toContain(field);
      expect(body.message).not.toContain('\n');
    }
    expect((await admin('/v1/admin/devices/dev-h0001/reports?limit=5000')).status).toBe(400);
    expect((await admin('/v1/admin/secrets?cursor=bm9wZQ')).status).toBe(400);
  });

  it('pages a device’s reports, the secrets and the tokens', async () => {
    for (let seq = 2; seq <= 5; seq++) await db.ingestReport(report(id(3), seq, Date.now()));
    const seqs: number[] = [];
    let cursor: string | null = null;
    do {
      const r = await admin(`/v1/admin/devices/${id(3)}/reports?limit=2${cursor === null ? '' : `&cursor=${cursor}`}`);
      expect(r.status).toBe(200);
      const page = reportHistorySchema.parse(r.json);
      seqs.push(...page.reports.map((x) => x.seq));
      cursor = page.next;
    } while (cursor !== null);
    expect(seqs).toEqual([5, 4, 3, 2, 1]);

    for (let i = 0; i < 3; i++) {
      expect((await call(h.pki.rootPem, `${h.cp.url}/v1/admin/secrets`, { token: ADMIN_TOKEN, body: { uses: 1 } })).status).toBe(201);
      expect((await call(h.pki.rootPem, `${h.cp.url}/v1/admin/tokens`, { token: ADMIN_TOKEN, body: { scope: 'gateway', name: `gw-${i}` } })).status).toBe(201);
    }
    const first = secretListSchema.parse((await admin('/v1/admin/secrets?limit=2')).json);
    expect(first.secrets).toHaveLength(2);
    const rest = secretListSchema.parse((await admin(`/v1/admin/secrets?limit=2&cursor=${first.next ?? ''}`)).json);
    expect([...first.secrets, ...rest.secrets].map((s) => s.id).sort()).toHaveLength(3);
    expect(rest.next).toBeNull();
    const tokens = apiTokenListSchema.parse((await admin('/v1/admin/tokens?limit=2')).json);
    expect(tokens.tokens.map((t) => t.name)).toHaveLength(2);
    expect(tokens.next).not.toBeNull();
  });

  it('prunes history by the configured count, age and size, and deleting a device removes its history', async () => {
    const now = Date.now();
    // dev-h0005: 6 recent reports (over the count of 3); dev-h0009: 2 from three days ago and its latest now.
    for (let seq = 2; seq <= 6; seq++) await db.ingestReport(report(id(5), seq, now - 1000 + seq));
    await db.ingestReport(report(id(9), 2, now - 3 * 86_400_000));
    await db.ingestReport(report(id(9), 3, now - 3 * 86_400_000 + 1));
    await db.ingestReport(report(id(9), 4, now));
    // dev-h0011: two 40 KB reports after its small first one; 64 KB per device holds the newest only.
    const big = (seq: number) => report(id(11), seq, now - 100 + seq, { body: Buffer.alloc(40 * 1024, seq) });
    for (let seq = 2; seq <= 3; seq++) await db.ingestReport(big(seq));
    const history = async (d: string) => reportHistorySchema.parse((await admin(`/v1/admin/devices/${d}/reports?limit=100`)).json).reports.map((r) => r.seq);
    expect(await history(id(11))).toEqual([3, 2, 1]);
    const removed = await h.cp.service.prune();
    expect(await history(id(5))).toEqual([6, 5, 4]);
    expect(await history(id(9))).toEqual([4, 1]);
    // Counted from the newest: 40 KB fits, 80 KB does not, so the older two go.
    expect(await history(id(11))).toEqual([3]);
    // ...and dev-h0003's 5 reports (from the test before) are cut to 3.
    expect(await history(id(3))).toEqual([5, 4, 3]);
    expect(removed).toBe(3 + 2 + 2 + 2);

    expect((await admin(`/v1/admin/devices/${id(5)}`, 'DELETE')).status).toBe(200);
    expect((await admin(`/v1/admin/devices/${id(5)}/reports`)).status).toBe(404);
    expect((await db.listReports(id(5), { after: null, limit: 10 })).items).toEqual([]);
  });
});

describe('stale sweep at scale', () => {
  let h: Harness;
  let db: SqliteStorage;

  beforeAll(async () => {
    h = await startHarness({ maxReportAgeSeconds: 2 });
    db = new SqliteStorage(h.config.dataDir);
  });
  afterAll(async () => {
    await db.close();
    await h.cp.close();
  });

  it('announces each of 600 devices once per state, and once when they all go stale at once', async () => {
    const events = openSse(h.pki.rootPem, `${h.cp.url}/v1/events`, { token: ADMIN_TOKEN });
    expect(await events.ready).toBe(200);
    const ids = Array.from({ length: 600 }, (_, i) => `dev-sw${String(i).padStart(4, '0')}`);
    await Promise.all(ids.map((d) => db.enrollDevice({ id: d, facts: sampleReport().device, secretId: 's', now: 1 })));
    await Promise.all(ids.map((d) => db.ingestReport(report(d, 1, Date.now()))));
    // The periodic sweep (every 500 ms here) finds them active, then stale after 2 s of silence.
    const countOf = (state: string): Map<string, number> => {
      const m = new Map<string, number>();
      for (const e of events.events) {
        if (e.event !== 'access-level') continue;
        const ev = accessLevelEventSchema.parse(e.data);
        if (ev.state === state) m.set(ev.device, (m.get(ev.device) ?? 0) + 1);
      }
      return m;
    };
    await expect.poll(() => countOf('stale').size, { timeout: 15_000, interval: 200 }).toBe(600);
    // A few sweeps more: nothing new.
    await new Promise((r) => setTimeout(r, 1500));
    // On a busy machine a device may go stale before a sweep saw it active (or enrolled): then it has no
    // event for that state, but never two for one.
    for (const state of ['enrolled', 'active', 'stale']) {
      const counts = countOf(state);
      if (state === 'stale') expect(counts.size).toBe(600);
      expect([...counts.values()].every((n) => n === 1), state).toBe(true);
    }
    const stale = accessLevelEventSchema.parse(events.events.findLast((e) => e.event === 'access-level')?.data);
    expect(stale).toMatchObject({ state: 'stale', current: 'blocked', previous: 'full', cause: 'stale' });
  }, 30_000);
});
