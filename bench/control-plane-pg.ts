/**
 * Ingest on PostgreSQL against SQLite: the same closed loop of simulated agents (each its own mTLS keep-alive
 * connection, one report in flight, as the reporter sends) against `vigil-control-plane serve` child processes:
 * SQLite (one instance), PostgreSQL with one instance, PostgreSQL with two instances sharing the database (the
 * agents split between them, as behind a load balancer). PostgreSQL is a throwaway Debian PostgreSQL 15 with
 * its defaults (fsync and synchronous_commit on), on the same box.
 *
 * The body is a recorded `vigil check --json` report (test/fixtures/ui/report.debian12-container.json, a Debian 12
 * container), in the envelope the agent sends, gzipped; each request has its own report ID. Requests are made
 * before a phase starts, sized for more than the box can serve; the run stops with an error if they run out.
 *
 * Run: `npx tsx bench/control-plane-pg.ts` after `npm run build` (the servers run dist/). Environment:
 * VIGIL_BENCH_AGENTS (default 64), VIGIL_BENCH_PHASE_MS (default 8000), VIGIL_BENCH_WARMUP_MS (default 2000).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { PgStorage } from '../src/control-plane/pg-storage.js';
import { SqliteStorage } from '../src/control-plane/sqlite-storage.js';
import type { Storage } from '../src/control-plane/storage.js';
import { prepare } from '../test/helpers/control-plane.js';
import { call } from '../test/helpers/https.js';
import { createTestPki, type Issued } from '../test/helpers/pki.js';
import { freePort } from '../test/helpers.js';
import { CONTROL_PLANE_CLI } from '../test/harness/control-plane.js';
import { startPostgres } from '../test/harness/postgres.js';

const AGENTS = Number(process.env.VIGIL_BENCH_AGENTS ?? 64);
const PHASE_MS = Number(process.env.VIGIL_BENCH_PHASE_MS ?? 8000);
const WARMUP_MS = Number(process.env.VIGIL_BENCH_WARMUP_MS ?? 2000);
/** Requests made per phase: enough for this many reports/s, several times what a 2-core box serves. */
const POOL_RATE = 8000;

const fixture = JSON.parse(await readFile(new URL('../test/fixtures/ui/report.debian12-container.json', import.meta.url), 'utf8')) as Record<string, unknown>;

/** One agent's next `n` reports, seq 1 on, so that the server sees no sequence anomalies (it logs those). */
function bodies(n: number): Buffer[] {
  const report = JSON.stringify({ ...fixture, generatedAt: new Date().toISOString() });
  return Array.from({ length: n }, (_, seq) => gzipSync(`{"protocolVersion":1,"reportId":"${randomUUID()}","seq":${seq + 1},"dropped":0,"report":${report}}`));
}

interface Scenario {
  name: string;
  postgres: boolean;
  instances: number;
}

function pct(sorted: Float64Array, p: number): number {
  return sorted.length === 0 ? Number.NaN : (sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN);
}

