import { readFile } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { IdentityError } from '../../src/identity/errors.js';
import type { IdentityManager, RenewOutcome } from '../../src/identity/manager.js';
import { Scheduler } from '../../src/agent/scheduler.js';
import { renewalJob } from '../../src/identity/renewal-job.js';
import { StaticToken } from '../../src/identity/token.js';
import { startStepCa } from '../harness/stepca.js';
import { assertNoPlaintextKey, config, currentKeySecret, manager, memorySecretStore, newStateDir, sleep } from './helpers.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(certDuration: string, overrides: Record<string, unknown>) {
  const ca = await startStepCa({ claims: { defaultTLSCertDuration: certDuration } });
  cleanups.push(() => ca.close());
  const dir = await newStateDir();
  const m = manager(dir, config({ retryInitialSeconds: 0.5, retryMaxSeconds: 2, ...overrides }), memorySecretStore());
  const enroll = async (target: IdentityManager = m) => {
    const { request, tokenSans } = await target.requestedSubject();
    const token = new StaticToken(await ca.token({ subject: request.commonName, sans: tokenSans }));
    return target.enroll({ caUrl: ca.url, fingerprint: ca.rootFingerprint, token });
  };
  await enroll();
  const outcomes: RenewOutcome[] = [];
  // The daemon's own scheduler running the daemon's renewal job; only the delay floor is lowered.
  const scheduler = new Scheduler();
  cleanups.push(() => scheduler.stop());
  const job = {
    start: () => {
      scheduler.add(renewalJob(m, { minDelayMs: 100, onOutcome: (o) => outcomes.push(o) }));
    },
  };
  return { ca, dir, m, job, outcomes, enroll };
}

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function certPem(m: IdentityManager): Promise<string> {
  const p = await m.store.readPointer();
  return readFile(m.store.path(p?.certFile ?? ''), 'utf8');
}

describe('renewal under the daemon job against a real step-ca', () => {
  it('renews several times in a row, each from NotAfter, never leaving a plaintext key', async () => {
    // 6 s certificates (7 s with the 1 s backdate), renewed once half the lifetime is gone.
    const { dir, m, job, outcomes } = await setup('6s', { renewFraction: 0.5 });
    const serials = [(await m.status()).serial];
    job.start();
    for (let i = 1; i <= 3; i++) {
      await until(`renewal ${i}`, () => outcomes.filter((o) => o.action === 'renewed').length >= i, 15_000);
      const s = await m.status();
      expect(s.state).toBe('valid');
      serials.push(s.serial);
      const { secret } = await currentKeySecret(m);
      await assertNoPlaintextKey(dir, [secret]);
    }
    expect(new Set(serials).size).toBe(4);
    expect(outcomes.some((o) => o.action === 'failed')).toBe(false);
    const notAfters = outcomes.flatMap((o) => (o.action === 'renewed' ? [o.notAfter.getTime()] : []));
    expect([...notAfters].sort((a, b) => a - b)).toEqual(notAfters);
  }, 60_000);

  it('rides out a CA outage in the renewal window: backs off, keeps the cert, renews once the CA is back', async () => {
    const { ca, m, job, outcomes } = await setup('20s', { renewFraction: 0.6 });
    const original = await m.status();
    const originalPem = await certPem(m);
    await ca.stop();
    job.start();
    await until('two failed attempts', () => outcomes.filter((o) => o.action === 'failed').length >= 2, 20_000);
    const during = await m.status();
    expect(during.state).toBe('valid');
    expect(during.serial).toBe(original.serial);
    expect(during.consecutiveFailures).toBeGreaterThanOrEqual(2);
    expect(during.lastError).toMatch(/cannot reach the CA/);
    expect(await certPem(m)).toBe(originalPem);
    const failures = outcomes.filter((o): o is Extract<RenewOutcome, { action: 'failed' }> => o.action === 'failed');
    // Backoff grows: the second retry is scheduled further out than the first.
    const gaps = failures.slice(0, 2).map((f) => f.retryAt.getTime());
    expect(gaps[1]).toBeGreaterThan(gaps[0] ?? 0);
    await ca.restart();
    await until('renewal after restart', () => outcomes.some((o) => o.action === 'renewed'), 15_000);
    const after = await m.status();
    expect(after.state).toBe('valid');
    expect(after.serial).not.toBe(original.serial);
    expect(after.consecutiveFailures).toBe(0);
    expect(Date.parse(after.notAfter ?? '')).toBeGreaterThan(Date.parse(original.notAfter ?? ''));
    expect(Date.now()).toBeLessThan(Date.parse(original.notAfter ?? ''));
  }, 60_000);

  it('keeps trying an expired cert while the CA is down; once the CA refuses renewal after expiry it stops and needs enrollment', async () => {
    const { ca, m, job, outcomes, enroll } = await setup('5s', { renewFraction: 0.1 });
    const s0 = await m.status();
    await ca.stop();
    job.start();
    await until('expiry', () => Date.now() > Date.parse(s0.notAfter ?? '') + 300, 15_000);
    await until('needs-enrollment', async () => (await m.status()).state === 'needs-enrollment', 5000);
    // Expired but not refused: the CA might allow renewal after expiry, so the job keeps trying with backoff.
    expect((await m.status()).reason).toMatch(/expired at .*; renewing it after expiry will be tried/);
    const failedAtExpiry = outcomes.filter((o) => o.action === 'failed').length;
    await until('a failed attempt after expiry', () => outcomes.filter((o) => o.action === 'failed').length > failedAtExpiry, 5000);
    expect(m.nextRunAt()).toBeDefined();
    await ca.restart();
    // This provisioner does not allow renewal after expiry: one refusal ends the attempts.
    await until('the refusal', () => m.nextRunAt() === undefined, 10_000);
    const s = await m.status();
    expect(s.state).toBe('needs-enrollment');
    expect(s.reason).toMatch(/^the CA refused to renew the expired certificate \(HTTP 401: .*\): it expired at .* and its provisioner does not allow renewal after expiry; run `vigil enroll /);
    const before = outcomes.length;
    const failedBefore = outcomes.filter((o) => o.action === 'failed').length;
    await sleep(1000);
    expect(outcomes.filter((o) => o.action === 'failed').length).toBe(failedBefore);
    expect(outcomes.slice(before).every((o) => o.action === 'skipped')).toBe(true);
    const err = await m.renew({ force: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IdentityError);
    expect((err as IdentityError).code).toBe('expired');
    await enroll();
    expect((await m.status()).state).toBe('valid');
  }, 60_000);
});

