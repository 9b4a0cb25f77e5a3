/**
 * The control plane at fleet scale (issue #19): 100,000 devices inserted directly into storage, each with a
 * real report (the output of `vigil check --json --local` on this machine, as an agent's gzipped envelope),
 * and a sample of them with a deeper, older history. Then, with the server running in this process, measures:
 *
 *   the admin device list: first page, every page in turn (what an authorizer reads), filtered pages
 *   decision latency (GET /v1/decision/:id, which reads and evaluates the latest report)
 *   the stale sweep: every device announced once (the first sweep), nothing to do
 *   a policy change that moves every device to another level, and back (each re-evaluates the whole fleet)
 *   the stale sweep when all devices go stale at once
 *   the prune: with reports to delete (count and age), then with nothing to delete
 *   deleting a device with its history
 *
 * For each: wall time, request latencies, the worst event-loop stall (perf_hooks.monitorEventLoopDelay) and
 * the worst latency of a probe (GET /health every 5 ms on a keep-alive connection) running throughout. The
 * probe and the server share this process's event loop, so a stall of the server is a stall of the probe.
 *
 * Run: `npm run bench:scale -- [--backend sqlite|postgres] [--database URL] [--devices 100000]
 * [--history-devices 1000] [--history-depth 50] [--max-age-seconds 120]` (the built JS: it runs dist/src/cli/main.js for the report).
 * Takes a few minutes at 100,000 devices, most of it inserting; the database lives in a temporary directory
 * that is removed at the end.
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rm, stat } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance, PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import pg from 'pg';
import { silentLogger } from '../src/logging/logger.js';
import { startControlPlane } from '../src/control-plane/server.js';
import { openStorage, STORAGE_BACKENDS, type StorageBackend } from '../src/control-plane/storage-factory.js';
import type { Storage } from '../src/control-plane/storage.js';
import { postureReportSchema, type PostureReport } from '../src/protocol/report.js';
import { ADMIN_TOKEN, prepare } from '../test/helpers/control-plane.js';
import { startPostgres, type PgServer } from '../test/harness/postgres.js';

const { values: args } = parseArgs({
  options: {
    backend: { type: 'string', default: 'sqlite' },
    database: { type: 'string' },
    devices: { type: 'string', default: '100000' },
    'history-devices': { type: 'string', default: '1000' },
    'history-depth': { type: 'string', default: '50' },
    'max-age-seconds': { type: 'string' },
  },
});

function positive(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} ${v}: expected a positive integer`);
  return n;
}

if (!(STORAGE_BACKENDS as readonly string[]).includes(args.backend)) throw new Error(`--backend ${args.backend}: expected one of ${STORAGE_BACKENDS.join(', ')}`);
const BACKEND = args.backend as StorageBackend;
const DEVICES = positive('devices', args.devices);
const HISTORY_DEVICES = Math.min(DEVICES, positive('history-devices', args['history-devices']));
const HISTORY_DEPTH = positive('history-depth', args['history-depth']);
/**
 * Devices go stale this long after their report: short, so that the bench can wait for it, but longer than
 * the phases before the stale sweep take (inserting the latest reports, the lists, the first sweep), or the
 * fleet goes stale a little at a time during them. Those take longer on PostgreSQL.
 */
const MAX_AGE_S = positive('max-age-seconds', args['max-age-seconds'] ?? (BACKEND === 'postgres' ? '300' : '120'));
const RETENTION = { maxReports: 10, maxAgeDays: 30 };

const id = (i: number): string => `dev-${String(i).padStart(6, '0')}`;

/** A real report from this machine. */
function realReport(): PostureReport {
  const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
  const r = spawnSync(process.execPath, [cli, 'check', '--json', '--local'], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  if (r.stdout === '') throw new Error(`${cli} check --json --local printed nothing (exit ${r.status ?? 'signal'}): ${r.stderr.trim()}; build first (npm run build)`);
  return postureReportSchema.parse(JSON.parse(r.stdout));
}

// ---- measurement ----

const loop = monitorEventLoopDelay({ resolution: 5 });
loop.enable();
/**
 * The same stalls in CPU time. This box is shared, and a stall measured by the clock includes the time the
 * kernel ran someone else: a timer every millisecond notes the process's CPU time (all its threads, so GC
 * helpers and the checkpoint thread count too: an overestimate) between two turns of the event loop. The
 * worst such gap is what the longest stall would have been on a core of its own.
 */
const cpuStall = { max: 0, lastCpu: process.cpuUsage() };
const cpuTimer = setInterval(() => {
  const now = process.cpuUsage();
  const ms = (now.user - cpuStall.lastCpu.user + now.system - cpuStall.lastCpu.system) / 1000;
  cpuStall.lastCpu = now;
  cpuStall.max = Math.max(cpuStall.max, ms);
}, 1);
/** The longest garbage-collection pause of the phase: part of a stall, but not the code's own work. */
let gcMax = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcMax = Math.max(gcMax, e.duration);
}).observe({ entryTypes: ['gc'] });

