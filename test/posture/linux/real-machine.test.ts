import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CHECKS } from '../../../src/posture/catalog.js';
import { runScan } from '../../../src/posture/engine.js';
import { FactStore } from '../../../src/posture/facts.js';
import { linuxChecks } from '../../../src/posture/linux/index.js';
import { thresholdsSchema } from '../../../src/policy/schema.js';

const IDS = ['disk-encryption', 'firewall', 'screen-lock', 'secure-boot'];

// Runs the real probes of this machine, so it says nothing on other platforms.
describe.runIf(process.platform === 'linux')('Linux part-A collectors on this machine', () => {
  it('each returns a status with evidence and a reason, never error', async () => {
    const results = await runScan({
      checks: CHECKS.filter((c) => IDS.includes(c.id)),
      implementations: linuxChecks,
      facts: new FactStore(60_000),
      thresholds: thresholdsSchema.parse({}),
      concurrency: 4,
      timeoutMs: 5000,
    });
    expect(results.map((r) => r.id)).toEqual(IDS);
    for (const r of results) {
      expect(['pass', 'fail', 'unknown'], `${r.id}: ${r.reason ?? ''}`).toContain(r.status);
      expect(r.reason, r.id).toBeTruthy();
      expect(r.durationMs, r.id).toBeLessThan(1000);
    }
  });

  it('disk-encryption evidence for / matches findmnt -J /', async () => {
    const [result] = await runScan({
      checks: CHECKS.filter((c) => c.id === 'disk-encryption'),
      implementations: linuxChecks,
      facts: new FactStore(60_000),
      thresholds: thresholdsSchema.parse({}),
      concurrency: 1,
      timeoutMs: 5000,
    });
    const findmnt = JSON.parse(execFileSync('findmnt', ['-J', '/'], { encoding: 'utf8' })) as {
      filesystems: { target: string; source: string; fstype: string }[];
    };
    const fs = findmnt.filesystems[0];
    const mounts = result?.evidence.mounts as { target: string; source: string; fstype: string; chain: string[] | null }[];
    expect(mounts[0]).toMatchObject({ target: '/', source: fs?.source, fstype: fs?.fstype });
    if (fs?.source.startsWith('/dev/')) {
      // The chain ends in the device findmnt names, however lsblk spells it.
      const kname = execFileSync('lsblk', ['-n', '-d', '-o', 'NAME', fs.source], { encoding: 'utf8' }).trim();
      expect(mounts[0]?.chain?.at(-1)).toBe(kname);
    }
  });
});
