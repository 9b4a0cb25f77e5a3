import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, release } from 'node:os';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseOsRelease } from '../../src/posture/linux/os-release.js';
import { postureReportSchema, type PostureReport } from '../../src/protocol/report.js';
import { CLI, ROOT, isolatedEnv, runCliProcess, startCliProcess, tempDir, waitFor } from '../helpers.js';

// These run the built CLI (npm test builds first) on this machine and compare with the machine itself.
describe.runIf(process.platform === 'linux')('vigil CLI on this machine', () => {
  let home: string;
  let env: NodeJS.ProcessEnv;
  let report: PostureReport;

  beforeAll(async () => {
    expect(existsSync(CLI), 'run `npm run build` first').toBe(true);
    home = tempDir();
    env = isolatedEnv(home);
    // The first scan on a fresh state dir runs the package manager's simulation, seconds on a busy machine.
    const res = await runCliProcess(['check', '--json'], env, 120_000);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    report = postureReportSchema.parse(JSON.parse(res.stdout));
  }, 150_000);

  it('reports this machine: os-release, hostname, kernel', () => {
    const rel = parseOsRelease(readFileSync('/etc/os-release', 'utf8'));
    expect(report.device.hostname).toBe(hostname());
    expect(report.device.os).toEqual({ name: rel.prettyName, id: rel.id, version: rel.versionId ?? null, kernel: release() });
    expect(report.device.platform).toBe('linux');
  });

  it('agrees with the block devices lsblk sees', () => {
    const disk = report.results.find((r) => r.id === 'disk-encryption');
    expect(disk).toBeDefined();
    const lsblk = JSON.parse(execFileSync('lsblk', ['-J', '-o', 'NAME,TYPE'], { encoding: 'utf8' })) as { blockdevices: { type: string }[] };
    const anyCrypt = JSON.stringify(lsblk).includes('"crypt"');
    // With no dm-crypt device at all, nothing under / can be encrypted.
    if (!anyCrypt) expect(disk?.status).not.toBe('pass');
  });

  it('validates against the published JSON Schema', () => {
    const schema = JSON.parse(readFileSync(join(ROOT, 'docs/report.schema.json'), 'utf8')) as object;
    const ajv = new Ajv2020({ strict: false });
    addFormats.default(ajv);
    const valid = ajv.validate(schema, report);
    expect(ajv.errors ?? []).toEqual([]);
    expect(valid).toBe(true);
  });

  it('gives every result the fields the report promises and an access level consistent with the reasons', () => {
    for (const r of report.results) {
      expect(['pass', 'fail', 'unknown', 'error']).toContain(r.status);
      expect(r.durationMs).toBeGreaterThanOrEqual(0);
    }
    const effects = report.reasons.map((r) => r.effect);
    expect(report.accessLevel).toBe(effects.includes('blocked') ? 'blocked' : effects.includes('limited') ? 'limited' : 'full');
  });

  it('prints a human table with the access level', async () => {
    const res = await runCliProcess(['check'], env);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/Access level: (FULL|LIMITED|BLOCKED)/);
    expect(res.stdout).toContain('Operating system is supported');
  });

  it('--strict exits by access level', async () => {
    const res = await runCliProcess(['check', '--json', '--strict'], env);
    const level = (JSON.parse(res.stdout) as PostureReport).accessLevel;
    expect(res.code).toBe({ full: 0, limited: 3, blocked: 4 }[level]);
  });

  it('status shows the last scan', async () => {
    const res = await runCliProcess(['status', '--json'], env);
    expect(res.code).toBe(0);
    const status = JSON.parse(res.stdout) as { lastScan: { accessLevel: string } | null; daemon: { running: boolean } };
    expect(status.lastScan?.accessLevel).toBe(report.accessLevel);
    expect(status.daemon.running).toBe(false);
  });

  it('status explains a corrupted status file instead of crashing', async () => {
    const state = tempDir();
    writeFileSync(join(state, 'status.json'), '{"schemaVersion": 1, "agentVer');
    const res = await runCliProcess(['status', '--state-dir', state], env);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain(`${join(state, 'status.json')}: not valid JSON (corrupted?); the next scan will replace it`);
  });

  it('lists the catalog for another platform', async () => {
    const res = await runCliProcess(['checks', '--platform', 'darwin', '--json'], env);
    expect(res.code).toBe(0);
    const doc = JSON.parse(res.stdout) as { platform: string; checks: { id: string }[] };
    expect(doc.platform).toBe('darwin');
    expect(doc.checks.map((c) => c.id)).toContain('disk-encryption');
  });

  it('config show names the source of each value', async () => {
    const cfg = join(home, 'c.json');
    writeFileSync(cfg, JSON.stringify({ scan: { intervalSeconds: 60 } }));
    const res = await runCliProcess(['config', 'show', '--config', cfg], { ...env, VIGIL_SCAN_CONCURRENCY: '2' });
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(new RegExp(`scan\\.intervalSeconds\\s+60\\s+\\(${cfg.replaceAll('/', '\\/')}\\)`));
    expect(res.stdout).toMatch(/scan\.concurrency\s+2\s+\(environment\)/);
    expect(res.stdout).toMatch(/scan\.timeoutMs\s+5000\s+\(default\)/);
  });

  it.each([
    [['check', '--bogus'], "error: unknown option '--bogus'"],
    [['frobnicate'], "error: unknown command 'frobnicate'"],
    [['check', '--log-level', 'loud'], "error: option '--log-level <level>' argument 'loud' is invalid. Allowed choices are error, warn, info, debug."],
    [['checks', '--platform', 'beos'], "error: option '--platform <platform>' argument 'beos' is invalid"],
  ])('usage error %j exits 2 with one line', async (args, message) => {
    const res = await runCliProcess(args, env);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(message);
  });

  it('bad config exits 2 naming file, key and expectation', async () => {
    const cfg = join(home, 'bad.json');
    writeFileSync(cfg, JSON.stringify({ scan: { intervalSecs: 60 } }));
    const res = await runCliProcess(['check', '--config', cfg], env);
    expect(res.code).toBe(2);
    expect(res.stderr).toBe(`vigil: ${cfg}: unknown key "scan.intervalSecs" (did you mean "scan.intervalSeconds"?)\n`);
  });

  it('the daemon scans, writes status and logs, and stops cleanly on SIGTERM', async () => {
    const state = tempDir();
    // Reuse the package-manager answer the first scan cached, so this test does not wait for apt again.
    copyFileSync(join(home, '.local/state/vigil/facts-cache.json'), join(state, 'facts-cache.json'));
    const d = startCliProcess(['daemon', '--state-dir', state], env);
    await waitFor(() => existsSync(join(state, 'status.json')) || undefined, 20_000, 'first scan');
    expect(readFileSync(join(state, 'daemon.pid'), 'utf8').trim()).toBe(String(d.child.pid));
    const second = await runCliProcess(['daemon', '--state-dir', state], env);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain('another vigil daemon is running');
    d.child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => d.child.on('close', r));
    expect(code).toBe(0);
    expect(existsSync(join(state, 'daemon.pid'))).toBe(false);
    const log = readFileSync(join(state, 'logs', 'vigil.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { message: string });
    expect(log.map((l) => l.message)).toEqual(expect.arrayContaining([expect.stringMatching(/^daemon started/), expect.stringMatching(/^access level: none -> /), 'daemon stopped']));
    expect(d.output()).toContain('received SIGTERM; shutting down');
  });
});