interface Row {
  phase: string;
  wallMs: number;
  requests: number[];
  stallMs: number;
  /** 99th percentile of the event-loop delay samples (every 5 ms): how long a stall usually is. */
  stallP99Ms: number;
  probeMs: number;
  gcMs: number;
  cpuStallMs: number;
  note: string;
}
const rows: Row[] = [];

const probe = { max: 0, count: 0, running: true };

function pct(sorted: number[], p: number): number {
  return sorted.length === 0 ? 0 : (sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0);
}

async function phase(name: string, fn: (timed: <T>(req: () => Promise<T>) => Promise<T>) => Promise<string>): Promise<void> {
  const requests: number[] = [];
  const timed = async <T>(req: () => Promise<T>): Promise<T> => {
    const t = performance.now();
    const v = await req();
    requests.push(performance.now() - t);
    return v;
  };
  loop.reset();
  probe.max = 0;
  gcMax = 0;
  cpuStall.max = 0;
  cpuStall.lastCpu = process.cpuUsage();
  const t0 = performance.now();
  const note = await fn(timed);
  const wallMs = performance.now() - t0;
  rows.push({ phase: name, wallMs, requests, stallMs: loop.max / 1e6, stallP99Ms: loop.percentile(99) / 1e6, probeMs: probe.max, gcMs: gcMax, cpuStallMs: cpuStall.max, note });
  const sorted = [...requests].sort((a, b) => a - b);
  const req = requests.length === 0 ? '' : ` n=${requests.length} p50=${pct(sorted, 50).toFixed(1)} p99=${pct(sorted, 99).toFixed(1)} max=${(sorted.at(-1) ?? 0).toFixed(1)} ms`;
  process.stdout.write(
    `${name.padEnd(58)} ${wallMs.toFixed(0).padStart(7)} ms${req}  stall max=${(loop.max / 1e6).toFixed(1)} p99=${(loop.percentile(99) / 1e6).toFixed(1)} cpu=${cpuStall.max.toFixed(1)} ms probe=${probe.max.toFixed(1)} gc=${gcMax.toFixed(1)} ms load=${loadavg()[0]?.toFixed(1) ?? '?'}${note ? `  (${note})` : ''}\n`,
  );
}

