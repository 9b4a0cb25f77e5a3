import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_CLI, CONTROL_PLANE_CLI, startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { isolatedEnv, runCliProcess, waitFor, type RunResult } from '../helpers.js';

/*
 * The MDM order of events with real processes (step-ca, control plane, agent daemon from dist/): the daemon
 * is installed and started first, enrollment happens later from another process, and reporting starts
 * without a restart; unenrolling stops it. Then a revoked device: `vigil report --once` stops at once.
 */

const built = existsSync(AGENT_CLI) && existsSync(CONTROL_PLANE_CLI);

describe.skipIf(!built)('reporting follows enrollment made while the daemon runs', () => {
  let ca: StepCa;
  let cp: ControlPlane;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let args: string[];
  let daemon: ChildProcess | undefined;
  let daemonLog = '';
  let deviceId = '';

  const vigil = (more: string[], timeoutMs = 90_000): Promise<RunResult> => runCliProcess([...args, ...more], env, timeoutMs);
  const enroll = async (): Promise<void> => {
    const res = await vigil(['enroll', '--control-plane', cp.url, '--enrollment-secret', await cp.secret(), '--ca-url', ca.url, '--fingerprint', ca.rootFingerprint]);
    expect(res.code, `${res.stderr}\n${cp.log()}`).toBe(0);
  };
  const reportCount = async (): Promise<number> => {
    const r = await cp.admin('GET', `/v1/admin/devices/${deviceId}/reports?limit=1000`);
    return r.status === 200 ? (JSON.parse(r.body) as { reports: unknown[] }).reports.length : 0;
  };
  const outboxPending = async (): Promise<number> => {
    const names = await readdir(join(dir, 'agent-state', 'outbox')).catch(() => []);
    return names.filter((n) => n.endsWith('.json') && n !== 'state.json').length;
  };

  beforeAll(async () => {
    ca = await startStepCa({ claims: { defaultTLSCertDuration: '1h' } });
    dir = await mkdtemp(join(tmpdir(), 'vigil-e2e-lifecycle-'));
    // No heartbeats: every report the test sees has a cause it can attribute.
    cp = await startControlPlane(ca, dir, { reportIntervalSeconds: 3600 });
    env = isolatedEnv(join(dir, 'home'));
    await writeFile(
      join(dir, 'agent.json'),
      JSON.stringify({ identity: { keyStorage: 'file' }, reporting: { controlPlaneUrl: cp.url, debounceMs: 200 }, scan: { intervalSeconds: 3600 } }),
    );
    args = ['--config', join(dir, 'agent.json'), '--state-dir', join(dir, 'agent-state')];
  }, 180_000);

  afterAll(async () => {
    daemon?.kill('SIGKILL');
    await cp.stop();
    await ca.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('a daemon started before enrollment starts reporting once `vigil enroll` runs elsewhere, and stops after unenroll', async () => {
    const proc = spawn(process.execPath, [AGENT_CLI, ...args, 'daemon'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    daemon = proc;
    proc.stdout.on('data', (d: Buffer) => (daemonLog += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (daemonLog += d.toString()));
    await waitFor(() => daemonLog.includes('reporting is off until the device is enrolled'), 30_000, `the daemon to say reporting is off:\n${daemonLog}`);

    await enroll();
    const identity = JSON.parse((await vigil(['identity', '--json'])).stdout) as { deviceId: string };
    deviceId = identity.deviceId;
    const enrolledAt = Date.now();
    await waitFor(async () => ((await reportCount()) >= 1 ? true : undefined), 30_000, `a report from the running daemon:\n${daemonLog}`);
    expect(Date.now() - enrolledAt).toBeLessThan(30_000);
    expect(daemonLog).toMatch(new RegExp(`reporting to ${cp.url.replace(/[.]/g, '\\.')}`));
    expect(proc.exitCode).toBeNull();

    const unenrolled = await vigil(['unenroll']);
    expect(unenrolled.code, unenrolled.stderr).toBe(0);
    await waitFor(() => daemonLog.includes('stopped: the device is not-enrolled'), 15_000, `the daemon to stop reporting:\n${daemonLog}`);
    expect(proc.exitCode).toBeNull();
    // One line per transition, not one per poll or per file event.
    expect(daemonLog.match(/reporting to \S+ stopped/g)).toHaveLength(1);

    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    await exited;
    daemon = undefined;
  }, 180_000);

  it('`vigil report --once` stops at once when the control plane refuses a revoked device, keeping the report', async () => {
    await enroll();
    const ok = await vigil(['report', '--once']);
    expect(ok.code, ok.stderr).toBe(0);
    const revoke = await cp.admin('POST', `/v1/admin/devices/${deviceId}/revoke`);
    expect(revoke.status, revoke.body).toBeLessThan(300);

    const started = Date.now();
    const res = await vigil(['report', '--once', '--timeout', '60']);
    const took = Date.now() - started;
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/control plane refused the device certificate \(HTTP 403 device-revoked/);
    expect(res.stderr).toMatch(/vigil enroll/);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    // Well under the 60 s timeout: a refusal is not retried (process start and scan take a few seconds).
    expect(took).toBeLessThan(15_000);
    expect(await outboxPending()).toBe(1);
  }, 180_000);
});
