import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import defaultPolicyJson from '../../src/policy/default-policy.json' with { type: 'json' };
import { authzConfigSchema } from '../../src/authz/config.js';
import { startAuthz } from '../../src/authz/server.js';
import { addAdmin } from '../../src/control-plane/accounts.js';
import { pgCluster } from '../../src/control-plane/pg-cluster.js';
import { PgStorage } from '../../src/control-plane/pg-storage.js';
import type { ServeConfig } from '../../src/control-plane/config.js';
import { startControlPlane, type RunningControlPlane } from '../../src/control-plane/server.js';
import { silentLogger } from '../../src/logging/logger.js';
import { accessLevelEventSchema } from '../../src/protocol/admin.js';
import { directivesSchema, errorBodySchema } from '../../src/protocol/wire.js';
import { ADMIN_TOKEN, prepare } from '../helpers/control-plane.js';
import { call, openSse, postReport } from '../helpers/https.js';
import { createTestPki, type Issued, type TestPki } from '../helpers/pki.js';
import { sampleReport } from '../helpers/report.js';
import { freePort } from '../helpers.js';
import { CONTROL_PLANE_CLI } from '../harness/control-plane.js';
import { startPostgres, type PgServer } from '../harness/postgres.js';
import { report } from './storage-contract.js';

const FACTS = sampleReport().device;

let server: PgServer;
let pki: TestPki;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  [server, pki] = await Promise.all([startPostgres(), createTestPki()]);
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) {
    try {
      await c();
    } catch {
      // Already gone.
    }
  }
});
afterAll(async () => {
  await server.cleanup();
});

/** One control-plane instance in this process on the shared database. */
async function instance(url: string, overrides: Partial<ServeConfig> = {}): Promise<RunningControlPlane> {
  const p = await prepare({ ...overrides, database: url }, pki);
  const cp = await startControlPlane(p.config, { logger: silentLogger(), ssePingMs: 1000, revokeAtCa: () => Promise.resolve('revoked') });
  cleanups.push(() => cp.close());
  return cp;
}

async function db(url: string): Promise<PgStorage> {
  const s = await PgStorage.open(url);
  cleanups.push(() => s.close());
  return s;
}

async function enrolled(url: string, id: string): Promise<Issued> {
  const s = await PgStorage.open(url);
  await s.enrollDevice({ id, facts: FACTS, secretId: 'test', now: Date.now() });
  await s.close();
  return pki.device(id);
}

const admin = (base: string, path: string, body?: unknown, method?: string) =>
  call(pki.rootPem, `${base}${path}`, { token: ADMIN_TOKEN, ...(body === undefined ? {} : { body }), ...(method ? { method } : {}) });

/** A report from `dev`, as the agent sends it; status 0: no answer (connection lost). */
const post = (base: string, dev: Issued, reportId: string, seq: number, failing: string[] = []): Promise<number> =>
  postReport(pki.rootPem, base, dev, { reportId, seq, failing });

