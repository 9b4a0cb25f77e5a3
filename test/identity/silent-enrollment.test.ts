import { describe, expect, it } from 'vitest';
import { renewalJob } from '../../src/identity/renewal-job.js';
import { config, manager, memorySecretStore, newStateDir, sleep } from './helpers.js';
import { capturingLogger } from '../helpers/logger.js';

describe('silent enrollment in the renewal job', () => {
  it('tries at once when not enrolled, backs off between failures, and logs each distinct failure once', async () => {
    const m = manager(await newStateDir(), config(), memorySecretStore());
    const { logger, lines } = capturingLogger();
    let calls = 0;
    let problem = 'cannot reach the control plane';
    const job = renewalJob(m, {
      logger,
      minDelayMs: 1,
      enrollBackoff: { baseMs: 200, capMs: 800 },
      enroll: () => {
        calls++;
        return Promise.reject(new Error(problem));
      },
    });
    const failures = (): string[] => lines.filter((l) => l.startsWith('error enrollment failed'));

    await job.run();
    expect(calls).toBe(1);
    expect(failures()).toEqual(['error enrollment failed: cannot reach the control plane; retrying with backoff']);
    const first = job.nextDelayMs();
    expect(first).toBeGreaterThanOrEqual(100);
    expect(first).toBeLessThanOrEqual(200);

    // Run early (as after a wake): the backoff holds.
    await job.run();
    expect(calls).toBe(1);

    await sleep(first + 20);
    await job.run();
    expect(calls).toBe(2);
    // The same reason is not logged again, and the wait grows.
    expect(failures()).toHaveLength(1);
    expect(job.nextDelayMs()).toBeGreaterThan(first);

    problem = 'the control plane refused enrollment: the enrollment secret is not valid';
    await sleep(job.nextDelayMs() + 20);
    await job.run();
    expect(calls).toBe(3);
    expect(failures()).toHaveLength(2);
    expect(failures()[1]).toBe(`error enrollment failed: ${problem}; retrying with backoff`);
  });

  it('without an enrollment route, a device that is not enrolled waits for `vigil enroll`', async () => {
    const m = manager(await newStateDir(), config(), memorySecretStore());
    const job = renewalJob(m, { recheckMs: 60_000 });
    await job.run();
    expect(job.nextDelayMs()).toBe(60_000);
  });
});
