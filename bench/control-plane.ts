/**
 * Control-plane ingest benchmark: N simulated agents, each on its own mTLS keep-alive connection, post
 * posture reports to a real `vigil-control-plane serve` child process on loopback.
 *
 *   closed loop: each agent sends its next report as soon as the previous is acknowledged (capacity)
 *   open loop:   agents together send at a fixed target rate (2000/s), the way a fleet arrives (latency)
 *
 * Prints reports/s, p50/p99 latency, the server's CPU per report (from /proc, the server being a child
 * process; all threads, and its event loop alone), the load generator's own CPU per report (it shares the
 * box) and the gzip size of a typical report. Phases of 20 s or more also print each 5 s window's rate, p99
 * and steal %, so that a bad stretch shows as one. Bounded: a few seconds per phase, loopback only.
 * Run: `npx tsx bench/control-plane.ts` (or the built JS). Environment: VIGIL_BENCH_AGENTS (comma list,
 * default 1,10,50,100,200; empty for none), VIGIL_BENCH_PHASE_MS (default 4000), VIGIL_BENCH_WARMUP_MS
 * (default a tenth of the phase, from 0.5 to 5 s), VIGIL_BENCH_OPEN_RATE (default 2000, 0 skips the open
 * loop), VIGIL_BENCH_OPEN_AGENTS (default 200), VIGIL_BENCH_CPU_PROF=<dir> (V8 CPU profile of the server).
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { SqliteStorage } from '../src/control-plane/sqlite-storage.js';
import { prepare } from '../test/helpers/control-plane.js';
import { call } from '../test/helpers/https.js';
import type { Issued } from '../test/helpers/pki.js';
import { sampleReport } from '../test/helpers/report.js';
import { freePort } from '../test/helpers.js';

const AGENT_COUNTS = (process.env.VIGIL_BENCH_AGENTS ?? '1,10,50,100,200').split(',').filter((n) => n !== '').map(Number);
/** Agents sharing the open-loop rate; each sends every OPEN_LOOP_AGENTS / rate seconds. */
const OPEN_LOOP_AGENTS = Number(process.env.VIGIL_BENCH_OPEN_AGENTS ?? Math.max(200, ...AGENT_COUNTS));
const PHASE_MS = Number(process.env.VIGIL_BENCH_PHASE_MS ?? 4000);
/**
 * Untimed, at the phase's full load. A step from idle to 2,000 reports/s leaves the server a second or two
 * of slow flushes and frequent scavenges (first-window p99 130-150 ms at 0% steal, the rest of the phase
 * 17-63 ms); a long phase measures the rate it can sustain, so it warms up for longer.
 */
const WARMUP_MS = Number(process.env.VIGIL_BENCH_WARMUP_MS ?? Math.min(5000, Math.max(500, PHASE_MS / 10)));
const OPEN_LOOP_RATE = Number(process.env.VIGIL_BENCH_OPEN_RATE ?? 2000);

const reportJson = JSON.stringify(sampleReport());

function envelope(seq: number): string {
  return `{"protocolVersion":1,"reportId":"${randomUUID()}","seq":${seq},"dropped":0,"report":${reportJson}}`;
}

/**
 * Complete HTTP/1.1 requests, byte for byte what the agent's reporter sends (gzipped envelope, the headers
 * Node's https client writes), made before the timed phases: the load generator shares this box with the
 * server, so it should spend its CPU on TLS, not on compressing or on building requests. Every report ID is
 * unique and the sequence only ever increases, so every device sees increasing seqs, with gaps the server
 * counts as anomalies (one more column in the UPDATE it makes anyway; the log of them is throttled).
 *
 * They lie end to end in one buffer. As one Buffer each, a 60 s phase kept 300,000 objects alive that the
 * generator's major GCs had to mark; its pauses (up to 70 ms) were measured as the server's latency.
 */
