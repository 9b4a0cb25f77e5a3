import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTROL_PLANE_CLI, httpsCall, startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import { identityConfigSchema } from '../../src/config/sections/identity.js';
import { IdentityManager } from '../../src/identity/manager.js';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { CLI, isolatedEnv, runCliProcess, startCliProcess, tempDir, waitFor } from '../helpers.js';

/*
 * A device certificate revoked at a real step-ca 0.19: the built CLI reports it as `revoked` with the
 * command that fixes it, a daemon logs it once and stops asking the CA, and enrolling again clears it.
 */

async function revokeAtCa(ca: StepCa, serialHex: string): Promise<void> {
  const serial = BigInt(`0x${serialHex}`).toString(10);
  // What `step ca revoke <serial>` sends: a token for the serial, minted by the provisioner.
  const ott = await ca.token({ subject: serial, sans: [], audience: `${ca.url}/1.0/revoke` });
  const res = await httpsCall(`${ca.url}/1.0/revoke`, {
    method: 'POST',
    ca: ca.rootPem,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ serial, ott, reasonCode: 0, reason: 'test', passive: true }),
  });
  expect(res.status, res.body).toBe(200);
}

interface Shown {
  state: string;
  reason?: string;
  fix?: string;
  serial?: string;
}

describe.skipIf(!existsSync(CLI))('a device certificate revoked at the CA', () => {
  let ca: StepCa;
  let env: NodeJS.ProcessEnv;
  let stateDir: string;

  beforeAll(async () => {
    ca = await startStepCa({ claims: { defaultTLSCertDuration: '1h' } });
    stateDir = tempDir();
    env = isolatedEnv(tempDir(), { VIGIL_IDENTITY_KEY_STORAGE: 'file', VIGIL_IDENTITY_DOMAIN: 'example.com', VIGIL_IDENTITY_RENEW_JITTER: '0' });
  }, 120_000);

  afterAll(async () => {
    await ca.close();
  });

  const vigil = (...args: string[]) => runCliProcess(['--state-dir', stateDir, ...args], env);
  const identity = async (): Promise<Shown> => JSON.parse((await vigil('identity', '--json')).stdout) as Shown;
  const renewCalls = (): number => ca.logs().split('\n').filter((l) => l.includes('/1.0/renew')).length;

  async function token(): Promise<string> {
    const m = new IdentityManager({ stateDir, config: identityConfigSchema.parse({ domain: 'example.com' }) });
    const { request, tokenSans } = await m.requestedSubject();
    return ca.token({ subject: request.commonName, sans: tokenSans });
  }

  it('renew fails with one line saying revoked; identity, status and a daemon show it; enroll clears it', async () => {
    const enrolled = await vigil('enroll', '--ca-url', ca.url, '--fingerprint', ca.rootFingerprint, '--token', await token());
    expect(enrolled.code, enrolled.stderr).toBe(0);
    const { serial } = await identity();
    expect(serial).toMatch(/^[0-9A-F]+$/);
    await revokeAtCa(ca, serial ?? '');

    const renew = await vigil('renew', '--force');
    expect(renew.code).toBe(1);
    const errorLines = renew.stderr.split('\n').filter((l) => l.startsWith('vigil: '));
    expect(errorLines).toEqual([
      `vigil: the CA refused to renew certificate ${serial} (HTTP 401: The request lacked necessary authorization to be completed. Please see the certificate authority logs for more info.): it was revoked, or its provisioner no longer allows renewal; after an admin re-admits this device: vigil enroll --token <token>`,
    ]);

    const shown = await identity();
    expect(shown).toMatchObject({ state: 'revoked', serial, fix: 'after an admin re-admits this device: vigil enroll --token <token>' });
    expect(shown.reason).toMatch(new RegExp(`^the CA refused to renew certificate ${serial} \\(HTTP 401: .*\\): it was revoked`));
    const human = await vigil('identity');
    expect(human.stdout).toMatch(/^State: +revoked \(the CA refused to renew certificate [0-9A-F]+ .*\)\nFix: +after an admin re-admits this device: vigil enroll --token <token>\n/);
    expect(human.stdout).toMatch(/\nAn admin makes the token with: step ca token device-/);
    const status = JSON.parse((await vigil('status', '--json')).stdout) as { identity: Shown };
    expect(status.identity).toMatchObject({ state: 'revoked', fix: shown.fix });
    expect((await vigil('status')).stdout).toMatch(/\nIdentity: +revoked \(the CA refused .*\)\n {2}Fix: after an admin re-admits this device: vigil enroll --token <token>\n/);

    // Asking again cannot help: a second renew does not reach the CA.
    const callsBefore = renewCalls();
    expect((await vigil('renew', '--force')).code).toBe(1);

    // A daemon on this state dir logs it once and never asks the CA (with a renewal due every instant).
    const daemon = startCliProcess(['--state-dir', stateDir, 'daemon'], { ...env, VIGIL_IDENTITY_RENEW_FRACTION: '0.999', VIGIL_IDENTITY_RETRY_INITIAL_SECONDS: '1' });
    try {
      await waitFor(() => (/device certificate revoked/.test(daemon.output()) ? true : undefined), 20_000, 'the daemon to log the revocation');
      await new Promise((r) => setTimeout(r, 3000));
      expect(daemon.output().match(/device certificate revoked/g)).toHaveLength(1);
      expect(renewCalls()).toBe(callsBefore);
    } finally {
      const exited = new Promise((r) => daemon.child.once('exit', r));
      daemon.child.kill('SIGTERM');
      await exited;
    }

    const again = await vigil('enroll', '--token', await token());
    expect(again.code, again.stderr).toBe(0);
    const after = await identity();
    expect(after.state).toBe('valid');
    expect(after.serial).not.toBe(serial);
    expect(existsSync(join(stateDir, 'identity', 'revoked.json'))).toBe(false);
  }, 120_000);

  it('a daemon finds the refusal itself, logs it once at error level, and stops retrying', async () => {
    const { serial } = await identity();
    await revokeAtCa(ca, serial ?? '');
    const callsBefore = renewCalls();
    const daemon = startCliProcess(['--state-dir', stateDir, 'daemon'], { ...env, VIGIL_IDENTITY_RENEW_FRACTION: '0.999', VIGIL_IDENTITY_RETRY_INITIAL_SECONDS: '1' });
    try {
      await waitFor(async () => ((await identity()).state === 'revoked' ? true : undefined), 20_000, 'the daemon to record the revocation');
      await new Promise((r) => setTimeout(r, 4000));
      expect(daemon.output().match(/device certificate revoked/g)).toHaveLength(1);
      expect(daemon.output()).toMatch(/^vigil error: identity: device certificate revoked: the CA refused to renew certificate /m);
      expect(renewCalls() - callsBefore).toBe(1);
    } finally {
      const exited = new Promise((r) => daemon.child.once('exit', r));
      daemon.child.kill('SIGTERM');
      await exited;
    }
    const note = JSON.parse(await readFile(join(stateDir, 'identity', 'revoked.json'), 'utf8')) as { serial: string };
    expect(note.serial).toBe(serial);
  }, 60_000);
});

