import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUTHZ_CLI, startAuthzProcess, type AuthzProcess } from '../harness/authz.js';
import { AGENT_CLI, CONTROL_PLANE_CLI, httpsCall, issueDeviceCert, startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import { NGINX, startNginx, type Nginx } from '../harness/nginx.js';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { freePort, isolatedEnv, runCliProcess, startCliProcess, waitFor, type RunResult } from '../helpers.js';
import { sampleReport } from '../helpers/report.js';

/*
 * Enforcement at the gateway with real parts: step-ca, the control plane, an enrolled agent daemon, vigil-authz
 * and nginx (auth_request, ssl_verify_client on against the step-ca root). Requests go through nginx with the
 * agent's own certificate files; the device's posture changes through the control plane's policy.
 */

const execFileP = promisify(execFile);
const built = existsSync(AGENT_CLI) && existsSync(CONTROL_PLANE_CLI) && existsSync(AUTHZ_CLI);
const ROOT_DIR = join(import.meta.dirname, '../..');
const FIX_URL = 'https://help.example.com/vigil';

interface Tls {
  cert: string;
  key: string;
}

interface Answer {
  status: number;
  reason: string | null;
  body: string;
}

describe.skipIf(!built || NGINX === null)('gateway enforcement (step-ca, control plane, agent daemon, vigil-authz, nginx)', () => {
  let ca: StepCa;
  let cp: ControlPlane;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let args: string[];
  let authz: AuthzProcess;
  let nginx: Nginx;
  let app: Server;
  let daemon: ReturnType<typeof startCliProcess> | undefined;
  let agentTls: Tls;
  let deviceId = '';
  const forged: { stale?: Tls & { id: string } } = {};
  let policyVersion = 0;
  let bundled: { checks: Record<string, string> } & Record<string, unknown>;

  const vigil = (more: string[], timeoutMs = 90_000): Promise<RunResult> => runCliProcess([...args, ...more], env, timeoutMs);

  /** One request through nginx on a fresh connection (no TLS session reuse), as a browser after a change would. */
  const through = (tls: Tls | null, path = '/app'): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const req = request(`${nginx.url}${path}`, { ca: ca.rootPem, agent: false, ...(tls ? { cert: tls.cert, key: tls.key } : {}), timeout: 10_000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => {
          const r = res.headers['x-vigil-deny-reason'];
          resolve({ status: res.statusCode ?? 0, reason: typeof r === 'string' ? r : null, body });
        });
      });
      req.on('error', reject);
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.end();
    });

  /** Time until `pred` holds for requests through nginx. */
  const within = async (what: string, pred: (a: Answer) => boolean, tls: Tls | null, timeoutMs: number): Promise<number> => {
    const t0 = Date.now();
    await waitFor(async () => (pred(await through(tls)) ? true : undefined), timeoutMs, what);
    return Date.now() - t0;
  };

  const setPolicy = async (checks: Record<string, string>, unknownOnCritical: 'limited' | 'blocked' = 'limited'): Promise<void> => {
    policyVersion++;
    const r = await cp.admin('PUT', '/v1/admin/policy', { ...bundled, version: `gw-e2e-${policyVersion}`, unknownOnCritical, checks: { ...bundled.checks, ...checks } });
    expect(r.status, r.body).toBe(200);
  };
  /** This container has no disk encryption, patches, EDR, firewall or screen lock: those are off to be compliant. */
  const LENIENT = { 'os-patched': 'off', 'disk-encryption': 'off', 'edr-running': 'off', firewall: 'off', 'screen-lock': 'off' };

  /** What any holder of an enrollment secret does by hand: enroll an ID, get a certificate from step-ca, report once. */
  const forgeDevice = async (id: string): Promise<Tls & { id: string }> => {
    const secret = JSON.parse((await cp.admin('POST', '/v1/admin/secrets', { uses: 1 })).body) as { secret: string };
    const r = await httpsCall(`${cp.url}/v1/enroll`, {
      method: 'POST',
      ca: ca.rootPem,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ protocolVersion: 1, enrollmentSecret: secret.secret, deviceId: id, facts: sampleReport().device }),
    });
    expect(r.status, r.body).toBe(200);
    const issued = await issueDeviceCert(ca, dir, id, JSON.parse(r.body) as { ott: string; subject: string; sans: string[] });
    const tls = { id, cert: issued.certPem, key: issued.keyPem };
    const rep = await httpsCall(`${cp.url}/v1/reports`, {
      method: 'POST',
      ca: ca.rootPem,
      cert: tls.cert,
      key: tls.key,
      agent: false,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ protocolVersion: 1, reportId: crypto.randomUUID(), seq: 1, dropped: 0, report: sampleReport() }),
    });
    expect(rep.status, rep.body).toBe(200);
    return tls;
  };

  beforeAll(async () => {
    bundled = JSON.parse(await readFile(join(ROOT_DIR, 'src/policy/default-policy.json'), 'utf8')) as typeof bundled;
    dir = await mkdtemp(join(tmpdir(), 'vigil-e2e-gateway-'));
    ca = await startStepCa({ claims: { defaultTLSCertDuration: '1h' } });
    // Heartbeats every 10 s keep the agent active; a device silent for 12 s is stale.
    cp = await startControlPlane(ca, dir, { reportIntervalSeconds: 10, extraArgs: ['--max-report-age-seconds', '12'] });
    await setPolicy(LENIENT);

    // The stale candidate reports first, then stays silent while the rest of the setup and tests run.
    forged.stale = await forgeDevice('gw-e2e-stale');

    const { stdout } = await execFileP(process.execPath, [CONTROL_PLANE_CLI, 'token', 'create', '--scope', 'gateway', '--name', 'gw-e2e', '--data-dir', cp.dataDir]);
    await writeFile(join(dir, 'gateway.token'), stdout.trim(), { mode: 0o600 });
    authz = await startAuthzProcess(dir, {
      listen: `127.0.0.1:${await freePort()}`,
      controlPlaneUrl: cp.url,
      caRoot: join(dir, 'root.crt'),
      tokenFile: join(dir, 'gateway.token'),
      fixUrl: FIX_URL,
      maxLagSeconds: 2,
    });

    // The gateway's own server certificate from the same step-ca.
    await execFileP('openssl', [
      'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'gw.key'),
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-out', join(dir, 'gw.csr'),
    ]);
    const signed = await httpsCall(`${ca.url}/1.0/sign`, {
      method: 'POST',
      ca: ca.rootPem,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ csr: await readFile(join(dir, 'gw.csr'), 'utf8'), ott: await ca.token({ subject: '127.0.0.1', sans: ['127.0.0.1'] }) }),
    });
    expect(signed.status, signed.body).toBe(201);
    await writeFile(join(dir, 'gw.crt'), (JSON.parse(signed.body) as { certChain: string[] }).certChain.join(''));

    app = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' }).end(`hello ${String(req.headers['x-vigil-device'])}\n`);
    });
    const appPort = await freePort();
    await new Promise<void>((r) => app.listen(appPort, '127.0.0.1', r));
    nginx = await startNginx({
      dir: join(dir, 'nginx'),
      port: await freePort(),
      certFile: join(dir, 'gw.crt'),
      keyFile: join(dir, 'gw.key'),
      clientRootFile: join(dir, 'root.crt'),
      upstream: `127.0.0.1:${appPort}`,
      authz: authz.url.replace('http://', ''),
      fixUrl: FIX_URL,
    });

    env = isolatedEnv(join(dir, 'home'));
    await writeFile(join(dir, 'agent.json'), JSON.stringify({ identity: { keyStorage: 'file' }, reporting: { controlPlaneUrl: cp.url, debounceMs: 200 }, scan: { intervalSeconds: 3600 } }));
    args = ['--config', join(dir, 'agent.json'), '--state-dir', join(dir, 'agent-state')];
    const enrolled = await vigil(['enroll', '--control-plane', cp.url, '--enrollment-secret', await cp.secret(), '--ca-url', ca.url, '--fingerprint', ca.rootFingerprint]);
    expect(enrolled.code, `${enrolled.stderr}\n${cp.log()}`).toBe(0);
    deviceId = (JSON.parse((await vigil(['identity', '--json'])).stdout) as { deviceId: string }).deviceId;
    // The files any other tool (a browser, curl) uses: the stable paths of the agent's current pair.
    agentTls = { cert: await readFile(join(dir, 'agent-state/identity/device.crt'), 'utf8'), key: await readFile(join(dir, 'agent-state/identity/device.key'), 'utf8') };
    daemon = startCliProcess([...args, 'daemon'], env);
    await waitFor(() => (/reporting to/.test(daemon?.output() ?? '') ? true : undefined), 30_000, 'the daemon to report');
  }, 120_000);

  afterAll(async () => {
    if (daemon && daemon.child.exitCode === null) {
      const exited = new Promise((r) => daemon?.child.once('exit', r));
      daemon.child.kill('SIGTERM');
      await exited;
    }
    // Each may be unset when beforeAll failed part way.
    const maybe = <T>(v: T): T | undefined => v;
    await maybe(nginx)?.stop();
    await maybe(authz)?.stop();
    await new Promise<void>((r) => {
      const server = maybe(app);
      if (server) server.close(() => { r(); });
      else r();
    });
    await maybe(cp)?.stop();
    await maybe(ca)?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('lets the enrolled, compliant device through; a stricter policy refuses its next request within 5 s; it recovers as fast', async () => {
    await within('the agent device to be let through', (a) => a.status === 200, agentTls, 20_000);
    const ok = await through(agentTls);
    expect(ok.body).toBe(`hello ${deviceId}\n`);

    // Disk encryption and patches become critical again: this container's disk is not encrypted, and its patch
    // state is failing or unknown, which this policy treats as blocking.
    await setPolicy({ ...LENIENT, 'disk-encryption': 'critical', 'os-patched': 'critical' }, 'blocked');
    const refusedIn = await within('the device to be refused', (a) => a.status === 403, agentTls, 5000);
    expect(refusedIn).toBeLessThan(5000);
    const refused = await through(agentTls);
    expect(refused.reason).toBe('device-blocked');
    expect(JSON.parse(refused.body)).toEqual({ allow: false, reason: 'device-blocked', fix_url: FIX_URL });

    await setPolicy(LENIENT);
    const backIn = await within('the device to be let through again', (a) => a.status === 200, agentTls, 5000);
    expect(backIn).toBeLessThan(5000);
  }, 60_000);

  it('refuses a revoked device, a request without a certificate, and a certificate from another CA', async () => {
    const revoked = await forgeDevice('gw-e2e-revoked');
    const before = await through(revoked);
    expect([before.status, before.reason]).toEqual([200, null]);
    expect((await cp.admin('POST', `/v1/admin/devices/${revoked.id}/revoke`)).status).toBe(200);
    await within('the revoked device to be refused', (a) => a.reason === 'device-revoked', revoked, 5000);

    const none = await through(null);
    expect([none.status, none.reason]).toEqual([403, 'client-certificate-required']);

    // Same device name, signed by a CA nginx does not trust.
    await execFileP('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'other-ca.key'), '-subj', '/CN=Other CA', '-days', '1', '-out', join(dir, 'other-ca.crt')]);
    await execFileP('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'other.key'), '-subj', `/CN=device-${deviceId}`,
      '-addext', `subjectAltName=URI:urn:vigil:device:${deviceId}`, '-CA', join(dir, 'other-ca.crt'), '-CAkey', join(dir, 'other-ca.key'), '-days', '1', '-out', join(dir, 'other.crt'),
    ]);
    const foreign = await through({ cert: await readFile(join(dir, 'other.crt'), 'utf8'), key: await readFile(join(dir, 'other.key'), 'utf8') });
    expect([foreign.status, foreign.reason]).toEqual([403, 'client-certificate-rejected']);
  }, 30_000);

  it('refuses a stale device (silent longer than the control plane allows) while the reporting agent stays in', async () => {
    const stale = forged.stale;
    if (!stale) throw new Error('setup');
    await within('the stale device to be refused', (a) => a.reason === 'device-stale', stale, 20_000);
    expect((await through(agentTls)).status).toBe(200);
  }, 30_000);

  // Last: it stops the control plane.
  it('an authorizer cut off from the control plane fails closed after its bound', async () => {
    expect((await through(agentTls)).status).toBe(200);
    const cutAt = Date.now();
    await cp.stop();
    // Within the bound (2 s) it still answers from memory: a blip in the stream is not an outage.
    expect((await through(agentTls)).status).toBe(200);
    await within('the authorizer to fail closed', (a) => a.reason === 'control-plane-unreachable', agentTls, 6000);
    expect(Date.now() - cutAt).toBeGreaterThanOrEqual(2000);
    const health = await fetch(`${authz.url}/healthz`);
    expect(health.status).toBe(503);
    expect(await (await fetch(`${authz.url}/metrics`)).text()).toMatch(/^vigil_authz_failing_closed 1$/m);
  }, 30_000);
});