let poolBytes = Buffer.alloc(0);
/** Where request i starts; entry n is the end of the last. */
let poolStarts = new Float64Array(1);
let poolNext = 0;
let poolSeq = 0;
let hostHeader = '';
function fillPool(n: number): void {
  // Written straight into the slab, so that each request's temporaries die young: a Buffer per request kept
  // until one final concat left 300,000 dead objects for a major GC early in the next phase.
  let bytes = Buffer.allocUnsafe(n * 1600);
  const starts = new Float64Array(n + 1);
  let at = 0;
  for (let i = 0; i < n; i++) {
    const gz = gzipSync(envelope(poolSeq++));
    const head =
      `POST /v1/reports HTTP/1.1\r\ncontent-encoding: gzip\r\ncontent-type: application/json\r\n` +
      `content-length: ${gz.length}\r\nHost: ${hostHeader}\r\nConnection: keep-alive\r\n\r\n`;
    const size = Buffer.byteLength(head, 'latin1') + gz.length;
    if (at + size > bytes.length) {
      const bigger = Buffer.allocUnsafe(bytes.length * 2);
      bytes.copy(bigger, 0, 0, at);
      bytes = bigger;
    }
    starts[i] = at;
    at += bytes.write(head, at, 'latin1');
    at += gz.copy(bytes, at);
  }
  starts[n] = at;
  poolBytes = bytes;
  poolStarts = starts;
  poolNext = 0;
}
function nextRequest(): Buffer {
  if (poolNext >= poolStarts.length - 1) throw new Error('request pool ran dry; raise the fill size');
  const i = poolNext++;
  return poolBytes.subarray(poolStarts[i], poolStarts[i + 1]);
}

/**
 * One simulated agent: a persistent mTLS connection carrying one request at a time (as the reporter does).
 * A minimal HTTP/1.1 response reader instead of node:https keeps the generator's CPU per request low; the
 * server sees exactly the bytes a real agent sends.
 */
class Sim {
  private socket: TLSSocket | null = null;
  private buf: Buffer = Buffer.alloc(0);
  private pending: { t0: number; resolve: (ms: number) => void; reject: (err: Error) => void } | null = null;

  constructor(
    readonly id: string,
    private readonly tls: Issued,
  ) {}

  async open(port: number, rootPem: string): Promise<void> {
    const socket = connect({ host: '127.0.0.1', port, ca: rootPem, cert: this.tls.certPem, key: this.tls.keyPem });
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
      this.drain();
    });
    socket.on('error', (err: Error) => {
      this.fail(err);
    });
    socket.on('close', () => {
      if (this.socket === socket) this.socket = null;
      this.fail(new Error('connection closed'));
    });
    this.socket = socket;
  }

  private fail(err: Error): void {
    const p = this.pending;
    this.pending = null;
    p?.reject(err);
  }

  private drain(): void {
    const end = this.buf.indexOf('\r\n\r\n');
    if (end < 0 || !this.pending) return;
    const head = this.buf.toString('latin1', 0, end);
    const len = /\r\ncontent-length: *(\d+)/i.exec(head);
    if (!len) {
      this.fail(new Error('response without content-length'));
      return;
    }
    const total = end + 4 + Number(len[1]);
    if (this.buf.length < total) return;
    const status = Number(head.slice(9, 12));
    const body = this.buf.toString('utf8', end + 4, total);
    this.buf = this.buf.subarray(total);
    const p = this.pending;
    this.pending = null;
    if (status === 200 && body.includes('"duplicate":false')) p.resolve(performance.now() - p.t0);
    else p.reject(new Error(`HTTP ${status}: ${body.slice(0, 200)}`));
  }

  post(): Promise<number> {
    const socket = this.socket;
    if (!socket || this.pending) return Promise.reject(new Error('not connected or busy'));
    const payload = nextRequest();
    return new Promise((resolve, reject) => {
      this.pending = { t0: performance.now(), resolve, reject };
      socket.write(payload);
    });
  }

  close(): void {
    this.socket?.destroy();
  }
}

const TIMELINE_MS = 5000;

/**
 * Each answered report's send time (ms after the warm-up) and latency, in typed arrays for the same reason
 * as the request pool: an object per report, kept for the whole phase, is work for the generator's GC.
 */
class Samples {
  at = new Float64Array(1 << 16);
  ms = new Float64Array(1 << 16);
  length = 0;

