import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_CLI, CONTROL_PLANE_CLI, httpsCall, issueDeviceCert, startControlPlane, type ControlPlane, type HttpResult } from '../harness/control-plane.js';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { isolatedEnv, runCliProcess, type RunResult } from '../helpers.js';
import { sampleReport } from '../helpers/report.js';

/*
 * Security tests of the verdict with real processes: step-ca, the control plane from its CLI, the agent from
 * its CLI. The attacker is this test: it enrolls with a secret like any device, gets a real certificate from
 * step-ca, and then lies in its reports or tries to become another device.
 */

const execFileP = promisify(execFile);
const built = existsSync(AGENT_CLI) && existsSync(CONTROL_PLANE_CLI);

interface DeviceTls {
  id: string;
  certPem: string;
  keyPem: string;
}

describe.skipIf(!built)('the verdict never fails open (step-ca, control plane and agent as real processes)', () => {
  let ca: StepCa;
  let cp: ControlPlane;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let args: string[];
  let agentDevice = '';

  const vigil = (more: string[], timeoutMs = 90_000): Promise<RunResult> => runCliProcess([...args, ...more], env, timeoutMs);
  const asDevice = (tls: DeviceTls, method: string, path: string, body?: unknown): Promise<HttpResult> =>
    httpsCall(`${cp.url}${path}`, {
      method,
      ca: ca.rootPem,
      cert: tls.certPem,
      key: tls.keyPem,
      agent: false,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  const decision = async (id: string): Promise<{ compliant: boolean; access_level: string; state: string; checks: Record<string, { status: string; reason?: string }> }> => {
    const r = await cp.admin('GET', `/v1/decision/${id}`);
    expect(r.status, r.body).toBe(200);
    return (JSON.parse(r.body) as { device: Awaited<ReturnType<typeof decision>> }).device;
  };
  const secretUses = async (id: string): Promise<number | undefined> =>
    (JSON.parse((await cp.admin('GET', '/v1/admin/secrets')).body) as { secrets: { id: string; usesLeft: number }[] }).secrets.find((s) => s.id === id)?.usesLeft;
  const newSecret = async (uses = 1): Promise<{ id: string; secret: string }> => {
    const r = await cp.admin('POST', '/v1/admin/secrets', { uses });
    expect(r.status).toBe(201);
    return JSON.parse(r.body) as { id: string; secret: string };
  };

  /** What any holder of an enrollment secret can do: enroll an ID, then get its certificate from step-ca. */
  const enrollAs = async (id: string): Promise<DeviceTls> => {
    const r = await httpsCall(`${cp.url}/v1/enroll`, {
      method: 'POST',
      ca: ca.rootPem,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ protocolVersion: 1, enrollmentSecret: (await newSecret()).secret, deviceId: id, facts: { ...sampleReport().device, hostname: `host-${id}` } }),
    });
    expect(r.status, r.body).toBe(200);
    return { id, ...(await issueDeviceCert(ca, dir, id, JSON.parse(r.body) as { ott: string; subject: string; sans: string[] })) };
  };

  const report = (seq: number, posture = sampleReport()) => ({ protocolVersion: 1, reportId: randomUUID(), seq, dropped: 0, report: posture });

  beforeAll(async () => {
    ca = await startStepCa({ claims: { defaultTLSCertDuration: '1h' } });
    dir = await mkdtemp(join(tmpdir(), 'vigil-e2e-verdict-'));
    cp = await startControlPlane(ca, dir, { reportIntervalSeconds: 3600 });
    env = isolatedEnv(join(dir, 'home'));
    await writeFile(join(dir, 'agent.json'), JSON.stringify({ identity: { keyStorage: 'file' }, reporting: { controlPlaneUrl: cp.url }, scan: { intervalSeconds: 3600 } }));
    args = ['--config', join(dir, 'agent.json'), '--state-dir', join(dir, 'agent-state')];
    const secret = await cp.secret();
    const enrolled = await vigil(['enroll', '--control-plane', cp.url, '--enrollment-secret', secret, '--ca-url', ca.url, '--fingerprint', ca.rootFingerprint]);
    expect(enrolled.code, `${enrolled.stderr}\n${cp.log()}`).toBe(0);
    agentDevice = (JSON.parse((await vigil(['identity', '--json'])).stdout) as { deviceId: string }).deviceId;
    const first = await vigil(['report', '--once']);
    expect(first.code, first.stderr).toBe(0);
  }, 180_000);

  afterAll(async () => {
    await cp.stop();
    await ca.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('a report that leaves out disk-encryption and os-patched, sent with a real device certificate, is not compliant', async () => {
    const dev = await enrollAs('e2e-forged-1');
    const honest = sampleReport();
    const forged = { ...honest, accessLevel: 'full' as const, reasons: [], results: honest.results.filter((r) => r.id !== 'disk-encryption' && r.id !== 'os-patched') };
    const r = await asDevice(dev, 'POST', '/v1/reports', report(1, forged));
    expect(r.status, r.body).toBe(200);
    expect((JSON.parse(r.body) as { accessLevel: string }).accessLevel).not.toBe('full');
    const d = await decision(dev.id);
    expect(d.compliant).toBe(false);
    expect(d.checks['disk-encryption']).toMatchObject({ status: 'unknown', reason: 'not in the report' });
    expect(d.checks['os-patched']).toMatchObject({ status: 'unknown' });
  }, 60_000);

  it('a seq far ahead does not freeze the verdict: the reports after it move it', async () => {
    const dev = await enrollAs('e2e-seqjump-1');
    expect((await asDevice(dev, 'POST', '/v1/reports', report(1))).status).toBe(200);
    expect((await asDevice(dev, 'POST', '/v1/reports', report(9_007_199_254_740_991))).status).toBe(200);
    expect((await decision(dev.id)).compliant).toBe(true);
    expect((await asDevice(dev, 'POST', '/v1/reports', report(2, sampleReport({ failing: ['disk-encryption'] })))).status).toBe(200);
    expect(await decision(dev.id)).toMatchObject({ compliant: false, access_level: 'blocked' });
    expect(cp.log()).toMatch(/report sequence (jumped|went back)/);
  }, 60_000);

  it('the server refuses a policy with an unknown check id with the words the agent uses, and keeps its policy', async () => {
    const current = JSON.parse((await cp.admin('GET', '/v1/policy')).body) as Record<string, unknown>;
    const bad = { ...current, version: 'typo-1', checks: { 'disk-encrypted': 'critical' } };
    const r = await cp.admin('PUT', '/v1/admin/policy', bad);
    expect(r.status).toBe(400);
    const serverSays = (JSON.parse(r.body) as { message: string }).message;
    expect(JSON.parse((await cp.admin('GET', '/v1/policy')).body)).toEqual(current);
    // The agent refuses the same document with the same words.
    await writeFile(join(dir, 'typo-policy.json'), JSON.stringify(bad));
    await writeFile(join(dir, 'agent-typo.json'), JSON.stringify({ policyFile: join(dir, 'typo-policy.json') }));
    const agent = await runCliProcess(['--config', join(dir, 'agent-typo.json'), '--state-dir', join(dir, 'typo-state'), 'check'], env);
    expect(agent.code).toBe(2);
    const agentSays = agent.stderr.trim().split('\n').find((l) => l.includes('unknown check id')) ?? '';
    expect(serverSays.replace(/^policy: /, '')).toBe(agentSays.slice(agentSays.indexOf('checks.')));
  }, 60_000);

  it('a valid enrollment secret does not let anyone take over an enrolled device', async () => {
    const before = await decision(agentDevice);
    const s = await newSecret(5);
    const r = await httpsCall(`${cp.url}/v1/enroll`, {
      method: 'POST',
      ca: ca.rootPem,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ protocolVersion: 1, enrollmentSecret: s.secret, deviceId: agentDevice, facts: { ...sampleReport().device, hostname: 'attacker' } }),
    });
    expect(r.status, r.body).toBe(409);
    expect(await secretUses(s.id)).toBe(5);
    const detail = JSON.parse((await cp.admin('GET', `/v1/admin/devices/${agentDevice}`)).body) as { device: { hostname: string } };
    expect(detail.device.hostname).not.toBe('attacker');
    expect(await decision(agentDevice)).toEqual(before);
    expect(cp.log()).toMatch(/"level":"warn".*enrollment refused|enrollment refused.*"level":"warn"|warn.*enrollment refused/);
    // The agent itself still reports.
    expect((await vigil(['report', '--once'])).code).toBe(0);
  }, 60_000);

  it('revoking through the control plane revokes the certificate at step-ca; re-admitted, the agent enrolls again', async () => {
    const admin = ['--url', cp.url, '--admin-token-file', join(dir, 'admin-token'), '--ca-root', join(dir, 'root.crt')];
    const revoked = await execFileP(process.execPath, [CONTROL_PLANE_CLI, 'device', 'revoke', agentDevice, ...admin]);
    expect(revoked.stdout).toContain('certificate at the CA: revoked');
    expect(await decision(agentDevice)).toMatchObject({ state: 'revoked', compliant: false });
    // step-ca itself refuses to renew it now.
    const renew = await vigil(['renew', '--force']);
    expect(renew.code).not.toBe(0);
    expect(renew.stderr).toMatch(/HTTP 401|revoked/);
    const refused = await vigil(['report', '--once']);
    expect(refused.code).toBe(1);

    await execFileP(process.execPath, [CONTROL_PLANE_CLI, 'device', 'readmit', agentDevice, ...admin]);
    const again = await vigil(['enroll', '--control-plane', cp.url, '--enrollment-secret', await cp.secret(), '--ca-url', ca.url, '--fingerprint', ca.rootFingerprint]);
    expect(again.code, again.stderr).toBe(0);
    const back = await vigil(['report', '--once']);
    expect(back.code, back.stderr).toBe(0);
    expect((await decision(agentDevice)).state).toBe('active');
  }, 120_000);

  it('an admin removes a device; its certificate can no longer be renewed or used', async () => {
    const dev = await enrollAs('e2e-remove-1');
    expect((await asDevice(dev, 'POST', '/v1/reports', report(1))).status).toBe(200);
    const removed = await execFileP(process.execPath, [
      CONTROL_PLANE_CLI, 'device', 'remove', dev.id, '--url', cp.url, '--admin-token-file', join(dir, 'admin-token'), '--ca-root', join(dir, 'root.crt'),
    ]);
    expect(removed.stdout).toContain('certificate at the CA: revoked');
    expect((await cp.admin('GET', `/v1/admin/devices/${dev.id}`)).status).toBe(404);
    expect((await asDevice(dev, 'POST', '/v1/reports', report(2))).status).toBe(403);
    const renew = await httpsCall(`${ca.url}/1.0/renew`, { method: 'POST', ca: ca.rootPem, cert: dev.certPem, key: dev.keyPem, agent: false });
    expect(renew.status).toBe(401);
  }, 60_000);

  it('the event stream resumes across a restart of the control plane', async () => {
    const lines: string[] = [];
    const collect = (url: string, lastId?: string) => {
      const req = request(`${url}/v1/events`, {
        ca: ca.rootPem,
        headers: { authorization: 'Bearer harness-admin-token-0123456789abcdef', accept: 'text/event-stream', ...(lastId ? { 'last-event-id': lastId } : {}) },
      }, (res) => res.on('data', (c: Buffer) => lines.push(c.toString())));
      req.on('error', () => undefined);
      req.end();
      return req;
    };
    const dev = await enrollAs('e2e-events-1');
    const first = collect(cp.url);
    await new Promise((r) => setTimeout(r, 300));
    expect((await asDevice(dev, 'POST', '/v1/reports', report(1))).status).toBe(200);
    const idOf = async (device: string, level: string): Promise<string> => {
      for (let i = 0; i < 100; i++) {
        const m = new RegExp(`id: (\\d+)\\nevent: access-level\\ndata: \\{"device":"${device}"[^\\n]*"current":"${level}"`).exec(lines.join(''));
        if (m?.[1]) return m[1];
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`no ${level} event for ${device} in ${lines.join('')}`);
    };
    const seen = await idOf(dev.id, 'full');
    first.destroy();
    await cp.stop();
    cp = await startControlPlane(ca, dir, { reportIntervalSeconds: 3600 });
    // A change while the consumer was away.
    expect((await asDevice(dev, 'POST', '/v1/reports', report(2, sampleReport({ failing: ['disk-encryption'] })))).status).toBe(200);
    lines.length = 0;
    const resumed = collect(cp.url, seen);
    const missed = await idOf(dev.id, 'blocked');
    expect(Number(missed)).toBeGreaterThan(Number(seen));
    resumed.destroy();
  }, 120_000);

  // Last: it leaves this address locked out of the admin API for a minute.
  it('guessing the admin token is limited', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      statuses.push((await httpsCall(`${cp.url}/v1/admin/devices`, { ca: ca.rootPem, headers: { authorization: `Bearer guess-${i}-0123456789abcdef` } })).status);
    }
    expect(statuses.filter((s) => s === 401)).toHaveLength(10);
    expect(statuses.slice(10)).toEqual([429, 429]);
  }, 60_000);
});