async function main(): Promise<void> {
  const report = realReport();
  const failing = report.results.filter((r) => r.status === 'fail').map((r) => r.id);
  const envelope = (seq: number): Buffer => gzipSync(JSON.stringify({ protocolVersion: 1, reportId: randomUUID(), seq, dropped: 0, report }));
  // One body for every row: storage never looks inside it on insert, and compressing 150,000 of them would
  // make the bench slower, not more honest. Its size is a real report's.
  const body = envelope(1);
  process.stdout.write(
    `backend ${BACKEND}; ${availableParallelism()} CPUs, load ${loadavg().map((l) => l.toFixed(1)).join(' ')}; ${DEVICES} devices, ${HISTORY_DEVICES} of them with ${HISTORY_DEPTH} older reports; report ${Buffer.byteLength(JSON.stringify(report))} B, gzipped envelope ${body.length} B; ${failing.length} failing checks\n`,
  );

  // PostgreSQL without --database: a throwaway PostgreSQL 15 from Debian's packages, as the tests start it.
  let pgServer: PgServer | null = null;
  let database = args.database;
  if (BACKEND === 'postgres' && database === undefined) {
    pgServer = await startPostgres();
    database = await pgServer.createDatabase('bench');
    process.stdout.write(`throwaway PostgreSQL 15 on port ${pgServer.port}\n`);
  }
  const p = await prepare({ maxReportAgeSeconds: MAX_AGE_S, history: RETENTION, listen: '127.0.0.1:0' });
  const storage: Storage = await openStorage({ backend: BACKEND, dataDir: p.config.dataDir, ...(database === undefined ? {} : { database }), sqlite: { backgroundCheckpoints: true } });
  const cert = { serial: '0b', subject: 'CN=bench', issuer: 'CN=int', not_after: new Date(Date.now() + 86_400_000).toISOString(), fingerprint_sha256: 'ef' };
  const posture = { os: { platform: report.device.platform, id: report.device.os.id, name: report.device.os.name, version: report.device.os.version }, managed: false };
  const newReport = (i: number, seq: number, receivedAt: number) => ({
    reportId: randomUUID(),
    deviceId: id(i),
    seq,
    receivedAt,
    accessLevel: report.accessLevel,
    dropped: 0,
    cert,
    answersRecheck: null,
    generatedAt: report.generatedAt,
    posture,
    failingChecks: failing,
    body,
  });

  // ---- insert ----
  const CHUNK = 5000;
  const t = performance.now();
  for (let start = 0; start < DEVICES; start += CHUNK) {
    const n = Math.min(CHUNK, DEVICES - start);
    await Promise.all(Array.from({ length: n }, (_, k) => storage.enrollDevice({ id: id(start + k), facts: { ...report.device, hostname: `host-${start + k}` }, secretId: 'bench', now: 1 })));
  }
  const every = Math.max(1, Math.floor(DEVICES / HISTORY_DEVICES));
  const old = Date.now() - 40 * 86_400_000;
  for (let h = 0; h < HISTORY_DEVICES; h += 100) {
    const batch = [];
    for (let k = h; k < Math.min(HISTORY_DEVICES, h + 100); k++) for (let d = 0; d < HISTORY_DEPTH; d++) batch.push(storage.ingestReport(newReport(k * every, d + 1, old + d * 300_000)));
    await Promise.all(batch);
  }
  const seenAt = Date.now();
  for (let start = 0; start < DEVICES; start += CHUNK) {
    const n = Math.min(CHUNK, DEVICES - start);
    await Promise.all(Array.from({ length: n }, (_, k) => storage.ingestReport(newReport(start + k, HISTORY_DEPTH + 1, seenAt))));
  }
  const insertS = (performance.now() - t) / 1000;
  const fileSize = (f: string): Promise<number> => stat(join(p.config.dataDir, f)).then((s) => s.size, () => 0);
  const pgSize = async (url: string): Promise<number> => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      return Number((await c.query<{ n: string }>('SELECT pg_database_size(current_database()) AS n')).rows[0]?.n ?? 0);
    } finally {
      await c.end();
    }
  };
  const dbBytes =
    database !== undefined ? await pgSize(database) : (await fileSize('control-plane.sqlite')) + (await fileSize('control-plane.sqlite-wal'));
  process.stdout.write(
    `inserted in ${insertS.toFixed(1)} s; database ${(dbBytes / 1e6).toFixed(0)} MB (${(dbBytes / (DEVICES + HISTORY_DEVICES * HISTORY_DEPTH)).toFixed(0)} B per stored report)\n`,
  );

  // Closed and opened again, so that the measurements do not share the machine with checkpointing the
  // insert's write-ahead log.
  await storage.close();

  // ---- server ----
  // Opened by the server itself, as `vigil-control-plane serve` opens it: on PostgreSQL that brings the
  // cluster's event hub (LISTEN/NOTIFY) and advisory locks into what is measured.
  const cp = await startControlPlane(
    { ...p.config, ...(database === undefined ? {} : { database }) },
    { logger: silentLogger(), housekeeping: false, revokeAtCa: () => Promise.resolve('revoked') },
  );
  const agent = new Agent({ keepAlive: true, maxSockets: 4, ca: p.pki.rootPem });
  const get = (path: string, method = 'GET', body?: unknown): Promise<{ status: number; json: unknown; bytes: number }> =>
    new Promise((resolve, reject) => {
      const headers = { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) };
      const req = request(new URL(path, cp.url), { method, agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if ((res.statusCode ?? 0) >= 400) reject(new Error(`${method} ${path}: HTTP ${res.statusCode ?? 0} ${text}`));
          else resolve({ status: res.statusCode ?? 0, json: text === '' ? null : JSON.parse(text), bytes: text.length });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
  await get('/health');
  const probing = (async () => {
    while (probe.running) {
      const t0 = performance.now();
      await get('/health');
      probe.max = Math.max(probe.max, performance.now() - t0);
      probe.count++;
      await new Promise((r) => setTimeout(r, 5));
    }
  })();

  type List = { devices: { id: string }[]; next: string | null };
  const list = async (query: string): Promise<List & { bytes: number }> => {
    const r = await get(`/v1/admin/devices?${query}`);
    return { ...(r.json as List), bytes: r.bytes };
  };

  await phase('device list, first page of 100 (x20)', async (timed) => {
    for (let i = 0; i < 20; i++) await timed(() => list('limit=100'));
    return '';
  });
  await phase('device list, first page of 1000 (x10)', async (timed) => {
    let bytes = 0;
    for (let i = 0; i < 10; i++) bytes = (await timed(() => list('limit=1000'))).bytes;
    return `${(bytes / 1000).toFixed(0)} KB a page`;
  });
  await phase('device list, every page of 1000 in turn (authz resync)', async (timed) => {
    let cursor: string | null = null;
    let n = 0;
    do {
      const page: List = await timed(() => list(`limit=1000${cursor === null ? '' : `&cursor=${cursor}`}`));
      n += page.devices.length;
      cursor = page.next;
    } while (cursor !== null);
    return `${n} devices`;
  });
  const last = id(DEVICES - 1);
  await phase(`device list, q=${last} (one match, the last: scans all)`, async (timed) => {
    for (let i = 0; i < 5; i++) if ((await timed(() => list(`limit=100&q=${last}`))).devices.length !== 1) throw new Error('q filter');
    return '';
  });
  await phase('device list, state=stale (none yet: scans all)', async (timed) => {
    for (let i = 0; i < 5; i++) await timed(() => list('limit=100&state=stale'));
    return '';
  });
  await phase(`device list, failingCheck=${failing[0] ?? 'none'}&os=${report.device.os.id}, 1000`, async (timed) => {
    for (let i = 0; i < 5; i++) await timed(() => list(`limit=1000&failingCheck=${failing[0] ?? 'none'}&os=${report.device.os.id}`));
    return '';
  });
  await phase('GET /v1/decision/:id, random devices (x500)', async (timed) => {
    for (let i = 0; i < 500; i++) await timed(() => get(`/v1/decision/${id(Math.floor(Math.random() * DEVICES))}`));
    return '';
  });

  let announced = 0;
  await phase(`sweep: first, announces all ${DEVICES} (active)`, async () => {
    announced = await cp.service.sweep();
    return `${announced} announced`;
  });
  await phase('sweep: nothing to do', async () => {
    const n = await cp.service.sweep();
    if (n > 0) process.stdout.write(`WARNING: ${n} devices went stale before the stale phase; rerun with a larger --max-age-seconds\n`);
    return `${n} announced`;
  });
  // A policy change re-evaluates every device's latest report: relaxing the checks this report fails moves
  // the whole fleet to another level (an event each), and putting them back moves it again.
  type Doc = { version: string; checks: Record<string, string> };
  const inForce = (await get('/v1/policy')).json as Doc;
  const relaxed: Doc = { ...inForce, version: `${inForce.version}-bench-relaxed`, checks: { ...inForce.checks, ...Object.fromEntries(failing.map((c) => [c, 'info'])) } };
  await phase(`PUT /v1/admin/policy: relax the ${failing.length} failing checks (re-evaluates all)`, async (timed) => {
    await timed(() => get('/v1/admin/policy', 'PUT', relaxed));
    return '';
  });
  await phase('PUT /v1/admin/policy: put them back (re-evaluates all)', async (timed) => {
    await timed(() => get('/v1/admin/policy', 'PUT', { ...inForce, version: `${inForce.version}-bench-restored` }));
    return '';
  });

  const wait = seenAt + MAX_AGE_S * 1000 + 1000 - Date.now();
  if (wait > 0) {
    process.stdout.write(`(waiting ${(wait / 1000).toFixed(0)} s for the fleet to go stale)\n`);
    await new Promise((r) => setTimeout(r, wait));
  }
  await phase(`sweep: all ${DEVICES} go stale at once`, async () => `${await cp.service.sweep()} announced`);
  await phase('sweep: nothing to do (all stale)', async () => `${await cp.service.sweep()} announced`);
  await phase('GET /v1/decision/:id while stale (x200)', async (timed) => {
    for (let i = 0; i < 200; i++) await timed(() => get(`/v1/decision/${id(Math.floor(Math.random() * DEVICES))}`));
    return '';
  });
  await phase(`prune: keep ${RETENTION.maxReports}, ${RETENTION.maxAgeDays} days (deletes the sample)`, async () => `${await cp.service.prune()} reports deleted`);
  await phase('prune: nothing to delete', async () => `${await cp.service.prune()} reports deleted`);
  await phase('DELETE /v1/admin/devices/:id (x20)', async (timed) => {
    for (let i = 0; i < 20; i++) await timed(() => get(`/v1/admin/devices/${id(DEVICES - 1 - i)}`, 'DELETE'));
    return '';
  });

  probe.running = false;
  await probing;
  agent.destroy();
  await cp.close();
  clearInterval(cpuTimer);
  const worst = rows.reduce((m, r) => Math.max(m, r.stallMs), 0);
  const worstCpu = rows.reduce((m, r) => Math.max(m, r.cpuStallMs), 0);
  process.stdout.write(`worst event-loop stall ${worst.toFixed(1)} ms by the clock, ${worstCpu.toFixed(1)} ms of CPU; probe requests ${probe.count}; load ${loadavg().map((l) => l.toFixed(1)).join(' ')}\n`);
  await rm(p.dir, { recursive: true, force: true });
  await pgServer?.cleanup();
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