/** Agents posting reports to the given servers in turn until stopped; returns every report acknowledged with a 2xx. */
function load(targets: () => string[], devs: Issued[]) {
  const acked: string[] = [];
  const failed = { count: 0 };
  let stopped = false;
  const loops = devs.map(async (dev, i) => {
    for (let seq = 1; !stopped; seq++) {
      const bases = targets();
      const base = bases[(seq + i) % bases.length] ?? '';
      const id = randomUUID();
      const status = await post(base, dev, id, seq);
      if (status >= 200 && status < 300) acked.push(id);
      else {
        failed.count++;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  });
  return {
    acked,
    failed,
    async stop() {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

async function storedReportIds(url: string): Promise<Set<string>> {
  const c = new pg.Client(url);
  await c.connect();
  try {
    return new Set((await c.query<{ report_id: string }>('SELECT report_id FROM reports')).rows.map((r) => r.report_id));
  } finally {
    await c.end();
  }
}

async function until(cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('several control-plane instances on one PostgreSQL database', () => {
  it('raises an event ingested at A on a stream client of B, and carries re-check requests and policy changes to B', async () => {
    const url = await server.createDatabase();
    const [a, b] = [await instance(url), await instance(url)];
    const dev = await enrolled(url, 'dev-c1');
    const events = openSse(pki.rootPem, `${b.url}/v1/events`, { token: ADMIN_TOKEN });
    cleanups.push(() => { events.close(); });
    expect(await events.ready).toBe(200);
    expect(await post(a.url, dev, randomUUID(), 1, ['firewall'])).toBe(200);
    const first = await events.next((e) => e.event === 'access-level' && accessLevelEventSchema.parse(e.data).device === 'dev-c1');
    expect(await post(a.url, dev, randomUUID(), 2)).toBe(200);
    const second = await events.next((e) => e.event === 'access-level' && Number(e.id) > Number(first.id));
    expect(accessLevelEventSchema.parse(second.data).device).toBe('dev-c1');

    // The device's directives stream is on B; the admin asks A.
    const stream = openSse(pki.rootPem, `${b.url}/v1/directives/stream`, { tls: dev });
    cleanups.push(() => { stream.close(); });
    await stream.next((e) => e.event === 'directives');
    const rq = await admin(a.url, '/v1/admin/devices/dev-c1/recheck', {});
    expect(rq.status).toBe(202);
    const requestId = (rq.json as { requestId: string }).requestId;
    await stream.next((e) => directivesSchema.parse(e.data).recheck?.requestId === requestId);

    // A new policy set at A is served by B and pushed to the device on B.
    const put = await admin(a.url, '/v1/admin/policy', { ...defaultPolicyJson, version: 'cluster-2' }, 'PUT');
    expect(put.status).toBe(200);
    await stream.next((e) => directivesSchema.parse(e.data).policyVersion === 'cluster-2');
    const policy = await call(pki.rootPem, `${b.url}/v1/policy`, { token: ADMIN_TOKEN });
    expect((policy.json as { version: string }).version).toBe('cluster-2');

    // Revoked at A: B closes the device's stream.
    expect((await admin(a.url, '/v1/admin/devices/dev-c1/revoke', {})).status).toBe(200);
    await until(() => stream.closed);
  });

  it('vigil-authz following instance B refuses a device within moments of a failing report taken by instance A', async () => {
    const url = await server.createDatabase();
    const [a, b] = [await instance(url), await instance(url)];
    const token = ((await admin(a.url, '/v1/admin/tokens', { scope: 'gateway', name: 'authz-on-b' })).json as { token: string }).token;
    const dev = await enrolled(url, 'dev-z1');
    expect(await post(a.url, dev, randomUUID(), 1)).toBe(200);
    const config = authzConfigSchema.parse({ listen: '127.0.0.1:0', controlPlaneUrl: b.url, caRoot: 'unused-in-process', tokenFile: 'unused-in-process', maxLagSeconds: 5 });
    const authz = await startAuthz({ config, caRootPem: pki.rootPem, token, logger: silentLogger(), minRetryMs: 50, maxRetryMs: 200 });
    cleanups.push(() => authz.close());
    const leaf = dev.certPem.slice(0, dev.certPem.indexOf('-----END CERTIFICATE-----') + 25) + '\n';
    const ask = async (): Promise<number> => (await fetch(`${authz.url}/v1/authz`, { headers: { 'x-client-cert': encodeURIComponent(leaf) } })).status;
    await until(async () => (await ask()) === 200, 10_000);

    expect(await post(a.url, dev, randomUUID(), 2, ['disk-encryption'])).toBe(200);
    const t0 = Date.now();
    await until(async () => (await ask()) === 403, 5000);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(await post(a.url, dev, randomUUID(), 3)).toBe(200);
    await until(async () => (await ask()) === 200, 5000);
  });

  it('never lets enrollments spread over both instances spend more uses of a secret than it has, and shares the enrollment limits', async () => {
    const url = await server.createDatabase();
    const [a, b] = [await instance(url, { enrollPerDevicePerMinute: 2 }), await instance(url, { enrollPerDevicePerMinute: 2 })];
    const created = await admin(a.url, '/v1/admin/secrets', { uses: 5 });
    const secret = (created.json as { secret: string }).secret;
    const enroll = (base: string, deviceId: string, enrollmentSecret = secret) =>
      call(pki.rootPem, `${base}/v1/enroll`, { body: { protocolVersion: 1, enrollmentSecret, deviceId, facts: FACTS } });
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => enroll(i % 2 === 0 ? a.url : b.url, `dev-e${i}`)));
    expect(results.filter((r) => r.status === 200)).toHaveLength(5);
    expect(new Set(results.filter((r) => r.status !== 200).map((r) => `${r.status} ${errorBodySchema.parse(r.json).error}`))).toEqual(
      new Set(['401 enrollment-secret-used-up']),
    );
    // Two enrollments per device per minute, counted across instances.
    const more = (await admin(a.url, '/v1/admin/secrets', { uses: 10 })).json as { secret: string };
    expect((await enroll(a.url, 'dev-rl', more.secret)).status).toBe(200);
    expect((await enroll(b.url, 'dev-rl', more.secret)).status).toBe(200);
    const third = await enroll(a.url, 'dev-rl', more.secret);
    expect([third.status, errorBodySchema.parse(third.json).error]).toEqual([429, 'rate-limited']);
  });

  it('counts wrong admin tokens and failed console sign-ins across instances, so spreading guesses over them gains nothing', async () => {
    const url = await server.createDatabase();
    const limits: Partial<ServeConfig> = {
      adminAuthFailuresPerMinute: 3,
      console: { idleTimeoutMinutes: 30, absoluteLifetimeHours: 12, signinFailuresPerMinutePerName: 3, signinFailuresPerMinutePerIp: 100 },
    };
    const [a, b] = [await instance(url, limits), await instance(url, limits)];
    const s = await db(url);
    await addAdmin(s, 'alice', 'correct horse battery staple', Date.now());
    const bases = [a.url, b.url];

    const wrongToken = (i: number) => call(pki.rootPem, `${bases[i % 2] ?? ''}/v1/admin/devices`, { token: `wrong-token-${String(i).padStart(20, '0')}` });
    const tokenAnswers = [];
    for (let i = 0; i < 4; i++) tokenAnswers.push((await wrongToken(i)).status);
    expect(tokenAnswers).toEqual([401, 401, 401, 429]);
    // The address is refused on both instances now, even with the right token.
    expect((await admin(b.url, '/v1/admin/devices')).status).toBe(429);

    const signIn = (i: number, password: string) => call(pki.rootPem, `${bases[i % 2] ?? ''}/console/api/session`, { body: { name: 'alice', password } });
    const signInAnswers = [];
    for (let i = 0; i < 4; i++) signInAnswers.push((await signIn(i, `not the password ${i}`)).status);
    expect(signInAnswers).toEqual([401, 401, 401, 429]);
    expect((await signIn(1, 'correct horse battery staple')).status).toBe(429);
  });

  it('runs the stale sweep on one instance at a time: each device goes stale once, with one event', async () => {
    const url = await server.createDatabase();
    const s = await db(url);
    const ids = Array.from({ length: 30 }, (_, i) => `dev-s${i}`);
    for (const id of ids) {
      await s.enrollDevice({ id, facts: FACTS, secretId: 'test', now: Date.now() });
      await s.ingestReport(report(1, { deviceId: id, receivedAt: Date.now() }));
    }
    // The advisory lock itself: while one holds the job, another cluster member skips it.
    const [c1, c2] = [pgCluster(s, url, silentLogger()), pgCluster(s, url, silentLogger())];
    let inner: boolean | null = null;
    expect(await c1.exclusive('sweep', async () => void (inner = await c2.exclusive('sweep', () => Promise.resolve())))).toBe(true);
    expect(inner).toBe(false);
    expect(await c2.exclusive('sweep', () => Promise.resolve())).toBe(true);
    // Two instances sweeping every 250 ms; the devices report once, then never again: announced active, then stale once.
    await Promise.all([instance(url, { maxReportAgeSeconds: 1 }), instance(url, { maxReportAgeSeconds: 1 })]);
    const staleCount = async () => (await s.eventsSince(0, 10_000)).filter((e) => e.event.state === 'stale').length;
    await until(async () => (await staleCount()) >= ids.length, 15_000);
    await new Promise((r) => setTimeout(r, 1000));
    const events = await s.eventsSince(0, 10_000);
    for (const id of ids) {
      expect(events.filter((e) => e.event.device === id && e.event.state === 'stale')).toHaveLength(1);
    }
  });

  it('loses no acknowledged report when instance A is killed (SIGKILL) in the middle of a burst', async () => {
    expect(existsSync(CONTROL_PLANE_CLI), `${CONTROL_PLANE_CLI}: run npm run build first`).toBe(true);
    const url = await server.createDatabase();
    const b = await instance(url);
    const p = await prepare({ database: url, listen: `127.0.0.1:${await freePort()}` }, pki);
    const configFile = join(p.dir, 'serve.json');
    // No dataDir: on PostgreSQL the server keeps nothing on its own disk.
    const { dataDir: _unused, ...onPostgres } = p.config;
    await writeFile(configFile, JSON.stringify(onPostgres));
    const child: ChildProcess = spawn(process.execPath, [CONTROL_PLANE_CLI, 'serve', '--config', configFile], { stdio: 'ignore' });
    cleanups.push(() => Promise.resolve(child.kill('SIGKILL')));
    const aUrl = `https://${p.config.listen}`;
    await until(async () => (await call(pki.rootPem, `${aUrl}/health`).catch(() => ({ status: 0 }))).status === 200, 20_000);
    const devs = await Promise.all(Array.from({ length: 8 }, (_, i) => enrolled(url, `dev-k${i}`)));
    let targets = [aUrl, b.url];
    const l = load(() => targets, devs);
    await until(() => l.acked.length >= 150, 30_000);
    child.kill('SIGKILL');
    // Agents still sent to A fail (in flight, or refused) before they move to B: the kill hit the burst.
    await until(() => l.failed.count > 0, 10_000);
    targets = [b.url];
    const ackedAtKill = l.acked.length;
    await until(() => l.acked.length >= ackedAtKill + 50, 30_000);
    await l.stop();
    const stored = await storedReportIds(url);
    expect(l.acked.filter((id) => !stored.has(id))).toEqual([]);
    expect(l.failed.count).toBeGreaterThan(0);
  }, 90_000);

  it('survives PostgreSQL crashing under load: instances reconnect, no acknowledged report is lost, the event stream resumes', async () => {
    const url = await server.createDatabase();
    const [a, b] = [await instance(url), await instance(url)];
    const devs = await Promise.all(Array.from({ length: 6 }, (_, i) => enrolled(url, `dev-r${i}`)));
    const watched = await enrolled(url, 'dev-watched');
    const events = openSse(pki.rootPem, `${b.url}/v1/events`, { token: ADMIN_TOKEN });
    cleanups.push(() => { events.close(); });
    expect(await events.ready).toBe(200);
    const l = load(() => [a.url, b.url], devs);
    await until(() => l.acked.length >= 100, 30_000);
    // A crash, not a clean shutdown: the postmaster dies at once and its backends follow.
    await server.kill();
    await new Promise((r) => setTimeout(r, 500));
    await server.start();
    const ackedAtRestart = l.acked.length;
    await until(() => l.acked.length >= ackedAtRestart + 100, 30_000);
    await l.stop();
    const stored = await storedReportIds(url);
    expect(l.acked.filter((id) => !stored.has(id))).toEqual([]);
    expect(l.failed.count).toBeGreaterThan(0);
    // Events raised at A after the restart still reach B's stream client.
    const seen = events.events.length;
    expect(await post(a.url, watched, randomUUID(), 1, ['firewall'])).toBe(200);
    await events.next((e) => e.event === 'access-level' && accessLevelEventSchema.parse(e.data).device === 'dev-watched', 15_000);
    expect(events.events.length).toBeGreaterThan(seen);
    expect(events.closed).toBe(false);
  }, 90_000);
});

describe('report acknowledgements on PostgreSQL', () => {
  it('answers 5xx, never 2xx, while the database is unreachable, and /ready tells the load balancer', async () => {
    const url = await server.createDatabase();
    const a = await instance(url);
    const ready = () => call(pki.rootPem, `${a.url}/ready`);
    expect(await ready()).toMatchObject({ status: 200, json: { status: 'ready' } });
    const dev = await enrolled(url, 'dev-down');
    expect(await post(a.url, dev, randomUUID(), 1)).toBe(200);
    await server.stop();
    try {
      const id = randomUUID();
      const status = await post(a.url, dev, id, 2);
      expect(status).toBeGreaterThanOrEqual(500);
      const down = await ready();
      expect([down.status, errorBodySchema.parse(down.json).error]).toEqual([503, 'not-ready']);
      // Liveness is another question: the process runs.
      expect((await call(pki.rootPem, `${a.url}/health`)).status).toBe(200);
    } finally {
      await server.start();
    }
    const id = randomUUID();
    expect(await post(a.url, dev, id, 3)).toBe(200);
    expect((await storedReportIds(url)).has(id)).toBe(true);
    // Ready again once the LISTEN connection is back too.
    await until(async () => (await ready()).status === 200, 15_000);
  });
});
