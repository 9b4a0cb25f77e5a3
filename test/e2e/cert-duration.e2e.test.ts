import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_CLI, CONTROL_PLANE_CLI, startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { isolatedEnv, runCliProcess } from '../helpers.js';

/*
 * The administrator sets the device certificate lifetime at the control plane (--device-cert-duration); the
 * agent asks step-ca for it. Real step-ca, control plane and agent CLI.
 */

const built = existsSync(AGENT_CLI) && existsSync(CONTROL_PLANE_CLI);

describe.skipIf(!built)('device certificate lifetime set by the admin', () => {
  let ca: StepCa;
  let cp: ControlPlane;
  let dir: string;

  beforeAll(async () => {
    // The provisioner's default (10 minutes) is what a certificate would last without the setting.
    ca = await startStepCa({ claims: { defaultTLSCertDuration: '10m', maxTLSCertDuration: '1h' } });
    dir = await mkdtemp(join(tmpdir(), 'vigil-e2e-duration-'));
    cp = await startControlPlane(ca, dir, { reportIntervalSeconds: 3600, extraArgs: ['--device-cert-duration', '3m'] });
  }, 180_000);

  afterAll(async () => {
    await cp.stop();
    await ca.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('an enrolled certificate lasts what --device-cert-duration says, not the provisioner default, and so do its renewals', async () => {
    const env = isolatedEnv(join(dir, 'home'), { VIGIL_IDENTITY_KEY_STORAGE: 'file' });
    const vigil = (...args: string[]) => runCliProcess(['--state-dir', join(dir, 'agent-state'), ...args], env, 90_000);
    const enrolled = await vigil('enroll', '--control-plane', cp.url, '--enrollment-secret', await cp.secret(), '--ca-url', ca.url, '--fingerprint', ca.rootFingerprint);
    expect(enrolled.code, `${enrolled.stderr}\n${cp.log()}`).toBe(0);
    const lifetime = async (): Promise<{ serial: string; ms: number }> => {
      const { serial, notBefore, notAfter } = JSON.parse((await vigil('identity', '--json')).stdout) as { serial: string; notBefore: string; notAfter: string };
      return { serial, ms: Date.parse(notAfter) - Date.parse(notBefore) };
    };
    const enrolledCert = await lifetime();
    // step-ca counts the lifetime from now and backdates NotBefore by the harness's 1 s.
    expect(enrolledCert.ms).toBe(3 * 60_000 + 1000);
    // A renewal keeps the duration (step-ca copies it from the certificate), not the provisioner default.
    const renewed = await vigil('renew', '--force');
    expect(renewed.code, renewed.stderr).toBe(0);
    const renewedCert = await lifetime();
    expect(renewedCert.serial).not.toBe(enrolledCert.serial);
    expect(renewedCert.ms).toBe(3 * 60_000 + 1000);
  }, 120_000);

  it('refuses a duration that is not one', async () => {
    const res = await promisify(execFile)(process.execPath, [CONTROL_PLANE_CLI, 'serve', '--data-dir', join(dir, 'other'), '--device-cert-duration', '30 days']).then(
      () => ({ code: 0, stderr: '' }),
      (err: unknown) => err as { code: number; stderr: string },
    );
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/deviceCertDuration: a duration such as 720h/);
  });
});
