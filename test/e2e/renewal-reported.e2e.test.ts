import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_CLI, CONTROL_PLANE_CLI, startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { isolatedEnv, runCliProcess, waitFor, type RunResult } from '../helpers.js';

/*
 * Gateways admit a device's current certificate only (vigil-authz), and the control plane learns it from a
 * report made with it. So a renewal must reach the control plane at once, not with the next heartbeat
 * (an hour here): real step-ca, control plane and agent daemon from dist/.
 */

const built = existsSync(AGENT_CLI) && existsSync(CONTROL_PLANE_CLI);

describe.skipIf(!built)('a renewed certificate reaches the control plane at once', () => {
  let ca: StepCa;
  let cp: ControlPlane;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let args: string[];
  let daemon: ChildProcess | undefined;
  let daemonLog = '';

  const vigil = (more: string[]): Promise<RunResult> => runCliProcess([...args, ...more], env, 90_000);
  const identity = async (): Promise<{ deviceId: string; serial: string }> => JSON.parse((await vigil(['identity', '--json'])).stdout) as { deviceId: string; serial: string };
  const knownSerial = async (deviceId: string): Promise<string> => {
    const r = await cp.admin('GET', `/v1/admin/devices/${deviceId}`);
    return r.status === 200 ? r.body.toLowerCase() : '';
  };

  beforeAll(async () => {
    ca = await startStepCa({ claims: { defaultTLSCertDuration: '1h' } });
    dir = await mkdtemp(join(tmpdir(), 'vigil-e2e-renewal-'));
    cp = await startControlPlane(ca, dir, { reportIntervalSeconds: 3600 });
    env = isolatedEnv(join(dir, 'home'));
    await writeFile(
      join(dir, 'agent.json'),
      JSON.stringify({ identity: { keyStorage: 'file' }, reporting: { controlPlaneUrl: cp.url, debounceMs: 200, intervalSeconds: 3600 }, scan: { intervalSeconds: 3600 } }),
    );
    args = ['--config', join(dir, 'agent.json'), '--state-dir', join(dir, 'agent-state')];
    const enrolled = await vigil(['enroll', '--control-plane', cp.url, '--enrollment-secret', await cp.secret(), '--ca-url', ca.url, '--fingerprint', ca.rootFingerprint]);
    expect(enrolled.code, enrolled.stderr).toBe(0);
  }, 180_000);

  afterAll(async () => {
    daemon?.kill('SIGKILL');
    await cp.stop();
    await ca.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('reports with the new certificate within seconds of a renewal', async () => {
    daemon = spawn(process.execPath, [AGENT_CLI, ...args, 'daemon'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    daemon.stdout?.on('data', (d: Buffer) => (daemonLog += d.toString()));
    daemon.stderr?.on('data', (d: Buffer) => (daemonLog += d.toString()));
    const first = await identity();
    await waitFor(async () => (await knownSerial(first.deviceId)).includes(first.serial.toLowerCase()) || undefined, 60_000, `the first report:\n${daemonLog}`);

    const renewed = await vigil(['renew', '--force']);
    expect(renewed.code, renewed.stderr).toBe(0);
    const next = await identity();
    expect(next.serial).not.toBe(first.serial);
    const t0 = Date.now();
    await waitFor(async () => (await knownSerial(next.deviceId)).includes(next.serial.toLowerCase()) || undefined, 20_000, `the renewal to be reported:\n${daemonLog}`);
    expect(Date.now() - t0).toBeLessThan(15_000);
  }, 120_000);
});