  push(at: number, ms: number): void {
    if (this.length === this.at.length) {
      const grow = (a: Float64Array<ArrayBuffer>): Float64Array<ArrayBuffer> => {
        const b = new Float64Array(a.length * 2);
        b.set(a);
        return b;
      };
      this.at = grow(this.at);
      this.ms = grow(this.ms);
    }
    this.at[this.length] = at;
    this.ms[this.length++] = ms;
  }
}

/** Reports/s, p99 and steal % for each TIMELINE_MS window of a phase. */
function timeline(samples: Samples, steal: (number | null)[]): string {
  const windows: number[][] = [];
  for (let i = 0; i < samples.length; i++) (windows[Math.floor((samples.at[i] ?? 0) / TIMELINE_MS)] ??= []).push(samples.ms[i] ?? 0);
  // A window with no answer at all is a hole in the sparse array.
  return Array.from(windows, (hole: number[] | undefined, i) => {
    const w = hole ?? [];
    w.sort((a, b) => a - b);
    const st = steal[i];
    return `${(w.length / (TIMELINE_MS / 1000)).toFixed(0)}/${pct(w, 99).toFixed(0)}${st == null ? '' : `/${st.toFixed(0)}`}`;
  }).join(' ');
}

function latencies(samples: Samples): Float64Array {
  return samples.ms.slice(0, samples.length).sort();
}

function pct(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/** CPU time (ms) from a /proc stat file (Linux; null elsewhere). Ticks are 10 ms on Linux. */
async function statCpuMs(path: string): Promise<number | null> {
  if (process.platform !== 'linux') return null;
  try {
    const stat = await readFile(path, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return null;
  }
}

interface CpuTimes {
  steal: number;
  total: number;
}

/**
 * Time the hypervisor gave to other guests while this one wanted the CPU (/proc/stat "steal", Linux), as a
 * share of all CPU time: on a shared VM it is why two runs minutes apart can differ by a third.
 */
async function cpuTimes(): Promise<CpuTimes | null> {
  if (process.platform !== 'linux') return null;
  try {
    const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0] ?? '';
    const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
    return { steal: f[7] ?? 0, total: f.reduce((a, b) => a + b, 0) };
  } catch {
    return null;
  }
}

function stealPct(before: CpuTimes | null, after: CpuTimes | null): number | null {
  return before && after && after.total > before.total ? (100 * (after.steal - before.steal)) / (after.total - before.total) : null;
}

/** Steal % per TIMELINE_MS window from the end of the warm-up, aligned with timeline()'s windows. */
function stealPerWindow(): { stop: () => (number | null)[] } {
  const steal: (number | null)[] = [];
  let last: Promise<CpuTimes | null> = Promise.resolve(null);
  let interval: NodeJS.Timeout | undefined;
  const first = setTimeout(() => {
    last = cpuTimes();
    interval = setInterval(() => {
      const prev = last;
      last = cpuTimes();
      void Promise.all([prev, last]).then(([a, b]) => steal.push(stealPct(a, b)));
    }, TIMELINE_MS);
  }, WARMUP_MS);
  return {
    stop: () => {
      clearTimeout(first);
      clearInterval(interval);
      return steal;
    },
  };
}

/** The whole server process, and its main thread alone: the event loop is the bottleneck to watch. */
async function cpuMs(pid: number | undefined): Promise<{ all: number; loop: number } | null> {
  if (pid === undefined) return null;
  const [all, loop] = await Promise.all([statCpuMs(`/proc/${pid}/stat`), statCpuMs(`/proc/${pid}/task/${pid}/stat`)]);
  return all === null || loop === null ? null : { all, loop };
}

interface Result {
  mode: string;
  /** Every latency after the warm-up, with when it was sent: the tail over time. */
  samples: Samples;
  /** Steal % in each TIMELINE_MS window after the warm-up. */
  windowSteal?: (number | null)[];
  agents: number;
  rate: number;
  p50: number;
  p99: number;
  errors: number;
  /** Requests answered during the whole phase, warm-up included: the denominator of the server's CPU. */
  completed: number;
  serverCpuMsPerReport?: number | null;
  loopCpuMsPerReport?: number | null;
  generatorCpuMsPerReport?: number;
  stealPct?: number | null;
}

async function closedLoop(sims: Sim[]): Promise<Result> {
  const samples = new Samples();
  let errors = 0;
  let completed = 0;
  const start = performance.now();
  const end = start + WARMUP_MS + PHASE_MS;
  await Promise.all(
    sims.map(async (sim) => {
      while (performance.now() < end) {
        const t = performance.now();
        try {
          const ms = await sim.post();
          completed++;
          if (t >= start + WARMUP_MS) samples.push(t - start - WARMUP_MS, ms);
        } catch {
          errors++;
        }
      }
    }),
  );
  const lat = latencies(samples);
  return { mode: 'closed', samples, agents: sims.length, rate: lat.length / (PHASE_MS / 1000), p50: pct(lat, 50), p99: pct(lat, 99), errors, completed };
}

async function openLoop(sims: Sim[], rate: number): Promise<Result> {
  const samples = new Samples();
  let errors = 0;
  let completed = 0;
  const start = performance.now();
  const total = Math.round((rate * (WARMUP_MS + PHASE_MS)) / 1000);
  // An agent with a request in flight waits (keep-alive, one connection each), like a real agent would.
  const busy = new Set<Sim>();
  let drained: (() => void) | null = null;
  let i = 0;
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
    // Not kept in a list to await: like the samples, 120,000 promises held for a phase were work for the GC.
    void sim
      .post()
      .then((ms) => {
        completed++;
        if (sentAt >= start + WARMUP_MS) samples.push(sentAt - start - WARMUP_MS, ms);
      })
      .catch(() => {
        errors++;
      })
      .finally(() => {
        busy.delete(sim);
        if (busy.size === 0) drained?.();
      });
  }
  if (busy.size > 0) await new Promise<void>((resolve) => (drained = resolve));
  const elapsed = (performance.now() - start - WARMUP_MS) / 1000;
  const lat = latencies(samples);
  return { mode: `open@${rate}/s`, samples, agents: sims.length, rate: lat.length / elapsed, p50: pct(lat, 50), p99: pct(lat, 99), errors, completed };
}