describe.skipIf(!existsSync(CLI) || !existsSync(CONTROL_PLANE_CLI))('the daemon tells the control plane that the CA refused the certificate', () => {
  let ca: StepCa;
  let cp: ControlPlane;
  let env: NodeJS.ProcessEnv;
  let args: string[];
  let stateDir: string;

  beforeAll(async () => {
    ca = await startStepCa({ claims: { defaultTLSCertDuration: '1h' } });
    const dir = tempDir();
    cp = await startControlPlane(ca, dir, { reportIntervalSeconds: 3600 });
    env = isolatedEnv(tempDir());
    stateDir = join(dir, 'agent-state');
    await writeFile(
      join(dir, 'agent.json'),
      JSON.stringify({ identity: { keyStorage: 'file', renewJitter: 0 }, reporting: { controlPlaneUrl: cp.url, debounceMs: 200 }, scan: { intervalSeconds: 3600 } }),
    );
    args = ['--config', join(dir, 'agent.json'), '--state-dir', stateDir];
  }, 180_000);

  afterAll(async () => {
    await cp.stop();
    await ca.close();
  });

  const vigil = (...more: string[]) => runCliProcess([...args, ...more], env, 90_000);
  const notices = (): number => cp.log().split('\n').filter((l) => l.includes('device reports that the CA refused to renew its certificate')).length;

  async function runDaemonFor(ms: number, until?: () => Promise<boolean>): Promise<string> {
    const daemon = startCliProcess([...args, 'daemon'], { ...env, VIGIL_IDENTITY_RENEW_FRACTION: '0.999' });
    try {
      if (until) await waitFor(async () => ((await until()) ? true : undefined), 30_000, 'the control plane to mark the device revoked');
      await new Promise((r) => setTimeout(r, ms));
      return daemon.output();
    } finally {
      const exited = new Promise((r) => daemon.child.once('exit', r));
      daemon.child.kill('SIGTERM');
      await exited;
    }
  }

  it('POSTs /v1/identity/revoked once per certificate, whether the daemon or the CLI found the refusal; readmit + enroll clears it', async () => {
    const enrolled = await vigil('enroll', '--control-plane', cp.url, '--enrollment-secret', await cp.secret(), '--ca-url', ca.url, '--fingerprint', ca.rootFingerprint);
    expect(enrolled.code, `${enrolled.stderr}\n${cp.log()}`).toBe(0);
    const { deviceId, serial } = JSON.parse((await vigil('identity', '--json')).stdout) as { deviceId: string; serial: string };
    await revokeAtCa(ca, serial);

    const decision = async (): Promise<{ compliant: boolean; state: string }> => {
      const r = await cp.admin('GET', `/v1/decision/${deviceId}`);
      return (JSON.parse(r.body) as { device: { compliant: boolean; state: string } }).device;
    };
    const out = await runDaemonFor(2000, async () => (await decision()).state === 'revoked');
    expect(await decision()).toMatchObject({ state: 'revoked', compliant: false });
    expect(notices()).toBe(1);
    expect(out).toMatch(new RegExp(`told the control plane that certificate ${serial} was refused by the CA`));
    const note = JSON.parse(await readFile(join(stateDir, 'identity', 'revoked.json'), 'utf8')) as { serial: string; reportedAt?: string };
    expect(note).toMatchObject({ serial, reportedAt: expect.any(String) as string });

    await runDaemonFor(3000);
    expect(notices()).toBe(1);

    // The admin re-admits the device; enrolling again clears the revoked state.
    const readmitted = await cp.admin('POST', `/v1/admin/devices/${deviceId}/readmit`);
    expect(readmitted.status, readmitted.body).toBeLessThan(300);
    const again = await vigil('enroll', '--control-plane', cp.url, '--enrollment-secret', await cp.secret(), '--ca-url', ca.url, '--fingerprint', ca.rootFingerprint);
    expect(again.code, `${again.stderr}\n${cp.log()}`).toBe(0);
    const renewed = JSON.parse((await vigil('identity', '--json')).stdout) as { state: string; serial: string };
    expect(renewed.state).toBe('valid');
    expect(existsSync(join(stateDir, 'identity', 'revoked.json'))).toBe(false);

    // This time the CLI finds the refusal while no daemon runs: the next daemon start tells the server.
    await revokeAtCa(ca, renewed.serial);
    expect((await vigil('renew', '--force')).code).toBe(1);
    await runDaemonFor(1000, async () => notices() === 2 && (await decision()).state === 'revoked');
    expect(await decision()).toMatchObject({ state: 'revoked', compliant: false });
  }, 120_000);
});
