/**
 * Control-plane ingest benchmark: N simulated agents, each on its own mTLS keep-alive connection, post
 * posture reports to a real `vigil-control-plane serve` child process on loopback.
 *
 *   closed loop: each agent sends its next report as soon as the previous is acknowledged (capacity)
 *   open loop:   agents together send at a fixed target rate (2000/s), the way a fleet arrives (latency)
 *
 * Prints reports/s, p50/p99 latency and the gzip size of a typical report. Bounded: a few seconds per
 * phase, 100 agents at most, loopback only. Run: `npx tsx bench/control-plane.ts` (or the built JS).
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { SqliteStorage } from '../src/control-plane/sqlite-storage.js';
import { prepare } from '../test/helpers/control-plane.js';
import { call } from '../test/helpers/https.js';
import type { Issued } from '../test/helpers/pki.js';
import { sampleReport } from '../test/helpers/report.js';
import { freePort } from '../test/helpers.js';

const AGENT_COUNTS = [1, 10, 50, 100];
const PHASE_MS = 4000;
const WARMUP_MS = 500;
const OPEN_LOOP_RATE = 2000;

interface Sim {
  id: string;
  tls: Issued;
  agent: Agent;
  seq: number;
}

const reportJson = JSON.stringify(sampleReport());

function body(sim: Sim): string {
  return `{"protocolVersion":1,"reportId":"${randomUUID()}","seq":${sim.seq++},"dropped":0,"report":${reportJson}}`;
}

/**
 * Gzipped bodies, as the agent's reporter sends them, made before the timed phases so the load generator
 * (sharing this box with the server) spends its CPU on TLS and HTTP, not on compressing. The sequence only
 * ever increases, so every device sees increasing seqs.
 */
const pool: Buffer[] = [];
let poolSeq = 0;
function fillPool(n: number): void {
  const sim: Sim = { id: 'pool', tls: { certPem: '', keyPem: '' }, agent: new Agent(), seq: 0 };
  for (let i = 0; i < n; i++) {
    sim.seq = poolSeq++;
    pool.push(gzipSync(body(sim)));
  }
}
function nextBody(): Buffer {
  if (pool.length === 0) fillPool(100);
  const b = pool.shift();
  if (!b) throw new Error('empty pool');
  return b;
}

function post(url: string, rootPem: string, sim: Sim): Promise<number> {
  const payload = nextBody();
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(`${url}/v1/reports`, {
      method: 'POST',
      agent: sim.agent,
      ca: rootPem,
      cert: sim.tls.certPem,
      key: sim.tls.keyPem,
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': String(payload.length) },
      timeout: 10_000,
    });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode === 200) resolve(performance.now() - t0);
        else reject(new Error(`HTTP ${res.statusCode ?? 0}`));
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(payload);
  });
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/** CPU time (ms) a process has used, from /proc (Linux; null elsewhere). Ticks are 10 ms on Linux. */
async function cpuMs(pid: number | undefined): Promise<number | null> {
  if (pid === undefined || process.platform !== 'linux') return null;
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return null;
  }
}

interface Result {
  serverCpuMsPerReport?: number | null;
  mode: string;
  agents: number;
  rate: number;
  p50: number;
  p99: number;
  errors: number;
}

async function closedLoop(url: string, rootPem: string, sims: Sim[]): Promise<Result> {
  const lat: number[] = [];
  let errors = 0;
  const start = performance.now();
  const end = start + WARMUP_MS + PHASE_MS;
  await Promise.all(
    sims.map(async (sim) => {
      while (performance.now() < end) {
        const t = performance.now();
        try {
          const ms = await post(url, rootPem, sim);
          if (t >= start + WARMUP_MS) lat.push(ms);
        } catch {
          errors++;
        }
      }
    }),
  );
  lat.sort((a, b) => a - b);
  return { mode: 'closed', agents: sims.length, rate: lat.length / (PHASE_MS / 1000), p50: pct(lat, 50), p99: pct(lat, 99), errors };
}