async function main(): Promise<void> {
  const loadBefore = loadavg().map((l) => l.toFixed(1)).join(' ');
  const port = await freePort();
  hostHeader = `127.0.0.1:${port}`;
  const p = await prepare({ listen: `127.0.0.1:${port}`, logLevel: 'warn', maxReportAgeSeconds: 3600 });
  const maxAgents = Math.max(...AGENT_COUNTS, OPEN_LOOP_RATE > 0 ? OPEN_LOOP_AGENTS : 0);
  const storage = new SqliteStorage(p.config.dataDir);
  const sims: Sim[] = [];
  for (let i = 0; i < maxAgents; i++) {
    const id = `bench-${String(i).padStart(4, '0')}`;
    await storage.enrollDevice({ id, facts: sampleReport().device, secretId: 'bench', now: Date.now() });
    sims.push(new Sim(id, await p.pki.device(id)));
  }
  await storage.close();

  const cfg = join(p.dir, 'cp.json');
  await writeFile(cfg, JSON.stringify(p.config));
  const here = fileURLToPath(import.meta.url);
  const ts = here.endsWith('.ts');
  const cli = fileURLToPath(new URL(`../src/control-plane/cli.${ts ? 'ts' : 'js'}`, import.meta.url));
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
    const results: Result[] = [];
    /** The server's CPU per agent for a full mTLS handshake and the first report on it, each phase. */
    const handshakeCpuMs: number[] = [];
    const measured = async (fn: () => Promise<Result>): Promise<void> => {
      // Sized for 5000 reports/s, well above what this box serves; refilled between phases, untimed.
      fillPool(Math.ceil((5000 * (PHASE_MS + WARMUP_MS)) / 1000));
      // Every agent starts a phase on a fresh connection. The server closes a connection that has been idle
      // too long (an agent left out of a long phase, or all of them while the pool fills), and a close that
      // lands just after a check for it left 149 of 200 open-loop agents failing every send for a whole phase.
      const beforeHandshakes = await cpuMs(server.pid);
      for (const s of sims) {
        s.close();
        await s.open(port, p.pki.rootPem);
      }
      // In TLS 1.3 a client is connected once it has sent its certificate and Finished; the server verifies
      // them after that. One report per agent waits for it, so that 200 verifications (a 160 ms stall of the
      // server's event loop) are not timed. The first second or two of a phase is still slower than the rest.
      await Promise.all(sims.map((s) => s.post()));
      const before = await cpuMs(server.pid);
      if (beforeHandshakes && before) handshakeCpuMs.push((before.all - beforeHandshakes.all) / sims.length);
      const box = await cpuTimes();
      const gen = process.cpuUsage();
      const windowSteal = stealPerWindow();
      const r = await fn();
      r.windowSteal = windowSteal.stop();
      const genUsed = process.cpuUsage(gen);
      const after = await cpuMs(server.pid);
      const boxAfter = await cpuTimes();
      r.stealPct = stealPct(box, boxAfter);
      r.generatorCpuMsPerReport = r.completed === 0 ? Number.NaN : (genUsed.user + genUsed.system) / 1000 / r.completed;
      const ok = before !== null && after !== null && r.completed > 0;
      r.serverCpuMsPerReport = ok ? (after.all - before.all) / r.completed : null;
      r.loopCpuMsPerReport = ok ? (after.loop - before.loop) / r.completed : null;
      results.push(r);
    };
    for (const n of AGENT_COUNTS) await measured(() => closedLoop(sims.slice(0, n)));
    if (OPEN_LOOP_RATE > 0) await measured(() => openLoop(sims.slice(0, OPEN_LOOP_AGENTS), OPEN_LOOP_RATE));

    const env = envelope(0);
    console.log(`\nvigil-control-plane ingest, loopback mTLS keep-alive, ${PHASE_MS / 1000} s per phase after ${WARMUP_MS / 1000} s of warm-up, server in its own process`);
    console.log(`load average before: ${loadBefore}, after: ${loadavg().map((l) => l.toFixed(1)).join(' ')}; this box has ${availableParallelism()} cores`);
    console.log('mode           agents  reports/s   p50 ms   p99 ms  err/skip  server CPU ms/report  event loop  load generator  steal %');
    for (const r of results) {
      console.log(
        `${r.mode.padEnd(14)} ${String(r.agents).padStart(6)} ${r.rate.toFixed(0).padStart(10)} ${r.p50.toFixed(1).padStart(8)} ${r.p99.toFixed(1).padStart(8)} ${String(r.errors).padStart(9)}  ${r.serverCpuMsPerReport == null ? '-' : r.serverCpuMsPerReport.toFixed(2).padStart(8)}${r.loopCpuMsPerReport == null ? '' : r.loopCpuMsPerReport.toFixed(2).padStart(21)}${(r.generatorCpuMsPerReport ?? Number.NaN).toFixed(2).padStart(16)}${r.stealPct == null ? '' : r.stealPct.toFixed(0).padStart(9)}`,
      );
    }
    if (PHASE_MS >= 20_000) {
      // A long phase's tail can come from one bad stretch (a checkpoint, a major GC, a noisy neighbour).
      console.log(`\nper ${TIMELINE_MS / 1000} s window (by send time): reports/s / p99 ms / steal %`);
      for (const r of results) console.log(`${r.mode.padEnd(14)} ${String(r.agents).padStart(6)}  ${timeline(r.samples, r.windowSteal ?? [])}`);
    }
    console.log('err/skip: failed requests; in the open loop also sends skipped because that agent was still waiting (falling behind)');
    console.log("steal %: CPU time this VM's hypervisor gave to other guests during the phase; results are only comparable when it is low");
    if (handshakeCpuMs.length > 0) {
      const each = handshakeCpuMs.map((ms) => ms.toFixed(1)).join(', ');
      console.log(`\nfull mTLS handshake (ECDSA P-256) and its first report: ${each} ms of server CPU per agent, each phase`);
    }
    console.log(
      `\ntypical report (12 checks, synthetic Linux evidence): ${Buffer.byteLength(env)} B JSON envelope, ${gzipSync(env).length} B gzip (target < 2048 B)`,
    );
  } finally {
    for (const s of sims) s.close();
    const exited = new Promise((r) => server.once('exit', r));
    server.kill('SIGTERM');
    await exited;
    // Each run writes hundreds of megabytes of reports.
    await rm(p.dir, { recursive: true, force: true });
  }
}

await main();
