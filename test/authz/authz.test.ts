import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authzConfigSchema } from '../../src/authz/config.js';
import { osMatches, parseOsRule } from '../../src/authz/os-rule.js';
import { certFromXfcc, startAuthz, type RunningAuthz } from '../../src/authz/server.js';
import { silentLogger } from '../../src/logging/logger.js';
import type { ReportEnvelope } from '../../src/protocol/wire.js';
import { DIST } from '../harness/control-plane.js';
import { freePort, waitFor } from '../helpers.js';
import { ADMIN_TOKEN, startHarness, type Harness } from '../helpers/control-plane.js';
import { startControlPlane } from '../../src/control-plane/server.js';
import { call, type CallOptions } from '../helpers/https.js';
import type { Issued } from '../helpers/pki.js';
import { sampleReport } from '../helpers/report.js';

/*
 * vigil-authz against the real control plane (in process, with a test PKI): it follows the event stream,
 * answers from memory, binds the request's certificate to the device's current one, and fails closed.
 */

const execFileP = promisify(execFile);
const AUTHZ_CLI = join(DIST, 'src/authz/cli.js');

let h: Harness;
let gatewayToken = '';
const authzs: RunningAuthz[] = [];
const api = (path: string, o?: CallOptions) => call(h.pki.rootPem, `${h.cp.url}${path}`, o);
const admin = (path: string, o: CallOptions = {}) => api(path, { ...o, token: ADMIN_TOKEN });
const envelope = (seq: number, failing: string[] = []): ReportEnvelope => ({ protocolVersion: 1, reportId: randomUUID(), seq, dropped: 0, report: sampleReport({ failing }) });
const leaf = (tls: Issued): string => tls.certPem.slice(0, tls.certPem.indexOf('-----END CERTIFICATE-----') + 25) + '\n';

async function enrolled(id: string): Promise<Issued> {
  const secret = (await admin('/v1/admin/secrets', { body: {} })).json as { secret: string };
  expect((await api('/v1/enroll', { body: { protocolVersion: 1, enrollmentSecret: secret.secret, deviceId: id, facts: sampleReport().device } })).status).toBe(200);
  const tls = await h.pki.device(id);
  expect((await api('/v1/reports', { body: envelope(1), tls })).status).toBe(200);
  return tls;
}

async function newAuthz(over: Record<string, unknown> = {}): Promise<RunningAuthz> {
  const config = authzConfigSchema.parse({
    listen: '127.0.0.1:0',
    controlPlaneUrl: h.cp.url,
    caRoot: 'unused-in-process',
    tokenFile: 'unused-in-process',
    fixUrl: 'https://help.example.com/device?d={device}&r={reason}',
    maxLagSeconds: 1,
    ...over,
  });
  const a = await startAuthz({ config, caRootPem: h.pki.rootPem, token: gatewayToken, logger: silentLogger(), minRetryMs: 50, maxRetryMs: 200 });
  authzs.push(a);
  await waitFor(() => (a.follower.status.synced ? true : undefined), 10_000, 'the authorizer to sync');
  return a;
}

interface Answer {
  status: number;
  reason: string | undefined;
  headers: Headers;
  body: string;
}

async function ask(a: RunningAuthz, tls: Issued | null, o: { path?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...(tls ? { 'x-client-cert': encodeURIComponent(leaf(tls)) } : {}), ...o.headers };
  const r = await fetch(`${a.url}${o.path ?? '/v1/authz'}`, { headers });
  return { status: r.status, reason: r.headers.get('x-vigil-deny-reason') ?? undefined, headers: r.headers, body: await r.text() };
}

beforeAll(async () => {
  h = await startHarness({ listen: `127.0.0.1:${await freePort()}` });
  const t = await admin('/v1/admin/tokens', { body: { scope: 'gateway', name: 'authz-test' } });
  gatewayToken = (t.json as { token: string }).token;
});
afterAll(async () => {
  for (const a of authzs) await a.close();
  await h.cp.close();
});