function post(url: string, agent: Agent, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/v1/reports`, {
      method: 'POST',
      agent,
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': String(body.length) },
    });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => {
        resolve(res.statusCode ?? 0);
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function run(s: Scenario, databaseUrl: string | null): Promise<{ rate: number; p50: number; p99: number; errors: number }> {
  const pki = await createTestPki();
  const ports = await Promise.all(Array.from({ length: s.instances }, () => freePort()));
  const configs = await Promise.all(
    ports.map((port) => prepare({ listen: `127.0.0.1:${port}`, logLevel: 'warn', maxReportAgeSeconds: 3600, ...(databaseUrl ? { database: databaseUrl } : {}) }, pki)),
  );
  const first = configs[0];
  if (!first) throw new Error('no instance');
  const storage: Storage = databaseUrl ? await PgStorage.open(databaseUrl) : new SqliteStorage(first.config.dataDir);
  const devices: Issued[] = [];
  for (let i = 0; i < AGENTS; i++) {
    const id = `bench-${String(i).padStart(4, '0')}`;
    await storage.enrollDevice({ id, facts: fixture.device as Parameters<Storage['enrollDevice']>[0]['facts'], secretId: 'bench', now: Date.now() });
    devices.push(await pki.device(id));
  }
  await storage.close();
  const servers: ChildProcess[] = [];
  try {
    for (const p of configs) {
      const file = join(p.dir, 'serve.json');
      await writeFile(file, JSON.stringify(p.config));
      servers.push(spawn(process.execPath, [CONTROL_PLANE_CLI, 'serve', '--config', file], { stdio: ['ignore', 'ignore', 'inherit'] }));
    }
    const urls = ports.map((port) => `https://127.0.0.1:${port}`);
    for (const url of urls) {
      for (let t = 0; ; t++) {
        if (await call(pki.rootPem, `${url}/health`).then((r) => r.status === 200, () => false)) break;
        if (t > 150) throw new Error(`${url}: the control plane did not start`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    // Each agent's own requests; a closed loop keeps agents within a few percent of each other.
    const pools = devices.map(() => bodies(Math.ceil((POOL_RATE * (PHASE_MS + WARMUP_MS)) / 1000 / AGENTS)));
    const take = (i: number): Buffer => {
      const b = pools[i]?.shift();
      if (!b) throw new Error('request pool ran dry; raise POOL_RATE');
      return b;
    };
    const agents = devices.map((d) => new Agent({ keepAlive: true, maxSockets: 1, ca: pki.rootPem, cert: d.certPem, key: d.keyPem }));
    // Connections and the servers' first requests before timing: handshakes are not ingest.
    await Promise.all(agents.map((a, i) => post(urls[i % urls.length] ?? '', a, take(i))));
    const lat: number[] = [];
    let errors = 0;
    const start = performance.now();
    const end = start + WARMUP_MS + PHASE_MS;
    await Promise.all(
      agents.map(async (agent, i) => {
        const url = urls[i % urls.length] ?? '';
        while (performance.now() < end) {
          const t = performance.now();
          const status = await post(url, agent, take(i)).catch(() => 0);
          if (status !== 200) errors++;
          else if (t >= start + WARMUP_MS) lat.push(performance.now() - t);
        }
      }),
    );
    for (const a of agents) a.destroy();
    const sorted = Float64Array.from(lat).sort();
    return { rate: lat.length / (PHASE_MS / 1000), p50: pct(sorted, 50), p99: pct(sorted, 99), errors };
  } finally {
    await Promise.all(
      servers.map(async (c) => {
        const exited = new Promise((r) => c.once('exit', r));
        c.kill('SIGTERM');
        await exited;
      }),
    );
    // SQLite's runs write their reports there.
    for (const p of configs) await rm(p.dir, { recursive: true, force: true });
  }
}

const pg = await startPostgres();
try {
  const scenarios: Scenario[] = [
    { name: 'SQLite, 1 instance', postgres: false, instances: 1 },
    { name: 'PostgreSQL, 1 instance', postgres: true, instances: 1 },
    { name: 'PostgreSQL, 2 instances', postgres: true, instances: 2 },
  ];
  const sample = bodies(1)[0]?.length ?? 0;
  const before = loadavg().map((l) => l.toFixed(1)).join(' ');
  console.log(`\ningest, ${AGENTS} agents (closed loop, mTLS keep-alive), ${PHASE_MS / 1000} s after ${WARMUP_MS / 1000} s warm-up; ${availableParallelism()} cores shared by servers, PostgreSQL and this generator`);
  console.log(`body: a recorded vigil check --json report (Debian 12), ${sample} B gzip in its envelope`);
  console.log('backend                     reports/s   p50 ms   p99 ms   errors');
  for (const s of scenarios) {
    const r = await run(s, s.postgres ? await pg.createDatabase() : null);
    console.log(`${s.name.padEnd(26)} ${r.rate.toFixed(0).padStart(10)} ${r.p50.toFixed(1).padStart(8)} ${r.p99.toFixed(1).padStart(8)} ${String(r.errors).padStart(8)}`);
  }
  console.log(`load average before: ${before}, after: ${loadavg().map((l) => l.toFixed(1)).join(' ')} (other work on this box shows here)`);
} finally {
  await pg.cleanup();
}
