import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_CLI, CONTROL_PLANE_CLI, DIST, startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { isolatedEnv, runCliProcess, type RunResult } from '../helpers.js';

/*
 * The agent's outbox state (outbox/state.json) is lost or restored from an old backup: its report sequence
 * must not silently start over. Real step-ca, control plane and agent CLI.
 */

const built = existsSync(AGENT_CLI) && existsSync(CONTROL_PLANE_CLI);
/**
 * Whether the built control plane answers reports with `previousSeq`, which tells the agent what it had
 * from the device before. Read from the build, since the agent has no way to show an ack's fields: the
 * agent reacts to the field, and a control plane without it cannot give it anything to react to.
 */
const serverSendsPreviousSeq =
  built && readdirSync(join(DIST, 'src/control-plane')).some((f) => f.endsWith('.js') && readFileSync(join(DIST, 'src/control-plane', f), 'utf8').includes('previousSeq'));

interface Reported {
  reportId: string;
  seq: number;
  generatedAt: string;
}

describe.skipIf(!built)('the report sequence after the outbox state is lost', () => {
  let ca: StepCa;
  let cp: ControlPlane;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let args: string[];
  let deviceId = '';
  const outbox = (): string => join(dir, 'agent-state', 'outbox');

  const vigil = (more: string[], timeoutMs = 90_000): Promise<RunResult> => runCliProcess([...args, ...more], env, timeoutMs);
  const report = async (): Promise<RunResult> => {
    const res = await vigil(['report', '--once']);
    expect(res.code, `${res.stderr}\n${cp.log()}`).toBe(0);
    return res;
  };
  const reports = async (): Promise<Reported[]> => {
    const r = await cp.admin('GET', `/v1/admin/devices/${deviceId}/reports?limit=1000`);
    expect(r.status, r.body).toBe(200);
    return (JSON.parse(r.body) as { reports: Reported[] }).reports;
  };
  const seqs = async (): Promise<number[]> => (await reports()).map((r) => r.seq).sort((a, b) => a - b);

  beforeAll(async () => {
    ca = await startStepCa({ claims: { defaultTLSCertDuration: '1h' } });
    dir = await mkdtemp(join(tmpdir(), 'vigil-e2e-sequence-'));
    cp = await startControlPlane(ca, dir, { reportIntervalSeconds: 3600 });
    env = isolatedEnv(join(dir, 'home'));
    await writeFile(join(dir, 'agent.json'), JSON.stringify({ identity: { keyStorage: 'file' }, reporting: { controlPlaneUrl: cp.url } }));
    args = ['--config', join(dir, 'agent.json'), '--state-dir', join(dir, 'agent-state')];
    const enrolled = await vigil(['enroll', '--control-plane', cp.url, '--enrollment-secret', await cp.secret(), '--ca-url', ca.url, '--fingerprint', ca.rootFingerprint]);
    expect(enrolled.code, `${enrolled.stderr}\n${cp.log()}`).toBe(0);
    deviceId = (JSON.parse((await vigil(['identity', '--json'])).stdout) as { deviceId: string }).deviceId;
  }, 180_000);

  afterAll(async () => {
    await cp.stop();
    await ca.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('with reports still queued, the agent continues after them and says so', async () => {
    await report();
    await report();
    // Offline: the next report stays in the outbox.
    const port = Number(new URL(cp.url).port);
    await cp.stop();
    const offline = await vigil(['report', '--once', '--timeout', '2']);
    expect(offline.code).toBe(1);
    expect((await readdir(outbox())).filter((n) => n.startsWith('r-'))).toEqual(['r-0000000000000002.json']);
    await rm(join(outbox(), 'state.json'));
    cp = await startControlPlane(ca, dir, { reportIntervalSeconds: 3600, port });

    const res = await report();
    expect(res.stderr).toMatch(/outbox state is missing or unreadable but reports up to seq 2 are queued .*continuing at 3/);
    expect(res.stdout).toMatch(/1 earlier report\(s\) delivered too/);
    expect(await seqs()).toEqual([0, 1, 2, 3]);
  }, 180_000);

  it.skipIf(!serverSendsPreviousSeq)('with nothing queued, the control plane tells the agent, which warns once and continues past it', async () => {
    const before = (await reports()).length;
    await rm(join(outbox(), 'state.json'));

    const reset = await report();
    const warning = /report sequence went back: this agent sent seq 0 but the control plane had already received seq 3 from this device; the state dir was probably restored from a backup or its outbox state lost; continuing at 4/;
    expect(reset.stderr).toMatch(warning);
    expect(reset.stderr.split('\n').filter((l) => l.includes('report sequence went back'))).toHaveLength(1);
    const all = await reports();
    expect(all).toHaveLength(before + 1);
    const newest = all.reduce((a, b) => (a.generatedAt > b.generatedAt ? a : b));
    expect(newest.seq).toBe(0);
    // The verdict follows the report received last, not the highest seq.
    const detail = await cp.admin('GET', `/v1/admin/devices/${deviceId}`);
    expect((JSON.parse(detail.body) as { latestReport: { generatedAt: string } }).latestReport.generatedAt).toBe(newest.generatedAt);

    const next = await report();
    expect(next.stderr).not.toMatch(/went back/);
    expect(await seqs()).toEqual([0, 0, 1, 2, 3, 4]);
  }, 180_000);
});