describe('vigil-authz', () => {
  it('lets a compliant device through, refuses it within moments of failing a check, and lets it back', async () => {
    const a = await newAuthz();
    const dev = await enrolled('dev-az-1');
    await waitFor(async () => ((await ask(a, dev)).status === 200 ? true : undefined), 5000, 'the device to be allowed');
    const ok = await ask(a, dev);
    expect(ok.headers.get('x-vigil-device')).toBe('dev-az-1');
    expect(ok.headers.get('x-vigil-access-level')).toBe('full');

    expect((await api('/v1/reports', { body: envelope(2, ['disk-encryption']), tls: dev })).status).toBe(200);
    const t0 = Date.now();
    await waitFor(async () => ((await ask(a, dev)).status === 403 ? true : undefined), 5000, 'the device to be refused');
    expect(Date.now() - t0).toBeLessThan(1000);
    const no = await ask(a, dev);
    expect(no.reason).toBe('device-blocked');
    expect(no.headers.get('x-vigil-fix-url')).toBe('https://help.example.com/device?d=dev-az-1&r=device-blocked');
    expect(JSON.parse(no.body)).toEqual({
      allow: false,
      reason: 'device-blocked',
      message: 'device dev-az-1 fails a critical check',
      device: 'dev-az-1',
      fix_url: 'https://help.example.com/device?d=dev-az-1&r=device-blocked',
    });

    expect((await api('/v1/reports', { body: envelope(3), tls: dev })).status).toBe(200);
    await waitFor(async () => ((await ask(a, dev)).status === 200 ? true : undefined), 1000, 'the device to be allowed again');
  });

  it('accepts only the device’s current certificate, by fingerprint and URI SAN', async () => {
    const a = await newAuthz();
    const dev = await enrolled('dev-az-2');
    await waitFor(async () => ((await ask(a, dev)).status === 200 ? true : undefined), 5000, 'the device to be allowed');
    // Another certificate from the same CA for the same device: valid at the TLS layer, but not its current one.
    const other = await h.pki.device('dev-az-2');
    expect((await ask(a, other)).reason).toBe('certificate-not-current');
    // Once the device reports with it (a renewal), that one is current and the old one is refused.
    expect((await api('/v1/reports', { body: envelope(2), tls: other })).status).toBe(200);
    await waitFor(async () => ((await ask(a, other)).status === 200 ? true : undefined), 2000, 'the renewed certificate to be accepted');
    expect((await ask(a, dev)).reason).toBe('certificate-not-current');
    // Another CA, same device name.
    expect((await ask(a, await h.pki.device('dev-az-2', { foreign: true }))).reason).toBe('certificate-not-current');
    // A certificate with only the CN names no device here: the URI SAN is required.
    expect((await ask(a, await h.pki.device('dev-az-2', { cnOnly: true }))).reason).toBe('certificate-names-no-device');
    expect((await ask(a, await h.pki.device('dev-az-2', { expired: true }))).reason).toBe('client-certificate-expired');
    expect((await ask(a, await h.pki.device('dev-az-nobody'))).reason).toBe('device-unknown');
    expect((await ask(a, null)).reason).toBe('client-certificate-required');
    expect((await ask(a, other, { headers: { 'x-client-verify': 'FAILED:unable to get local issuer certificate' } })).reason).toBe('client-certificate-rejected');
    expect((await ask(a, other, { headers: { 'x-client-verify': 'SUCCESS' } })).status).toBe(200);
    expect((await ask(a, null, { headers: { 'x-client-cert': 'not%20a%20certificate' } })).reason).toBe('client-certificate-invalid');
  });

  it('speaks Envoy ext_authz HTTP: any path under /v1/ext-authz, the certificate in x-forwarded-client-cert', async () => {
    const a = await newAuthz();
    const dev = await enrolled('dev-az-envoy');
    const xfcc = `By=spiffe://gw.example.com;Hash=ignored;Cert="${encodeURIComponent(leaf(dev))}";Subject="CN=device-dev-az-envoy";URI=urn:vigil:device:dev-az-envoy`;
    expect(certFromXfcc(xfcc)).toBe(encodeURIComponent(leaf(dev)));
    await waitFor(async () => ((await ask(a, null, { path: '/v1/ext-authz/app/page?x=1', headers: { 'x-forwarded-client-cert': xfcc } })).status === 200 ? true : undefined), 5000, 'allowed via XFCC');
    const r = await fetch(`${a.url}/v1/ext-authz/app/page`, { method: 'POST', headers: { 'x-forwarded-client-cert': xfcc }, body: 'ignored' });
    expect(r.status).toBe(200);
    const none = await ask(a, null, { path: '/v1/ext-authz/app' });
    expect([none.status, none.reason]).toEqual([403, 'client-certificate-required']);
  });

  it('refuses a revoked device and a stale one', async () => {
    const a = await newAuthz();
    const dev = await enrolled('dev-az-rev');
    await waitFor(async () => ((await ask(a, dev)).status === 200 ? true : undefined), 5000, 'the device to be allowed');
    expect((await admin('/v1/admin/devices/dev-az-rev/revoke', { method: 'POST' })).status).toBe(200);
    await waitFor(async () => ((await ask(a, dev)).reason === 'device-revoked' ? true : undefined), 2000, 'the revoked device to be refused');

    const short = await startHarness({ maxReportAgeSeconds: 1 }, h.pki);
    try {
      const t = await call(h.pki.rootPem, `${short.cp.url}/v1/admin/tokens`, { body: { scope: 'gateway', name: 'stale' }, token: ADMIN_TOKEN });
      const config = authzConfigSchema.parse({ controlPlaneUrl: short.cp.url, caRoot: 'x', tokenFile: 'x', listen: '127.0.0.1:0' });
      const s = await startAuthz({ config, caRootPem: h.pki.rootPem, token: (t.json as { token: string }).token, logger: silentLogger() });
      authzs.push(s);
      const secret = (await call(h.pki.rootPem, `${short.cp.url}/v1/admin/secrets`, { body: {}, token: ADMIN_TOKEN })).json as { secret: string };
      await call(h.pki.rootPem, `${short.cp.url}/v1/enroll`, { body: { protocolVersion: 1, enrollmentSecret: secret.secret, deviceId: 'dev-az-stale', facts: sampleReport().device } });
      const st = await h.pki.device('dev-az-stale');
      expect((await call(h.pki.rootPem, `${short.cp.url}/v1/reports`, { body: envelope(1), tls: st })).status).toBe(200);
      await waitFor(async () => ((await ask(s, st)).reason === 'device-stale' ? true : undefined), 5000, 'the stale device to be refused');
    } finally {
      await short.cp.close();
    }
  });

  it('publishes an OPA data document, health and Prometheus metrics', async () => {
    const a = await newAuthz();
    await enrolled('dev-az-opa');
    const data = await waitFor(async () => {
      const d = (await (await fetch(`${a.url}/v1/opa/data`)).json()) as { devices: Record<string, { compliant: boolean; managed: boolean; os: { id: string } }>; authorizer: { status: string } };
      return d.devices['dev-az-opa'] ? d : undefined;
    }, 5000, 'the device in the OPA data');
    expect(data.devices['dev-az-opa']).toMatchObject({ compliant: true, access_level: 'full', state: 'active', managed: false, os: { platform: 'linux', id: sampleReport().device.os.id } });
    expect(data.authorizer.status).toBe('ok');
    const hz = await fetch(`${a.url}/healthz`);
    expect(hz.status).toBe(200);
    expect(await hz.json()).toMatchObject({ status: 'ok', lag_seconds: 0, connected: true, synced: true });
    const m = await (await fetch(`${a.url}/metrics`)).text();
    expect(m).toMatch(/^vigil_authz_stream_lag_seconds 0\.000$/m);
    expect(m).toMatch(/^vigil_authz_failing_closed 0$/m);
    expect(m).toMatch(/^vigil_authz_devices \d+$/m);
  });

  it('applies ZTNA rules: OS versions and management', async () => {
    const rules = ['macOS 13+', 'Windows 11', 'Ubuntu 22.04+'].map((r) => parseOsRule(r));
    const os = (id: string, version: string) => ({ platform: 'linux' as const, id, name: id, version });
    const allowed = (o: ReturnType<typeof os>) => rules.some((r) => r !== null && osMatches(r, o));
    expect([allowed(os('macos', '13.6.1')), allowed(os('macos', '12.7')), allowed(os('macos', '15.1'))]).toEqual([true, false, true]);
    expect([allowed(os('windows', '10.0.22631')), allowed(os('windows', '10.0.19045'))]).toEqual([true, false]);
    expect([allowed(os('ubuntu', '22.04')), allowed(os('ubuntu', '20.04')), allowed(os('ubuntu', '24.04')), allowed(os('debian', '12'))]).toEqual([true, false, true, false]);
    expect(parseOsRule('Debian 12')).toMatchObject({ id: 'debian', min: '12', below: '13' });
    expect(parseOsRule('Windows 12')).toBeNull();
    expect(parseOsRule('anything')).toBeNull();

    const dev = await enrolled('dev-az-ztna');
    const osId = sampleReport().device.os.id;
    const osVersion = sampleReport().device.os.version ?? '0';
    const strict = await newAuthz({ requireOs: ['macOS 13+'] });
    await waitFor(async () => ((await ask(strict, dev)).reason === 'os-not-allowed' ? true : undefined), 5000, 'refused for its OS');
    const fits = await newAuthz({ requireOs: [`${osId} ${osVersion}+`] });
    await waitFor(async () => ((await ask(fits, dev)).status === 200 ? true : undefined), 5000, 'allowed for its OS');
    const managed = await newAuthz({ requireManaged: true });
    await waitFor(async () => ((await ask(managed, dev)).reason === 'device-not-managed' ? true : undefined), 5000, 'refused: not managed');
  });

  it('reads every device again when the control plane cannot replay (a reset)', async () => {
    // A control plane on its own port and database, replaced below by one with a fresh database at the same port.
    const port = await freePort();
    const first = await startHarness({ listen: `127.0.0.1:${port}` }, h.pki);
    const tokenFor = async (x: Harness) =>
      ((await call(h.pki.rootPem, `${x.cp.url}/v1/admin/tokens`, { body: { scope: 'admin', name: 'reset' }, token: ADMIN_TOKEN })).json as { token: string }).token;
    const enrollOn = async (x: Harness, id: string): Promise<Issued> => {
      const secret = (await call(h.pki.rootPem, `${x.cp.url}/v1/admin/secrets`, { body: {}, token: ADMIN_TOKEN })).json as { secret: string };
      await call(h.pki.rootPem, `${x.cp.url}/v1/enroll`, { body: { protocolVersion: 1, enrollmentSecret: secret.secret, deviceId: id, facts: sampleReport().device } });
      const tls = await h.pki.device(id);
      expect((await call(h.pki.rootPem, `${x.cp.url}/v1/reports`, { body: envelope(1), tls })).status).toBe(200);
      return tls;
    };
    // An admin-scoped token works for the authorizer too; the new database will not know it, so the admin token is used.
    expect(await tokenFor(first)).toMatch(/^vgt_/);
    const config = authzConfigSchema.parse({ controlPlaneUrl: first.cp.url, caRoot: 'x', tokenFile: 'x', listen: '127.0.0.1:0', maxLagSeconds: 30 });
    const a = await startAuthz({ config, caRootPem: h.pki.rootPem, token: ADMIN_TOKEN, logger: silentLogger(), minRetryMs: 50, maxRetryMs: 200 });
    authzs.push(a);
    const old = await enrollOn(first, 'dev-az-old');
    await enrollOn(first, 'dev-az-old-2');
    await waitFor(async () => ((await ask(a, old)).status === 200 ? true : undefined), 5000, 'allowed on the first control plane');
    const lastSeen = a.follower.status.lastEventId ?? 0;
    expect(lastSeen).toBeGreaterThan(0);
    const resyncs = a.follower.status.resyncs;
    await first.cp.close();

    // The replacement has fewer events than the authorizer has seen: it cannot replay, so it says reset.
    const second = await startHarness({ listen: `127.0.0.1:${port}` }, h.pki);
    try {
      await waitFor(() => (a.follower.status.resyncs > resyncs && a.follower.status.synced ? true : undefined), 10_000, 'a resync after the reset');
      const fresh = await enrollOn(second, 'dev-az-new');
      await waitFor(async () => ((await ask(a, fresh)).status === 200 ? true : undefined), 10_000, 'the device of the new control plane to be allowed');
      // The device list was replaced, not merged: a device only the old control plane knew is gone.
      expect((await ask(a, old)).reason).toBe('device-unknown');
    } finally {
      await second.cp.close();
    }
  }, 40_000);

  // Last: it restarts the control plane.
  it('fails closed once the control plane has been out of reach past the bound, or answers last-known for a grace', async () => {
    const closed = await newAuthz({ maxLagSeconds: 1 });
    const lastKnown = await newAuthz({ maxLagSeconds: 1, onLag: 'last-known', lastKnownGraceSeconds: 2 });
    const dev = await enrolled('dev-az-cut');
    await waitFor(async () => ((await ask(closed, dev)).status === 200 && (await ask(lastKnown, dev)).status === 200 ? true : undefined), 5000, 'allowed by both');
    const cutAt = Date.now();
    await h.cp.close();
    await waitFor(async () => ((await ask(closed, dev)).reason === 'control-plane-unreachable' ? true : undefined), 5000, 'failing closed');
    expect(Date.now() - cutAt).toBeGreaterThanOrEqual(900);
    expect(Date.now() - cutAt).toBeLessThan(3000);
    const hz = await fetch(`${closed.url}/healthz`);
    expect(hz.status).toBe(503);
    expect(await hz.json()).toMatchObject({ status: 'failing-closed', connected: false });
    expect(await (await fetch(`${closed.url}/metrics`)).text()).toMatch(/^vigil_authz_failing_closed 1$/m);
    // The last-known authorizer still lets the device through, saying so, until its grace ends.
    const lk = await ask(lastKnown, dev);
    expect(lk.status).toBe(200);
    expect(Number(lk.headers.get('x-vigil-last-known'))).toBeGreaterThanOrEqual(1);
    expect((await fetch(`${lastKnown.url}/healthz`)).status).toBe(200);
    await waitFor(async () => ((await ask(lastKnown, dev)).reason === 'control-plane-unreachable' ? true : undefined), 5000, 'last-known to end');

    // Back: both resume from the event they last saw and answer again.
    const before = closed.follower.status.resyncs;
    h = { ...h, cp: await startControlPlane(h.config, { logger: silentLogger(), ssePingMs: 1000, revokeAtCa: () => Promise.resolve('revoked' as const) }) };
    await waitFor(async () => ((await ask(closed, dev)).status === 200 ? true : undefined), 10_000, 'allowed again after the restart');
    expect(closed.follower.status.resyncs).toBe(before);
    expect((await fetch(`${closed.url}/healthz`)).status).toBe(200);
    // A change made after the restart arrives through the resumed stream.
    expect((await api('/v1/reports', { body: envelope(2, ['disk-encryption']), tls: dev })).status).toBe(200);
    await waitFor(async () => ((await ask(closed, dev)).reason === 'device-blocked' ? true : undefined), 2000, 'refused after the restart');
  }, 40_000);
});

