import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_CLI, CONTROL_PLANE_CLI, startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { isolatedEnv, runCliProcess, type RunResult } from '../helpers.js';

/*
 * A 429 from the control plane during enrollment, with real processes: the agent says when it retries, waits
 * as long as the server asks, and enrolls by itself.
 */

const built = existsSync(AGENT_CLI) && existsSync(CONTROL_PLANE_CLI);

describe.skipIf(!built)('enrollment rate limits (step-ca, control plane and agent as real processes)', () => {
  let ca: StepCa;
  let cp: ControlPlane;
  let dir: string;
  let vigil: (args: string[]) => Promise<RunResult>;

  beforeAll(async () => {
    ca = await startStepCa({ claims: { defaultTLSCertDuration: '1h' } });
    dir = await mkdtemp(join(tmpdir(), 'vigil-e2e-enroll-limit-'));
    // Two enrollments a minute per device ID; many laptops behind one address are not limited (see
    // test/control-plane/control-plane.test.ts), one device ID enrolling over and over is.
    await writeFile(join(dir, 'cp.json'), JSON.stringify({ enrollPerDevicePerMinute: 2 }));
    cp = await startControlPlane(ca, dir, { extraArgs: ['--config', join(dir, 'cp.json')] });
    await writeFile(join(dir, 'agent.json'), JSON.stringify({ identity: { keyStorage: 'file' } }));
    const env = isolatedEnv(join(dir, 'home'));
    vigil = (args) => runCliProcess(['--config', join(dir, 'agent.json'), '--state-dir', join(dir, 'agent-state'), ...args], env, 150_000);
  }, 180_000);

  afterAll(async () => {
    await cp.stop();
    await ca.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('the agent waits out a 429 as the server asks, says so, and enrolls by itself', async () => {
    const enroll = async (): Promise<RunResult> =>
      vigil(['enroll', '--control-plane', cp.url, '--enrollment-secret', await cp.secret(), '--ca-url', ca.url, '--fingerprint', ca.rootFingerprint]);
    for (let i = 0; i < 2; i++) {
      const r = await enroll();
      expect(r.code, r.stderr).toBe(0);
      // Unenrolling tells the control plane, which lets this device enroll again.
      expect((await vigil(['unenroll'])).code).toBe(0);
    }
    const started = Date.now();
    const third = await enroll();
    expect(third.code, third.stderr).toBe(0);
    expect(third.stderr).toMatch(/too many enrollments for device \S+; retry in \d+ s; retrying in \d+ s/);
    const waited = Date.now() - started;
    process.stdout.write(`enrollment waited ${waited} ms for the per-device limit\n`);
    expect(waited).toBeGreaterThan(10_000);
  }, 180_000);
});
