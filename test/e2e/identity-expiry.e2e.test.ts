import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { identityConfigSchema } from '../../src/config/sections/identity.js';
import { IdentityManager } from '../../src/identity/manager.js';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { CLI, isolatedEnv, runCliProcess, startCliProcess, tempDir, waitFor } from '../helpers.js';

/*
 * A laptop that was off past its certificate's expiry, with a real step-ca 0.19 and the built CLI: the
 * certificate expires while no daemon runs, then the daemon starts. Certificates last 65 s: step-ca checks
 * the chain in a renewal token as of NotAfter minus one minute, so a shorter one could never renew this way.
 */

interface Shown {
  state: string;
  reason?: string;
  serial?: string;
  notAfter?: string;
}

interface Laptop {
  ca: StepCa;
  vigil: (...args: string[]) => ReturnType<typeof runCliProcess>;
  identity: () => Promise<Shown>;
  daemon: () => ReturnType<typeof startCliProcess>;
}

const cas: StepCa[] = [];
afterAll(async () => {
  for (const ca of cas) await ca.close();
});

async function enrolledLaptop(allowRenewalAfterExpiry: boolean): Promise<Laptop> {
  const ca = await startStepCa({ claims: { defaultTLSCertDuration: '65s', allowRenewalAfterExpiry } });
  cas.push(ca);
  const stateDir = tempDir();
  const env = isolatedEnv(tempDir(), { VIGIL_IDENTITY_KEY_STORAGE: 'file', VIGIL_IDENTITY_RENEW_JITTER: '0', VIGIL_IDENTITY_RETRY_INITIAL_SECONDS: '1' });
  const vigil = (...args: string[]) => runCliProcess(['--state-dir', stateDir, ...args], env);
  const m = new IdentityManager({ stateDir, config: identityConfigSchema.parse({}) });
  const { request, tokenSans } = await m.requestedSubject();
  const enrolled = await vigil('enroll', '--ca-url', ca.url, '--fingerprint', ca.rootFingerprint, '--token', await ca.token({ subject: request.commonName, sans: tokenSans }));
  expect(enrolled.code, enrolled.stderr).toBe(0);
  return {
    ca,
    vigil,
    identity: async () => JSON.parse((await vigil('identity', '--json')).stdout) as Shown,
    daemon: () => startCliProcess(['--state-dir', stateDir, 'daemon'], env),
  };
}

async function stop(d: ReturnType<typeof startCliProcess>): Promise<void> {
  const exited = new Promise((r) => d.child.once('exit', r));
  d.child.kill('SIGTERM');
  await exited;
}

describe.skipIf(!existsSync(CLI))('back after the certificate expired (laptop off)', () => {
  it('renews by itself where the provisioner allows renewal after expiry, and says why in one line where not', async () => {
    // Both laptops expire together, so the minute of waiting is spent once.
    const [allowed, refused] = await Promise.all([enrolledLaptop(true), enrolledLaptop(false)]);
    const before = await allowed.identity();
    const last = Math.max(Date.parse(before.notAfter ?? ''), Date.parse((await refused.identity()).notAfter ?? ''));
    await waitFor(() => Date.now() > last + 1000, 90_000, 'both certificates to expire');
    expect((await allowed.identity()).state).toBe('needs-enrollment');
    expect((await refused.identity()).state).toBe('needs-enrollment');

    const d1 = allowed.daemon();
    const d2 = refused.daemon();
    try {
      await waitFor(async () => ((await allowed.identity()).state === 'valid' ? true : undefined), 20_000, `the daemon to renew:\n${d1.output()}`);
      const after = await allowed.identity();
      expect(after.serial).not.toBe(before.serial);
      expect(Date.parse(after.notAfter ?? '')).toBeGreaterThan(Date.now());
      expect(d1.output()).toMatch(/renewed device certificate/);

      const why = /device certificate needs enrollment: the CA refused to renew the expired certificate \(HTTP 401: .*\): it expired at \S+ and its provisioner does not allow renewal after expiry; run `vigil enroll /;
      await waitFor(() => (why.test(d2.output()) ? true : undefined), 20_000, `the daemon to say why:\n${d2.output()}`);
      // Once: after the refusal it stops asking the CA, and the log does not repeat itself.
      await new Promise((r) => setTimeout(r, 3000));
      expect(d2.output().split('\n').filter((l) => why.test(l))).toHaveLength(1);
      expect(refused.ca.logs().split('\n').filter((l) => l.includes('/1.0/renew'))).toHaveLength(1);
      const shown = await refused.identity();
      expect(shown.state).toBe('needs-enrollment');
      // A new CLI process has not seen the refusal; it says renewal will be tried.
      expect(shown.reason).toMatch(/expired at .*; renewing it after expiry will be tried/);
    } finally {
      await Promise.all([stop(d1), stop(d2)]);
    }
    // `vigil renew` on an expired certificate asks the CA the same way.
    const renew = await refused.vigil('renew');
    expect(renew.code).toBe(1);
    expect(renew.stderr).toMatch(/the CA refused to renew the expired certificate/);
  }, 180_000);
});
