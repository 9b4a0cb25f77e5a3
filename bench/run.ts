/**
 * `npm run bench`: scan speed (cold, warm, against systeminformation.getAllData()), and the idle daemon's
 * memory and CPU. Figures are printed, never asserted: timing belongs here, not in tests.
 * BENCH_IDLE_SECONDS sets the idle-daemon window (default 600, the 10 minutes).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import si from 'systeminformation';
import { Agent } from '../src/agent/agent.js';
import { bundledPolicy } from '../src/policy/load.js';
import { currentPlatform, loadPlatformSupport } from '../src/posture/platforms.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 10);
const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 600);
const scanSettings = { concurrency: 4, timeoutMs: 5000, staticFactsTtlSeconds: 3600 };

function stats(samples: number[]): { median: number; p95: number; min: number } {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
  return { median: at(0.5), p95: at(0.95), min: s[0] ?? Number.NaN };
}

const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

const platform = currentPlatform();
const support = await loadPlatformSupport(platform);

function newAgent(factCacheFile?: string): Agent {
  return new Agent(bundledPolicy(), platform, support, { ...scanSettings, ...(factCacheFile ? { factCacheFile } : {}) });
}

async function scans(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-'));
  const cache = join(dir, 'facts-cache.json');
  // Truly cold: no memo, no persisted package-manager result. Run once: it repeats a multi-second apt simulation.
  const veryCold = await time(() => newAgent(cache).scan());
  const cold: number[] = [];
  const warm: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const agent = newAgent(cache);
    cold.push(await time(() => agent.scan()));
    warm.push(await time(() => agent.scan()));
    warm.push(await time(() => agent.scan()));
  }
  const siRuns: number[] = [];
  for (let i = 0; i < Math.min(3, RUNS); i++) siRuns.push(await time(() => si.getAllData()));
  const c = stats(cold);
  const w = stats(warm);
  const s = stats(siRuns);
  process.stdout.write(
    [
      `Full ${currentPlatform()} scan (${RUNS} runs each):`,
      `  first ever (no cache at all):            ${fmt(veryCold)}`,
      `  cold (new agent; persisted pkg cache):   median ${fmt(c.median)}  p95 ${fmt(c.p95)}   target <= 300 ms`,
      `  warm (static facts cached):              median ${fmt(w.median)}  p95 ${fmt(w.p95)}   target <= 50 ms`,
      `  systeminformation.getAllData():          median ${fmt(s.median)}  (${siRuns.length} runs)`,
      `  speed-up vs getAllData: cold ${(s.median / c.median).toFixed(1)}x, warm ${(s.median / w.median).toFixed(1)}x   target >= 10x`,
      '',
    ].join('\n'),
  );
  rmSync(dir, { recursive: true, force: true });
}

function procStat(pid: number): { rssKb: number; cpuTicks: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
  // Fields 14 and 15 (utime, stime) follow the parenthesised command name.
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return { rssKb, cpuTicks: Number(fields[11]) + Number(fields[12]) };
}

async function idleDaemon(): Promise<void> {
  if (process.platform !== 'linux') return;
  const state = mkdtempSync(join(tmpdir(), 'vigil-bench-daemon-'));
  const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
  const child = spawn(process.execPath, [cli, 'daemon', '--state-dir', state, '--log-level', 'warn'], { stdio: 'ignore' });
  const pid = child.pid;
  if (pid === undefined) throw new Error('daemon did not start');
  const deadline = Date.now() + 60_000;
  while (!existsSync(join(state, 'status.json'))) {
    if (Date.now() > deadline) throw new Error('daemon never finished its first scan');
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 2000));
  const start = procStat(pid);
  const ticksPerSecond = 100;
  await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
  const end = procStat(pid);
  child.kill('SIGTERM');
  await new Promise((r) => child.on('close', r));
  process.stdout.write(
    [
      'Idle headless daemon (default intervals):',
      `  resident memory after first scan: ${(start.rssKb / 1024).toFixed(1)} MB, after ${IDLE_SECONDS} s idle: ${(end.rssKb / 1024).toFixed(1)} MB   target <= 60 MB`,
      `  CPU time over ${IDLE_SECONDS} s idle: ${((end.cpuTicks - start.cpuTicks) / ticksPerSecond).toFixed(2)} s   target < 1 s per 600 s`,
      '',
    ].join('\n'),
  );
  rmSync(state, { recursive: true, force: true });
}

await scans();
await idleDaemon();