async function openLoop(url: string, rootPem: string, sims: Sim[], rate: number): Promise<Result> {
  const lat: number[] = [];
  let errors = 0;
  const inflight: Promise<void>[] = [];
  const start = performance.now();
  const total = Math.round((rate * (WARMUP_MS + PHASE_MS)) / 1000);
  // An agent with a request in flight waits (keep-alive, one socket each), like a real agent would.
  const busy = new Set<Sim>();
  let i = 0;
  let completedInWindow = 0;
  for (let n = 0; n < total; n++) {
    const due = start + (n * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const sim = sims[i++ % sims.length];
    if (!sim) continue;
    if (busy.has(sim)) {
      errors++; // counted as "could not keep up": the agent's previous report is still in flight
      continue;
    }
    busy.add(sim);
    const sentAt = performance.now();
    inflight.push(
      post(url, rootPem, sim)
        .then((ms) => {
          if (sentAt >= start + WARMUP_MS) {
            lat.push(ms);
            completedInWindow++;
          }
        })
        .catch(() => {
          errors++;
        })
        .finally(() => busy.delete(sim)),
    );
  }
  await Promise.all(inflight);
  const elapsed = (performance.now() - start - WARMUP_MS) / 1000;
  lat.sort((a, b) => a - b);
  return { mode: `open@${rate}/s`, agents: sims.length, rate: completedInWindow / elapsed, p50: pct(lat, 50), p99: pct(lat, 99), errors };
}


async function main(): Promise<void> {
  const loadBefore = loadavg().map((l) => l.toFixed(1)).join(' ');
  const port = await freePort();
  const p = await prepare({ listen: `127.0.0.1:${port}`, logLevel: 'warn', maxReportAgeSeconds: 3600 });
  const maxAgents = Math.max(...AGENT_COUNTS);
  const storage = new SqliteStorage(p.config.dataDir);
  const sims: Sim[] = [];
  for (let i = 0; i < maxAgents; i++) {
    const id = `bench-${String(i).padStart(4, '0')}`;
    await storage.enrollDevice({ id, facts: sampleReport().device, secretId: 'bench', now: Date.now() });
    sims.push({ id, tls: await p.pki.device(id), agent: new Agent({ keepAlive: true, maxSockets: 1 }), seq: 0 });
  }
  await storage.close();

  const cfg = join(p.dir, 'cp.json');
  await writeFile(cfg, JSON.stringify(p.config));
  const here = fileURLToPath(import.meta.url);
  const ts = here.endsWith('.ts');
  const cli = fileURLToPath(new URL(`../src/control-plane/cli.${ts ? 'ts' : 'js'}`, import.meta.url));
  // VIGIL_BENCH_CPU_PROF=<dir> writes a V8 CPU profile of the server, to see where ingest time goes.
  const prof = process.env.VIGIL_BENCH_CPU_PROF;
  const server = spawn(
    process.execPath,
    [...(prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : []), ...(ts ? ['--import', 'tsx'] : []), cli, 'serve', '--config', cfg],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const url = `https://127.0.0.1:${port}`;
  try {
    for (let t = 0; ; t++) {
      const ok = await call(p.pki.rootPem, `${url}/health`).then((r) => r.status === 200, () => false);
      if (ok) break;
      if (t > 100) throw new Error('control plane did not start');
      await new Promise((r) => setTimeout(r, 200));
    }
    fillPool(30_000);
    const results: Result[] = [];
    const measured = async (fn: () => Promise<Result>): Promise<void> => {
      const before = await cpuMs(server.pid);
      const r = await fn();
      const after = await cpuMs(server.pid);
      const served = (r.rate * (PHASE_MS + WARMUP_MS)) / 1000;
      r.serverCpuMsPerReport = before === null || after === null || served === 0 ? null : (after - before) / served;
      results.push(r);
    };
    for (const n of AGENT_COUNTS) await measured(() => closedLoop(url, p.pki.rootPem, sims.slice(0, n)));
    await measured(() => openLoop(url, p.pki.rootPem, sims.slice(0, maxAgents), OPEN_LOOP_RATE));

    const envelope = body({ id: 'x', tls: p.pki.server, agent: new Agent(), seq: 0 });
    console.log(`\nvigil-control-plane ingest, loopback mTLS keep-alive, ${PHASE_MS / 1000} s per phase, server in its own process`);
    console.log(`load average before: ${loadBefore}; this box has ${availableParallelism()} cores`);
    console.log('mode           agents  reports/s   p50 ms   p99 ms  err/skip  server CPU ms/report');
    for (const r of results) {
      console.log(
        `${r.mode.padEnd(14)} ${String(r.agents).padStart(6)} ${r.rate.toFixed(0).padStart(10)} ${r.p50.toFixed(1).padStart(8)} ${r.p99.toFixed(1).padStart(8)} ${String(r.errors).padStart(9)}  ${r.serverCpuMsPerReport == null ? '-' : r.serverCpuMsPerReport.toFixed(2).padStart(8)}`,
      );
    }
    console.log('err/skip: failed requests; in the open loop also sends skipped because that agent was still waiting (falling behind)');
    console.log(
      `\ntypical report (12 checks, synthetic Linux evidence): ${Buffer.byteLength(envelope)} B JSON envelope, ${gzipSync(envelope).length} B gzip (target < 2048 B)`,
    );
  } finally {
    const exited = new Promise((r) => server.once('exit', r));
    server.kill('SIGTERM');
    await exited;
    for (const s of sims) s.agent.destroy();
  }
}

await main();
