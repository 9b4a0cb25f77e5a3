import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'node:https';
import { httpsCall as https, type HttpResult } from '../harness/control-plane.js';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { freePort } from '../helpers.js';

/*
 * Real processes end to end: step-ca (harness), the control plane from its CLI, and the agent from its CLI
 * (enroll, report --once, daemon), all from `npm run build` output in dist/. Loopback only.
 */

const execFileP = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
const AGENT = join(ROOT, 'dist/src/cli/main.js');
const CONTROL_PLANE = join(ROOT, 'dist/src/control-plane/cli.js');
const built = existsSync(AGENT) && existsSync(CONTROL_PLANE);

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

interface Decision {
  device: { id: string; compliant: boolean; access_level: string; policy_version: string };
}

describe.skipIf(!built)('reporting end to end (step-ca, control plane and agent as real processes)', () => {
  let ca: StepCa;
  let dir: string;
  let cpUrl: string;
  let cp: ChildProcess;
  let cpLog = '';
  let adminToken: string;
  let agentEnv: NodeJS.ProcessEnv;
  let agentArgs: string[];
  let deviceId: string;
  let daemon: ChildProcess | undefined;
  let daemonLog = '';
  const sse: string[] = [];
  let sseReq: ReturnType<typeof request> | undefined;

  const admin = async (method: string, path: string, body?: unknown): Promise<HttpResult> =>
    https(`${cpUrl}${path}`, {
      method,
      ca: ca.rootPem,
      headers: { authorization: `Bearer ${adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

  const decision = async (): Promise<Decision> => {
    const r = await admin('GET', `/v1/decision/${deviceId}`);
    expect(r.status).toBe(200);
    return JSON.parse(r.body) as Decision;
  };

  const reports = async (): Promise<{ reportId: string; seq: number; accessLevel: string }[]> => {
    const r = await admin('GET', `/v1/admin/devices/${deviceId}/reports?limit=1000`);
    expect(r.status).toBe(200);
    return (JSON.parse(r.body) as { reports: { reportId: string; seq: number; accessLevel: string }[] }).reports;
  };

  const vigil = async (args: string[], timeoutMs = 90_000): Promise<{ code: number; stdout: string; stderr: string }> => {
    try {
      const { stdout, stderr } = await execFileP(process.execPath, [AGENT, ...agentArgs, ...args], { env: agentEnv, timeout: timeoutMs });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  };

  const startDaemon = async (): Promise<ChildProcess> => {
    const proc = spawn(process.execPath, [AGENT, ...agentArgs, 'daemon'], { env: agentEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout.on('data', (d: Buffer) => (daemonLog += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (daemonLog += d.toString()));
    daemon = proc;
    await until('the daemon to start reporting', () => Promise.resolve(daemonLog.includes('reporting to') ? true : undefined), 30_000);
    return proc;
  };

  const outboxPending = async (): Promise<number> => {
    const names = await readdir(join(dir, 'agent-state', 'outbox')).catch(() => []);
    return names.filter((n) => n.endsWith('.json') && n !== 'state.json').length;
  };

  beforeAll(async () => {
    ca = await startStepCa({ claims: { defaultTLSCertDuration: '1h' } });
    dir = await mkdtemp(join(tmpdir(), 'vigil-e2e-'));

    // The control plane's server certificate comes from the same step-ca, so agents verify it with the pinned root.
    await execFileP('openssl', [
      'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'cp.key'),
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-out', join(dir, 'cp.csr'),
    ]);
    const ott = await ca.token({ subject: '127.0.0.1', sans: ['127.0.0.1'] });
    const signed = await https(`${ca.url}/1.0/sign`, {
      method: 'POST',
      ca: ca.rootPem,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ csr: await readFile(join(dir, 'cp.csr'), 'utf8'), ott }),
    });
    expect(signed.status, signed.body).toBe(201);
    const { certChain } = JSON.parse(signed.body) as { certChain: string[] };
    await writeFile(join(dir, 'cp.crt'), certChain.join(''));
    await writeFile(join(dir, 'root.crt'), ca.rootPem);
    await writeFile(join(dir, 'provisioner.pem'), await ca.provisionerKeyPem(), { mode: 0o600 });
    adminToken = 'e2e-admin-token-0123456789abcdef';
    await writeFile(join(dir, 'admin-token'), adminToken, { mode: 0o600 });

    const port = await freePort();
    cpUrl = `https://127.0.0.1:${port}`;
    cp = spawn(
      process.execPath,
      [
        CONTROL_PLANE, 'serve', '--listen', `127.0.0.1:${port}`, '--data-dir', join(dir, 'cp-data'), '--ca-url', ca.url,
        '--ca-root', join(dir, 'root.crt'), '--provisioner', ca.provisionerName, '--provisioner-key', join(dir, 'provisioner.pem'),
        '--admin-token-file', join(dir, 'admin-token'), '--tls-cert', join(dir, 'cp.crt'), '--tls-key', join(dir, 'cp.key'),
        // No heartbeats during the test: every report has a cause the test can attribute.
        '--report-interval-seconds', '3600',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    cp.stdout?.on('data', (d: Buffer) => (cpLog += d.toString()));
    cp.stderr?.on('data', (d: Buffer) => (cpLog += d.toString()));
    await until('the control plane to listen', async () => ((await https(`${cpUrl}/health`, { ca: ca.rootPem })).status === 200 ? true : undefined), 30_000);

    const home = join(dir, 'home');
    agentEnv = { PATH: process.env.PATH, HOME: home, XDG_CONFIG_HOME: join(home, '.config') };
    await writeFile(
      join(dir, 'agent.json'),
      JSON.stringify({
        identity: { keyStorage: 'file' },
        reporting: { controlPlaneUrl: cpUrl, debounceMs: 200 },
        scan: { intervalSeconds: 3600 },
      }),
    );
    agentArgs = ['--config', join(dir, 'agent.json'), '--state-dir', join(dir, 'agent-state')];

    sseReq = request(`${cpUrl}/v1/events`, { ca: ca.rootPem, headers: { authorization: `Bearer ${adminToken}`, accept: 'text/event-stream' } }, (r) => {
      r.on('data', (c: Buffer) => sse.push(c.toString()));
    });
    sseReq.on('error', () => undefined);
    sseReq.end();
  }, 120_000);

  afterAll(async () => {
    sseReq?.destroy();
    daemon?.kill('SIGKILL');
    cp.kill('SIGTERM');
    await ca.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('enrolls with an enrollment secret made by the admin CLI', async () => {
    const { stdout } = await execFileP(process.execPath, [CONTROL_PLANE, 'secret', 'create', '--data-dir', join(dir, 'cp-data'), '--uses', '1', '--expires', '1h']);
    const secret = stdout.trim();
    expect(secret.length).toBeGreaterThan(10);
    const wrong = await vigil(['enroll', '--control-plane', cpUrl, '--enrollment-secret', 'not-the-secret', '--ca-url', ca.url, '--fingerprint', ca.rootFingerprint]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/enrollment secret is not valid/);

    const res = await vigil(['enroll', '--control-plane', cpUrl, '--enrollment-secret', secret, '--ca-url', ca.url, '--fingerprint', ca.rootFingerprint]);
    expect(res.code, `${res.stderr}\n${cpLog}`).toBe(0);
    expect(res.stdout).toMatch(/Enrolled/);
    const identity = JSON.parse((await vigil(['identity', '--json'])).stdout) as { state: string; deviceId: string };
    expect(identity.state).toBe('valid');
    deviceId = identity.deviceId;
  }, 120_000);

  it('vigil report --once is accepted and the decision API shows the device', async () => {
    const res = await vigil(['report', '--once']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/accepted; access level (full|limited|blocked)/);
    const d = await decision();
    expect(d.device.id).toBe(deviceId);
    // This container has neither disk encryption nor current patches: both critical under the bundled policy.
    expect(d.device.access_level).toBe('blocked');
    expect(d.device.compliant).toBe(false);
    expect(await reports()).toHaveLength(1);
  }, 120_000);

  it('the daemon applies a pushed policy, persists it, and the level change reaches the decision API and SSE', async () => {
    await startDaemon();
    const bundled = JSON.parse(await readFile(join(ROOT, 'src/policy/default-policy.json'), 'utf8')) as { checks: Record<string, string> };
    const policy = {
      ...bundled,
      version: 'e2e-2',
      checks: { ...bundled.checks, 'os-patched': 'off', 'disk-encryption': 'off', 'edr-running': 'off', firewall: 'off', 'screen-lock': 'off' },
    };
    const put = await admin('PUT', '/v1/admin/policy', policy);
    expect(put.status, put.body).toBe(200);

    await until('the agent to persist the pushed policy', async () => {
      const text = await readFile(join(dir, 'agent-state', 'pushed-policy.json'), 'utf8');
      return (JSON.parse(text) as { version: string }).version === 'e2e-2' ? true : undefined;
    }, 30_000);
    // The daemon rescans under the new policy and reports; the report, not just the server's own re-evaluation, says full.
    await until('a report made under the pushed policy', async () => {
      const all = await reports();
      return all.some((r) => r.accessLevel === 'full') ? true : undefined;
    }, 60_000);
    const status = JSON.parse((await vigil(['status', '--json'])).stdout) as { policy: { version: string; source: string }; lastScan: { accessLevel: string } };
    expect(status.policy.version).toBe('e2e-2');
    expect(status.lastScan.accessLevel).toBe('full');
    const d = await decision();
    expect(d.device.access_level).toBe('full');
    expect(d.device.compliant).toBe(true);
    await until('an access-level event on the SSE stream', () => Promise.resolve(sse.join('').includes('full') ? true : undefined), 10_000);
    expect(sse.join('')).toContain(deviceId);
  }, 120_000);

  it('a re-check request brings a new report within seconds', async () => {
    const before = (await reports()).length;
    const res = await admin('POST', `/v1/admin/devices/${deviceId}/recheck`);
    expect(res.status).toBe(202);
    const started = Date.now();
    await until('the re-check report', async () => ((await reports()).length > before ? true : undefined), 30_000);
    expect(Date.now() - started).toBeLessThan(30_000);
  }, 60_000);

  it('after kill -9 mid-run and a restart, every report is delivered exactly once', async () => {
    const proc = daemon;
    if (!proc) throw new Error('daemon not running');
    const exited = new Promise((r) => proc.once('exit', r));
    // A re-check makes the daemon scan and send; the kill lands while that is under way.
    expect((await admin('POST', `/v1/admin/devices/${deviceId}/recheck`)).status).toBe(202);
    await new Promise((r) => setTimeout(r, 300));
    proc.kill('SIGKILL');
    await exited;
    daemonLog = '';
    await startDaemon();
    // The restarted daemon reports its first scan; wait until its outbox is empty and the server count settles.
    const settled = await until('the outbox to drain', async () => {
      if ((await outboxPending()) > 0) return undefined;
      const a = await reports();
      await new Promise((r) => setTimeout(r, 1500));
      const b = await reports();
      return a.length === b.length && (await outboxPending()) === 0 ? b : undefined;
    }, 60_000);
    const ids = settled.map((r) => r.reportId);
    expect(new Set(ids).size).toBe(ids.length);
    // Sequence numbers are assigned on append and survive restarts: a gap would be a lost report.
    const seqs = settled.map((r) => r.seq).sort((x, y) => x - y);
    expect(seqs).toEqual(seqs.map((_, i) => i));
    expect(daemonLog).not.toMatch(/refused a report for good/);
  }, 120_000);
});
