import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_CLI, CONTROL_PLANE_CLI, startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { isolatedEnv, runCliProcess, startCliProcess, waitFor } from '../helpers.js';

/*
 * After a control-plane outage long enough for the delivery backoff to grow, the queued reports go out as
 * soon as the server is back (the directive stream reconnecting says so), not when the backoff runs out.
 * Real processes: step-ca, the control plane (stopped and restarted on the same port and data) and the daemon.
 */

const built = existsSync(AGENT_CLI) && existsSync(CONTROL_PLANE_CLI);
/** Long enough for several failed attempts: the backoff (1 s base, doubling) reaches 16-32 s. */
const OUTAGE_MS = 50_000;

describe.skipIf(!built)('the outbox drains as soon as the control plane is back', () => {
  let ca: StepCa;
  let cp: ControlPlane;
  let port: number;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let args: string[];
  let daemon: ReturnType<typeof startCliProcess> | undefined;

  const outboxPending = async (): Promise<number> => {
    const names = await readdir(join(dir, 'agent-state', 'outbox')).catch(() => []);
    return names.filter((n) => /^r-\d+\.json$/.test(n)).length;
  };

  beforeAll(async () => {
    ca = await startStepCa({ claims: { defaultTLSCertDuration: '1h' } });
    dir = await mkdtemp(join(tmpdir(), 'vigil-e2e-drain-'));
    // The shortest heartbeat the protocol allows, so reports queue up during the outage.
    cp = await startControlPlane(ca, dir, { reportIntervalSeconds: 10 });
    port = Number(new URL(cp.url).port);
    env = isolatedEnv(join(dir, 'home'));
    await writeFile(
      join(dir, 'agent.json'),
      JSON.stringify({ identity: { keyStorage: 'file' }, reporting: { controlPlaneUrl: cp.url, intervalSeconds: 10, debounceMs: 200 }, scan: { intervalSeconds: 3600 } }),
    );
    args = ['--config', join(dir, 'agent.json'), '--state-dir', join(dir, 'agent-state')];
    const enrolled = await runCliProcess(
      [...args, 'enroll', '--control-plane', cp.url, '--enrollment-secret', await cp.secret(), '--ca-url', ca.url, '--fingerprint', ca.rootFingerprint],
      env,
      90_000,
    );
    expect(enrolled.code, `${enrolled.stderr}\n${cp.log()}`).toBe(0);
  }, 180_000);

  afterAll(async () => {
    daemon?.child.kill('SIGKILL');
    await cp.stop();
    await ca.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('delivers the queued reports within seconds of the directive stream reconnecting', async () => {
    daemon = startCliProcess([...args, 'daemon'], env);
    const log = daemon.output;
    await waitFor(() => log().includes('reporting to'), 30_000, 'the daemon to start reporting');
    const { deviceId } = JSON.parse((await runCliProcess([...args, 'identity', '--json'], env)).stdout) as { deviceId: string };
    await waitFor(async () => {
      const r = await cp.admin('GET', `/v1/admin/devices/${deviceId}/reports?limit=10`);
      return r.status === 200 && (JSON.parse(r.body) as { reports: unknown[] }).reports.length > 0 ? true : undefined;
    }, 30_000, `the first report:\n${log()}`);

    await cp.stop();
    const stoppedAt = Date.now();
    await waitFor(async () => ((await outboxPending()) >= 3 ? true : undefined), OUTAGE_MS, `reports to queue during the outage:\n${log()}`);
    await new Promise((r) => setTimeout(r, Math.max(0, OUTAGE_MS - (Date.now() - stoppedAt))));
    const retries = log().match(/report not delivered; will retry/g)?.length ?? 0;
    expect(retries, log()).toBeGreaterThanOrEqual(4);
    const queued = await outboxPending();
    const lastBackoff = [...log().matchAll(/retryInMs=(\d+)/g)].at(-1)?.[1];

    const before = log().length;
    cp = await startControlPlane(ca, dir, { reportIntervalSeconds: 10, port });
    const upAt = Date.now();
    // Both waits run at once: whichever of the stream and the delivery loop reaches the server first wakes the other.
    const [reconnectedAt, drainedAt] = await Promise.all([
      // The stream's backoff is long by now, but it probes with bare TCP connections every 5 s meanwhile.
      waitFor(() => (log().slice(before).includes('directive stream reconnected') ? Date.now() : undefined), 60_000, `the directive stream to reconnect:\n${log()}`),
      waitFor(async () => ((await outboxPending()) === 0 ? Date.now() : undefined), 60_000, `the outbox to drain:\n${log()}`),
    ]);

    const afterStream = drainedAt - reconnectedAt;
    const afterRestart = drainedAt - upAt;
    process.stdout.write(
      `outbox drain after a ${Math.round(OUTAGE_MS / 1000)} s outage: ${queued} reports, ${afterStream} ms after the directive stream reconnected, ${afterRestart} ms after the control plane was up again (last delivery backoff before the restart: ${lastBackoff ?? '?'} ms)\n`,
    );
    expect(afterStream).toBeLessThan(5000);
    // A probe every 5 s (±20 %), a handshake, and the reports themselves.
    expect(afterRestart).toBeLessThan(10_000);
  }, 330_000);
});
