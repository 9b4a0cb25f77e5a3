import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessLevelEventSchema } from '../../src/protocol/admin.js';
import { AGENT_CLI, CONTROL_PLANE_CLI, HARNESS_ADMIN_TOKEN, startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import { startPostgres, type PgServer } from '../harness/postgres.js';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { isolatedEnv, runCliProcess, waitFor, type RunResult } from '../helpers.js';
import { openSse } from '../helpers/https.js';

/*
 * A real `vigil daemon` against two control-plane instances (`serve --database`, no data dir) on one throwaway
 * PostgreSQL 15, with step-ca: it enrolls and reports at instance A, while an admin watches and acts at B.
 */

const built = existsSync(AGENT_CLI) && existsSync(CONTROL_PLANE_CLI);

describe.skipIf(!built)('a real agent on a PostgreSQL cluster (step-ca, two instances, the daemon)', () => {
  let ca: StepCa;
  let pgServer: PgServer;
  let dir: string;
  let a: ControlPlane;
  let b: ControlPlane;
  let env: NodeJS.ProcessEnv;
  let args: string[];
  let daemon: ChildProcess | undefined;
  let daemonLog = '';
  const vigil = (more: string[], timeoutMs = 90_000): Promise<RunResult> => runCliProcess([...args, ...more], env, timeoutMs);
  const reportCount = async (cp: ControlPlane, id: string): Promise<number> => {
    const r = await cp.admin('GET', `/v1/admin/devices/${id}/reports?limit=1000`);
    return r.status === 200 ? (JSON.parse(r.body) as { reports: unknown[] }).reports.length : 0;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vigil-pg-e2e-'));
    [ca, pgServer] = await Promise.all([startStepCa({ claims: { defaultTLSCertDuration: '1h' } }), startPostgres()]);
    const url = await pgServer.createDatabase();
    a = await startControlPlane(ca, dir, { database: url, reportIntervalSeconds: 3600 });
    b = await startControlPlane(ca, dir, { database: url, reportIntervalSeconds: 3600 });
    env = isolatedEnv(join(dir, 'home'));
    await writeFile(
      join(dir, 'agent.json'),
      JSON.stringify({ identity: { keyStorage: 'file' }, reporting: { controlPlaneUrl: a.url, debounceMs: 200 }, scan: { intervalSeconds: 3600 } }),
    );
    args = ['--config', join(dir, 'agent.json'), '--state-dir', join(dir, 'agent-state')];
  }, 180_000);

  afterAll(async () => {
    daemon?.kill('SIGKILL');
    await a.stop();
    await b.stop();
    await ca.close();
    await pgServer.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  it('enrolls and reports at A; B streams its events, and a re-check asked at B reaches the daemon connected to A', async () => {
    const events = openSse(ca.rootPem, `${b.url}/v1/events`, { token: HARNESS_ADMIN_TOKEN });
    expect(await events.ready).toBe(200);

    const enrolled = await vigil(['enroll', '--control-plane', a.url, '--enrollment-secret', await a.secret(), '--ca-url', ca.url, '--fingerprint', ca.rootFingerprint]);
    expect(enrolled.code, `${enrolled.stderr}\n${a.log()}`).toBe(0);
    const id = (JSON.parse((await vigil(['identity', '--json'])).stdout) as { deviceId: string }).deviceId;

    const proc = spawn(process.execPath, [AGENT_CLI, ...args, 'daemon'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    daemon = proc;
    proc.stdout.on('data', (d: Buffer) => (daemonLog += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (daemonLog += d.toString()));

    // The daemon's first report, taken by A, is an access-level event on B's stream.
    const first = await events.next((e) => e.event === 'access-level' && accessLevelEventSchema.parse(e.data).device === id && accessLevelEventSchema.parse(e.data).state === 'active', 60_000);
    expect(accessLevelEventSchema.parse(first.data).cause).toBe('report');
    const before = await reportCount(b, id);
    expect(before).toBeGreaterThanOrEqual(1);

    // Asked at B: A holds the daemon's directives stream and pushes the request; the daemon rescans and reports.
    const asked = await b.admin('POST', `/v1/admin/devices/${id}/recheck`);
    expect(asked.status, asked.body).toBe(202);
    await waitFor(async () => ((await reportCount(b, id)) > before ? true : undefined), 60_000, `the daemon's answer to the re-check:\n${daemonLog}`);
    // The report answered the request (it named it), so the pending re-check is cleared.
    await waitFor(
      async () => ((JSON.parse((await b.admin('GET', `/v1/admin/devices/${id}`)).body) as { directives: { recheck: unknown } }).directives.recheck === null ? true : undefined),
      10_000,
      'the re-check to be answered',
    );

    // Revoked at B: the event is on B's stream, and A's decision for the device is blocked.
    expect((await b.admin('POST', `/v1/admin/devices/${id}/revoke`)).status).toBe(200);
    await events.next((e) => e.event === 'access-level' && accessLevelEventSchema.parse(e.data).device === id && accessLevelEventSchema.parse(e.data).state === 'revoked', 10_000);
    const decision = JSON.parse((await a.admin('GET', `/v1/decision/${id}`)).body) as { device: { access_level: string } };
    expect(decision.device.access_level).toBe('blocked');
    events.close();
  }, 180_000);
});