describe.skipIf(!existsSync(AUTHZ_CLI))('vigil-authz CLI (built)', () => {
  it('refuses bad configuration with one line naming the key and what was expected', async () => {
    const run = (...args: string[]) => execFileP(process.execPath, [AUTHZ_CLI, ...args]).then(() => ({ code: 0, stderr: '' }), (e: unknown) => e as { code: number; stderr: string });
    const r1 = await run('serve', '--control-plane-url', 'http://cp.example.com', '--ca-root', 'x', '--token-file', 'y', '--on-lag', 'deny');
    expect(r1.code).toBe(2);
    expect(r1.stderr).toBe('vigil-authz: invalid configuration: controlPlaneUrl: an https:// URL of the control plane\n');
    const r2 = await run('serve', '--max-lag-seconds', 'soon');
    expect(r2.stderr).toMatch(/--max-lag-seconds soon: expected a whole number of seconds/);
    const dir = h.dir;
    await writeFile(join(dir, 'authz.json'), JSON.stringify({ controlPlaneUrl: 'https://cp:8443', caRoot: 'x', tokenFile: 'y', requireOs: ['Windows 12'], maxLagSeconds: 0 }));
    const r3 = await run('serve', '--config', join(dir, 'authz.json'));
    expect(r3.stderr.trim().split('\n')).toHaveLength(1);
    expect(r3.stderr).toMatch(/maxLagSeconds: .*>=1.*; requireOs\.0: an OS rule such as "macOS 13\+"/);
    await writeFile(join(dir, 'authz2.json'), JSON.stringify({ controlPlaneUrl: 'https://cp:8443', caRoot: join(dir, 'nope.crt'), tokenFile: 'y' }));
    const r4 = await run('--config', join(dir, 'authz2.json'));
    expect(r4.stderr).toBe(`vigil-authz: caRoot ${join(dir, 'nope.crt')}: cannot read it: ENOENT\n`);
  });
});
