/**
 * The admin console's fleet-wide reads at scale: `npx tsx bench/console-fleet.ts` (BENCH_DEVICES, default
 * 100,000). Fills a fresh SQLite database with that many reporting devices (gzip envelopes as agents send
 * them, a quarter failing a recommended check, a tenth a critical one), then times the overview (set-based
 * counts and the failing-check ranking) and a policy preview, while a 5 ms timer measures how long the event
 * loop is held: the longest stall is what every other request waits at worst.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { gzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { localRateLimit } from '../src/control-plane/rate-limit.js';
import { ConsoleService } from '../src/control-plane/console.js';
import { SqliteStorage } from '../src/control-plane/sqlite-storage.js';
import { silentLogger } from '../src/logging/logger.js';
import { policySchema } from '../src/policy/schema.js';
import defaultPolicyJson from '../src/policy/default-policy.json' with { type: 'json' };
import { sampleReport } from '../test/helpers/report.js';

const N = Number(process.env.BENCH_DEVICES ?? 100_000);
const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-console-'));
const policy = policySchema.parse(defaultPolicyJson);

// Created through the storage so the schema is the real one, then filled in one transaction.
await new SqliteStorage(dir).close();
const db = new Database(join(dir, 'control-plane.sqlite'));
const variants = [[], ['edr-running'], ['disk-encryption']].map((failing: string[]) => {
  const report = sampleReport({ failing });
  return { failing, level: report.accessLevel, body: gzipSync(JSON.stringify({ protocolVersion: 1, reportId: 'x', seq: 1, dropped: 0, report })), facts: report.device };
});
const now = Date.now();
const t0 = performance.now();
db.transaction(() => {
  const dev = db.prepare(`INSERT INTO devices (id, facts, enrolled_at, last_seen, last_seq, access_level, latest_report_id, posture, failing_checks)
    VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?)`);
  const rep = db.prepare('INSERT INTO reports (report_id, device_id, seq, generated_at, received_at, access_level, body) VALUES (?, ?, 1, ?, ?, ?, ?)');
  for (let i = 0; i < N; i++) {
    const v = variants[i % 10 === 0 ? 2 : i % 4 === 0 ? 1 : 0] ?? variants[0];
    if (!v) throw new Error('no variant');
    const id = `dev-${String(i).padStart(7, '0')}`;
    const reportId = randomUUID();
    const facts = JSON.stringify({ ...v.facts, hostname: `ws-${i}` });
    const posture = JSON.stringify({ os: { platform: 'linux', id: 'debian', name: i % 3 === 0 ? 'Ubuntu 24.04 LTS' : 'Debian GNU/Linux 12 (bookworm)', version: '12' }, managed: false });
    dev.run(id, facts, now, now, v.level, reportId, posture, v.failing.length === 0 ? ',' : `,${v.failing.join(',')},`);
    rep.run(reportId, id, new Date(now).toISOString(), now, v.level, v.body);
  }
})();
db.close();
console.log(`filled ${N} devices in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

const storage = new SqliteStorage(dir);
const svc = new ConsoleService({
  storage,
  currentPolicy: () => policy,
  logger: silentLogger(),
  idleTimeoutMinutes: 30,
  absoluteLifetimeHours: 12,
  maxReportAgeSeconds: 3600,
  signinPerName: localRateLimit(5, 5),
  signinPerIp: localRateLimit(5, 5),
});

async function measure<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const h = monitorEventLoopDelay({ resolution: 5 });
  let last = performance.now();
  let longest = 0;
  const tick = setInterval(() => {
    const t = performance.now();
    longest = Math.max(longest, t - last);
    last = t;
  }, 5);
  h.enable();
  const start = performance.now();
  const out = await fn();
  const took = performance.now() - start;
  // One more turn so that a stall at the very end is seen by the timer.
  await new Promise((r) => setTimeout(r, 10));
  h.disable();
  clearInterval(tick);
  console.log(
    `${label}: ${took.toFixed(0)} ms; event loop: longest gap between 5 ms ticks ${longest.toFixed(0)} ms, delay p99 ${(h.percentile(99) / 1e6).toFixed(1)} ms, max ${(h.max / 1e6).toFixed(1)} ms`,
  );
  return out;
}

const overview = await measure('overview (paged GROUP BY counts + failing-check ranking)', () => svc.overview());
console.log(`  total ${overview.total}, byLevel ${JSON.stringify(overview.byLevel)}, byOs ${JSON.stringify(overview.byOs)}`);
console.log(`  topFailing ${JSON.stringify(overview.topFailing)}`);
await measure('overview again (warm cache)', () => svc.overview());
const stricter = { ...defaultPolicyJson, version: 'bench-strict', checks: { ...defaultPolicyJson.checks, 'edr-running': 'critical' } };
const preview = await measure('policy preview (edr-running critical)', () => svc.previewPolicy(stricter));
if (preview.valid) console.log(`  changes ${JSON.stringify(preview.changes)}`);
const looser = { ...defaultPolicyJson, version: 'bench-loose', checks: { ...defaultPolicyJson.checks, 'disk-encryption': 'recommended' } };
const again = await measure('policy preview again, another draft (reports already read)', () => svc.previewPolicy(looser));
if (again.valid) console.log(`  changes ${JSON.stringify(again.changes)}`);
console.log(`heap used after: ${(process.memoryUsage().heapUsed / 1e6).toFixed(0)} MB`);
await storage.close();
rmSync(dir, { recursive: true, force: true });
