import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { CHECKS } from '../../../src/posture/catalog.js';
import { runScan } from '../../../src/posture/engine.js';
import { FactStore } from '../../../src/posture/facts.js';
import { run } from '../../../src/posture/exec.js';
import { collectLinuxDeviceFacts, linuxDeviceContext } from '../../../src/posture/linux/device.js';
import { linuxChecks } from '../../../src/posture/linux/index.js';
import { parseOsRelease } from '../../../src/posture/linux/os-release.js';
import { thresholdsSchema } from '../../../src/policy/schema.js';
import { deviceFactsSchema } from '../../../src/protocol/report.js';

const MINE = ['os-patched', 'auto-updates', 'edr-running', 'ssh-server', 'root-empty-password', 'guest-account', 'not-rooted'];

describe.runIf(process.platform === 'linux')('linux part B collectors on this machine', () => {
  it('run through runScan with sane statuses, and a warm scan is fast', async () => {
    const facts = new FactStore(60 * 60 * 1000);
    const opts = {
      checks: CHECKS.filter((c) => MINE.includes(c.id)),
      implementations: linuxChecks,
      facts,
      thresholds: thresholdsSchema.parse({}),
      concurrency: 4,
      timeoutMs: 60_000,
    };
    const t0 = performance.now();
    const cold = await runScan(opts);
    const coldMs = performance.now() - t0;
    const t1 = performance.now();
    const warm = await runScan(opts);
    const warmMs = performance.now() - t1;
    console.log(`cold ${coldMs.toFixed(0)} ms, warm ${warmMs.toFixed(0)} ms`);
    for (const r of [...cold, ...warm]) console.log(r.id, r.status, `${r.durationMs} ms`, r.reason);

    expect(cold.map((r) => r.id).sort()).toEqual([...MINE].sort());
    for (const r of [...cold, ...warm]) {
      expect(r.status, `${r.id}: ${r.reason ?? ''}`).not.toBe('error');
      if (r.status === 'unknown') expect(r.reason, r.id).toBeTruthy();
    }
    expect(warm.map((r) => r.status)).toEqual(cold.map((r) => r.status));
    expect(warmMs).toBeLessThan(1000);
  }, 120_000);

  it('ssh-server agrees with what ss reports as listening on port 22', async () => {
    const facts = new FactStore(1000);
    const [result] = await runScan({
      checks: CHECKS.filter((c) => c.id === 'ssh-server'),
      implementations: linuxChecks,
      facts,
      thresholds: thresholdsSchema.parse({}),
      concurrency: 1,
      timeoutMs: 10_000,
    });
    const ss = await run('ss', ['-Htln', 'sport = :22']).catch(() => null);
    if (ss === null) return;
    const exposed = ss.stdout
      .split('\n')
      .map((l) => l.trim().split(/\s+/)[3] ?? '')
      .filter((a) => a && !a.startsWith('127.') && !a.startsWith('[::1]'));
    expect(result?.status).toBe(exposed.length > 0 ? 'fail' : 'pass');
  });

  it('collectLinuxDeviceFacts matches /etc/os-release and os.hostname()', async () => {
    const ctx = {
      facts: new FactStore(60_000),
      readFile: (p: string) => Promise.resolve(readFileSync(p, 'utf8')),
      run: (c: string, a: readonly string[]) => run(c, a),
      env: process.env,
    };
    const device = deviceFactsSchema.parse(await collectLinuxDeviceFacts(ctx));
    const rel = parseOsRelease(readFileSync('/etc/os-release', 'utf8'));
    expect(device.hostname).toBe(hostname());
    expect(device.platform).toBe('linux');
    expect(device.os).toMatchObject({ name: rel.prettyName, id: rel.id, version: rel.versionId ?? null });
    const dc = await linuxDeviceContext(ctx);
    expect(dc.platform).toBe('linux');
  });
});
