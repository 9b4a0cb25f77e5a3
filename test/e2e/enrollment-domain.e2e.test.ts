import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_CLI, CONTROL_PLANE_CLI, startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { isolatedEnv, runCliProcess, type RunResult } from '../helpers.js';

/*
 * Enrollment through the control plane with identity.domain set (as the shipped MDM templates do), and an
 * enrollment that fails at the CA: real step-ca, control plane and agent CLI.
 */

const built = existsSync(AGENT_CLI) && existsSync(CONTROL_PLANE_CLI);

describe.skipIf(!built)('control-plane enrollment: DNS names, and failures that cost nothing', () => {
  let ca: StepCa;
  let dir: string;
  let cp: ControlPlane;
  let strict: ControlPlane;
  let env: NodeJS.ProcessEnv;

  const agent = async (name: string, config: object): Promise<(args: string[]) => Promise<RunResult>> => {
    await writeFile(join(dir, `${name}.json`), JSON.stringify({ identity: { keyStorage: 'file', ...config } }));
    return (args) => runCliProcess(['--config', join(dir, `${name}.json`), '--state-dir', join(dir, `${name}-state`), ...args], env, 90_000);
  };
  const secretOn = async (server: ControlPlane): Promise<{ id: string; secret: string }> => {
    const r = await server.admin('POST', '/v1/admin/secrets', { uses: 5 });
    expect(r.status).toBe(201);
    return JSON.parse(r.body) as { id: string; secret: string };
  };
  const usesLeft = async (server: ControlPlane, id: string): Promise<number | undefined> =>
    (JSON.parse((await server.admin('GET', '/v1/admin/secrets')).body) as { secrets: { id: string; usesLeft: number }[] }).secrets.find((s) => s.id === id)?.usesLeft;
  const devices = async (server: ControlPlane): Promise<string[]> =>
    (JSON.parse((await server.admin('GET', '/v1/admin/devices')).body) as { devices: { id: string }[] }).devices.map((d) => d.id);

  beforeAll(async () => {
    ca = await startStepCa({ claims: { defaultTLSCertDuration: '1h', maxTLSCertDuration: '24h' } });
    dir = await mkdtemp(join(tmpdir(), 'vigil-e2e-domain-'));
    env = isolatedEnv(join(dir, 'home'));
    for (const sub of ['cp', 'strict']) await mkdir(join(dir, sub));
    cp = await startControlPlane(ca, join(dir, 'cp'), { extraArgs: ['--device-dns-suffix', 'devices.example.com'] });
    // Asks step-ca for longer certificates than its provisioner allows: every signing fails at the CA.
    strict = await startControlPlane(ca, join(dir, 'strict'), { extraArgs: ['--device-cert-duration', '48h'] });
  }, 180_000);

  afterAll(async () => {
    await cp.stop();
    await strict.stop();
    await ca.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('identity.domain: the token carries the DNS name the CSR asks for, and the certificate has it', async () => {
    const vigil = await agent('domain', { domain: 'example.com' });
    const s = await secretOn(cp);
    const r = await vigil(['enroll', '--control-plane', cp.url, '--enrollment-secret', s.secret, '--ca-url', ca.url, '--fingerprint', ca.rootFingerprint]);
    expect(r.code, `${r.stderr}\n${cp.log()}`).toBe(0);
    const id = JSON.parse((await vigil(['identity', '--json'])).stdout) as { deviceId: string; dnsNames?: string[] };
    expect(id.dnsNames).toEqual([`${id.deviceId}.devices.example.com`]);
    expect(await usesLeft(cp, s.id)).toBe(4);
    expect(await devices(cp)).toEqual([id.deviceId]);
  }, 120_000);

  it('a domain outside the control plane’s is refused before anything is spent', async () => {
    const vigil = await agent('other', { domain: 'other.org' });
    const s = await secretOn(cp);
    const r = await vigil(['enroll', '--control-plane', cp.url, '--enrollment-secret', s.secret, '--ca-url', ca.url, '--fingerprint', ca.rootFingerprint]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/is not under devices\.example\.com.*set identity\.domain to match/);
    expect(await usesLeft(cp, s.id)).toBe(5);
  }, 120_000);

  it('an enrollment the CA refuses spends no use of the secret and leaves no device behind', async () => {
    const vigil = await agent('refused', {});
    const s = await secretOn(strict);
    const r = await vigil(['enroll', '--control-plane', strict.url, '--enrollment-secret', s.secret, '--ca-url', ca.url, '--fingerprint', ca.rootFingerprint]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/CA/);
    expect(await devices(strict)).toEqual([]);
    // The use is held for this device's enrollment, not spent: a retry takes the same one, and it comes back
    // when the hour is up.
    expect(await usesLeft(strict, s.id)).toBe(5);
    expect((await vigil(['enroll', '--control-plane', strict.url, '--enrollment-secret', s.secret, '--ca-url', ca.url, '--fingerprint', ca.rootFingerprint])).code).not.toBe(0);
    expect(await usesLeft(strict, s.id)).toBe(5);
  }, 120_000);
});
