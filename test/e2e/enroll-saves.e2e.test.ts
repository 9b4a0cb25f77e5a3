import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_CLI, CONTROL_PLANE_CLI, startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { isolatedEnv, runCliProcess, startCliProcess, waitFor, type RunResult } from '../helpers.js';

/*
 * `vigil enroll` with flags only saves the control-plane URL, CA URL and root fingerprint in the state dir,
 * so `vigil report --once` and `vigil daemon` work next without any config file, as after `step ca
 * bootstrap`. Real step-ca, control plane and agent CLI. The one setting given (by environment) is
 * identity.keyStorage=file: this host has no keychain session, and it has nothing to do with servers.
 */

const built = existsSync(AGENT_CLI) && existsSync(CONTROL_PLANE_CLI);

describe.skipIf(!built)('enroll remembers what it was given', () => {
  let ca: StepCa;
  let cp: ControlPlane;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let stateDir: string;
  let saved: string;

  const vigil = (more: string[], timeoutMs = 90_000): Promise<RunResult> => runCliProcess(['--state-dir', stateDir, ...more], env, timeoutMs);

  beforeAll(async () => {
    ca = await startStepCa({ claims: { defaultTLSCertDuration: '1h' } });
    dir = await mkdtemp(join(tmpdir(), 'vigil-e2e-enroll-saves-'));
    cp = await startControlPlane(ca, dir, { reportIntervalSeconds: 3600 });
    env = isolatedEnv(join(dir, 'home'), { VIGIL_IDENTITY_KEY_STORAGE: 'file' });
    stateDir = join(dir, 'agent-state');
    saved = join(stateDir, 'enrollment.json');
  }, 180_000);

  afterAll(async () => {
    await cp.stop();
    await ca.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('a refused enrollment saves nothing', async () => {
    const res = await vigil(['enroll', '--control-plane', cp.url, '--enrollment-secret', 'not-the-secret', '--ca-url', ca.url, '--fingerprint', ca.rootFingerprint]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/enrollment secret is not valid/);
    expect(existsSync(saved)).toBe(false);
    // Nor is the CA root pinned: that happens with the certificate, or not at all.
    expect(await readdir(join(stateDir, 'identity')).catch(() => [])).toEqual([]);
  }, 120_000);

  it('after enrolling with flags only, report --once and the daemon need no config', async () => {
    const before = await vigil(['report', '--once']);
    expect(before.code).toBe(2);
    expect(before.stderr).toMatch(/report needs reporting\.controlPlaneUrl/);

    const secret = await cp.secret();
    const enrolled = await vigil(['enroll', '--control-plane', cp.url, '--enrollment-secret', secret, '--ca-url', ca.url, '--fingerprint', ca.rootFingerprint]);
    expect(enrolled.code, `${enrolled.stderr}\n${cp.log()}`).toBe(0);
    const text = await readFile(saved, 'utf8');
    expect(JSON.parse(text)).toEqual({ reporting: { controlPlaneUrl: cp.url }, identity: { caUrl: ca.url, fingerprint: ca.rootFingerprint } });
    expect(text).not.toContain(secret);

    const shown = JSON.parse((await vigil(['config', 'show', '--json'])).stdout) as { sources: Record<string, string> };
    expect(shown.sources['reporting.controlPlaneUrl']).toBe(`enrollment (${saved})`);
    expect(shown.sources['identity.fingerprint']).toBe(`enrollment (${saved})`);

    const report = await vigil(['report', '--once']);
    expect(report.code, report.stderr).toBe(0);
    expect(report.stdout).toMatch(/accepted; access level/);
    const { deviceId } = JSON.parse((await vigil(['identity', '--json'])).stdout) as { deviceId: string };
    const count = async (): Promise<number> => {
      const r = await cp.admin('GET', `/v1/admin/devices/${deviceId}/reports?limit=100`);
      expect(r.status, r.body).toBe(200);
      return (JSON.parse(r.body) as { reports: unknown[] }).reports.length;
    };
    expect(await count()).toBe(1);

    const daemon = startCliProcess(['--state-dir', stateDir, 'daemon'], env);
    try {
      await waitFor(() => daemon.output().includes(`reporting to ${cp.url}`), 30_000, `the daemon to report:\n${daemon.output()}`);
      await waitFor(async () => ((await count()) >= 2 ? true : undefined), 30_000, `a report from the daemon:\n${daemon.output()}`);
    } finally {
      const exited = new Promise((r) => daemon.child.once('exit', r));
      daemon.child.kill('SIGTERM');
      await exited;
    }
  }, 180_000);

  it('a corrupt saved file is a one-line error naming the file (and the key), exit 2', async () => {
    const good = await readFile(saved, 'utf8');
    try {
      await writeFile(saved, good.slice(0, good.length / 2));
      const torn = await vigil(['report', '--once']);
      expect(torn.code).toBe(2);
      expect(torn.stderr.trim().split('\n')).toHaveLength(1);
      expect(torn.stderr).toContain(`${saved}: invalid JSON`);

      await writeFile(saved, JSON.stringify({ reporting: { controlPlaneUrl: 'http://127.0.0.1:1' } }));
      const bad = await vigil(['report', '--once']);
      expect(bad.code).toBe(2);
      expect(bad.stderr.trim().split('\n')).toHaveLength(1);
      expect(bad.stderr).toContain(`${saved}: reporting.controlPlaneUrl:`);
    } finally {
      await writeFile(saved, good);
    }
  }, 60_000);

  it('a daemon started with no config before enrollment starts reporting once enroll saves the control plane', async () => {
    const fresh = join(dir, 'fresh-state');
    // A fresh state dir on this machine is a reinstalled laptop: the same hardware-derived ID, without the key
    // the control plane knows. Taking the ID over needs an admin's permission.
    const known = JSON.parse((await vigil(['identity', '--json'])).stdout) as { deviceId: string };
    expect((await cp.admin('POST', `/v1/admin/devices/${known.deviceId}/allow-reenroll`)).status).toBe(204);
    const daemon = startCliProcess(['--state-dir', fresh, 'daemon'], env);
    try {
      await waitFor(() => daemon.output().includes('daemon started'), 30_000, `the daemon to start:\n${daemon.output()}`);
      const enrolled = await runCliProcess(
        ['--state-dir', fresh, 'enroll', '--control-plane', cp.url, '--enrollment-secret', await cp.secret(), '--ca-url', ca.url, '--fingerprint', ca.rootFingerprint],
        env,
        90_000,
      );
      expect(enrolled.code, enrolled.stderr).toBe(0);
      const { deviceId } = JSON.parse((await runCliProcess(['--state-dir', fresh, 'identity', '--json'], env)).stdout) as { deviceId: string };
      await waitFor(() => daemon.output().includes(`reporting to ${cp.url}`), 30_000, `the daemon to start reporting:\n${daemon.output()}`);
      // Enrolling again registered the device anew; the daemon's first scan is its report.
      await waitFor(async () => {
        const r = await cp.admin('GET', `/v1/admin/devices/${deviceId}`);
        return r.status === 200 && (JSON.parse(r.body) as { latestReport: unknown }).latestReport !== null ? true : undefined;
      }, 30_000, `a report from the daemon:\n${daemon.output()}`);
      expect(daemon.child.exitCode).toBeNull();
    } finally {
      const exited = new Promise((r) => daemon.child.once('exit', r));
      daemon.child.kill('SIGTERM');
      await exited;
    }
  }, 180_000);
});
