import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_CLI, CONTROL_PLANE_CLI, startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { isolatedEnv, runCliProcess, startCliProcess, waitFor } from '../helpers.js';

/*
 * Silent enrollment: a daemon whose config names the control plane, the CA, its root fingerprint and the
 * enrollment secret file enrolls by itself, with nobody running `vigil enroll`. Real step-ca, control plane
 * and agent processes. Every laptop here has the same device ID (this host's), so each test has its own
 * control plane.
 */

const built = existsSync(AGENT_CLI) && existsSync(CONTROL_PLANE_CLI);

interface World {
  ca: StepCa;
  cp: ControlPlane;
  dir: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

async function world(certDuration: string, secretUses: number): Promise<World> {
  const ca = await startStepCa({ claims: { defaultTLSCertDuration: certDuration } });
  const dir = await mkdtemp(join(tmpdir(), 'vigil-e2e-silent-'));
  const cp = await startControlPlane(ca, dir, { reportIntervalSeconds: 3600 });
  await writeFile(join(dir, 'secret'), `${await cp.secret(secretUses)}\n`, { mode: 0o600 });
  // What MDM would deploy as managed config; a config file here.
  await writeFile(
    join(dir, 'agent.json'),
    JSON.stringify({
      identity: { keyStorage: 'file', renewJitter: 0, caUrl: ca.url, fingerprint: ca.rootFingerprint },
      reporting: { controlPlaneUrl: cp.url, enrollmentSecretFile: join(dir, 'secret'), debounceMs: 200 },
      scan: { intervalSeconds: 3600 },
    }),
  );
  return { ca, cp, dir, args: ['--config', join(dir, 'agent.json'), '--state-dir', join(dir, 'agent-state')], env: isolatedEnv(join(dir, 'home')) };
}

async function close(w: World | undefined): Promise<void> {
  if (!w) return;
  await w.cp.stop();
  await w.ca.close();
  await rm(w.dir, { recursive: true, force: true });
}

async function stop(d: ReturnType<typeof startCliProcess>): Promise<void> {
  const exited = new Promise((r) => d.child.once('exit', r));
  d.child.kill('SIGTERM');
  await exited;
}

const reportsOf = async (cp: ControlPlane, deviceId: string): Promise<number> => {
  const r = await cp.admin('GET', `/v1/admin/devices/${deviceId}/reports?limit=100`);
  return r.status === 200 ? (JSON.parse(r.body) as { reports: unknown[] }).reports.length : 0;
};

interface Shown {
  state: string;
  deviceId: string;
  serial?: string;
  notAfter?: string;
}

describe.skipIf(!built)('silent enrollment by the daemon', () => {
  let fresh: World | undefined;
  afterAll(() => close(fresh));

  it('a daemon with such a config and no identity enrolls and reports within seconds', async () => {
    fresh = await world('1h', 1);
    const w = fresh;
    const identity = async (): Promise<Shown> => JSON.parse((await runCliProcess([...w.args, 'identity', '--json'], w.env)).stdout) as Shown;
    expect((await identity()).state).toBe('not-enrolled');
    const started = Date.now();
    const daemon = startCliProcess([...w.args, 'daemon'], w.env);
    try {
      await waitFor(() => daemon.output().includes(`reporting to ${w.cp.url}`), 20_000, `the daemon to enroll and report:\n${daemon.output()}\n${w.cp.log()}`);
      const { deviceId, state } = await identity();
      expect(state).toBe('valid');
      await waitFor(async () => ((await reportsOf(w.cp, deviceId)) > 0 ? true : undefined), 15_000, 'a report at the control plane');
      expect(Date.now() - started).toBeLessThan(30_000);
      expect(daemon.output()).toMatch(/enrolled with the enrollment secret/);
      expect(daemon.output()).not.toMatch(/enrollment failed/);
    } finally {
      await stop(daemon);
    }
  }, 120_000);
});

describe.skipIf(!built)('a laptop whose certificate expired, under a provisioner without renewal after expiry', () => {
  let w: World;
  beforeAll(async () => {
    // 65 s certificates, so that the refusal is step-ca's allowRenewalAfterExpiry check and not its minute of slack.
    w = await world('65s', 2);
  }, 180_000);
  afterAll(() => close(w));

  it('re-enrolls by itself with the secret, proving its key with the expired certificate, and reports again', async () => {
    const vigil = (...more: string[]) => runCliProcess([...w.args, ...more], w.env, 90_000);
    const identity = async (): Promise<Shown> => JSON.parse((await vigil('identity', '--json')).stdout) as Shown;
    const enrolled = await vigil('enroll');
    expect(enrolled.code, `${enrolled.stderr}\n${w.cp.log()}`).toBe(0);
    const first = await vigil('report', '--once');
    expect(first.code, first.stderr).toBe(0);
    const before = await identity();
    const reportsBefore = await reportsOf(w.cp, before.deviceId);
    expect(reportsBefore).toBe(1);

    // The laptop is off past its certificate's expiry.
    await waitFor(() => Date.now() > Date.parse(before.notAfter ?? '') + 1000, 90_000, 'the certificate to expire');
    const daemon = startCliProcess([...w.args, 'daemon'], w.env);
    try {
      await waitFor(async () => ((await reportsOf(w.cp, before.deviceId)) > reportsBefore ? true : undefined), 30_000, `a report after re-enrolling:\n${daemon.output()}\n${w.cp.log()}`);
      const after = await identity();
      expect(after).toMatchObject({ state: 'valid', deviceId: before.deviceId });
      expect(after.serial).not.toBe(before.serial);
      const out = daemon.output();
      expect(out).toMatch(/device certificate needs enrollment: the CA refused to renew the expired certificate/);
      expect(out).toMatch(/enrolled with the enrollment secret/);
      expect(out).not.toMatch(/enrollment failed/);
      const decision = JSON.parse((await w.cp.admin('GET', `/v1/decision/${before.deviceId}`)).body) as { device: { state: string } };
      expect(decision.device.state).not.toBe('revoked');
      expect(w.cp.log()).not.toMatch(/conflict/i);
    } finally {
      await stop(daemon);
    }
  }, 180_000);
});
