import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnrollmentError, EnrollmentSecretToken } from '../../src/reporting/enrollment-token.js';
import { ADMIN_TOKEN, startHarness, type Harness } from '../helpers/control-plane.js';
import { call } from '../helpers/https.js';
import { sampleReport } from '../helpers/report.js';

/* The agent's side of enrollment by secret, against the control plane in process over real TLS. */

let h: Harness;
beforeAll(async () => {
  // One enrollment every 10 s per device once the burst is spent: far more than the moments between the
  // refused call and the retry, so the retry always finds the bucket empty and must wait.
  h = await startHarness({ enrollPerDevicePerMinute: 6 });
});
afterAll(async () => {
  await h.cp.close();
});

const request = (deviceId: string) => ({ caUrl: 'https://ca.test:9000', rootPem: h.pki.rootPem, deviceId, subject: `device-${deviceId}`, sans: [`urn:vigil:device:${deviceId}`] });

describe('EnrollmentSecretToken', () => {
  it('waits out a 429 as the server asks, saying so, then gets its token', async () => {
    const { secret } = (await call(h.pki.rootPem, `${h.cp.url}/v1/admin/secrets`, { body: { uses: 200 }, token: ADMIN_TOKEN })).json as { secret: string };
    const waits: number[] = [];
    const source = (budgetMs: number) =>
      new EnrollmentSecretToken({
        controlPlaneUrl: h.cp.url,
        secret,
        facts: () => Promise.resolve(sampleReport().device),
        clientTls: () => Promise.reject(new Error('not used here')),
        rateLimitBudgetMs: budgetMs,
        onRateLimited: (s) => waits.push(s),
      });
    // Spend this device ID's minute of enrollments; with no budget to wait, the 429 comes back as it is.
    let refused: unknown;
    for (let i = 0; i < 100 && refused === undefined; i++) {
      refused = await source(0)
        .getToken(request('dev-busy-1'))
        .then(() => undefined, (e: unknown) => e);
    }
    expect(refused).toBeInstanceOf(EnrollmentError);
    expect((refused as EnrollmentError).code).toBe('rate-limited');
    expect((refused as EnrollmentError).retryAfterSeconds).toBeGreaterThan(0);
    // With a budget, it waits (about ten seconds here) and succeeds.
    const t0 = Date.now();
    expect(typeof (await source(20_000).getToken(request('dev-busy-1')))).toBe('string');
    expect(waits.length).toBeGreaterThan(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
  }, 45_000);
});
