import type { Job } from '../agent/scheduler.js';
import type { DaemonExtension } from '../agent/daemon.js';
import { silentLogger, type Logger } from '../logging/logger.js';
import { backoffDelay, type BackoffOptions } from '../reporting/backoff.js';
import type { Runtime } from '../runtime.js';
import { enrollDevice, readEnrollmentSecret, silentEnrollmentConfig } from './enroll-device.js';
import { identityManagerFor } from './for-runtime.js';
import type { IdentityManager, RenewOutcome } from './manager.js';

export const IDENTITY_JOB = 'identity-renewal';

export interface RenewalJobOptions {
  logger?: Logger;
  /** Re-read the identity at least this often, to notice an enrollment made by the CLI meanwhile. */
  recheckMs?: number;
  /** Floor on the delay, so a clock oddity cannot spin the job. */
  minDelayMs?: number;
  onOutcome?: (outcome: RenewOutcome) => void;
  /**
   * Enrolls the device (with an enrollment secret), for when it is not enrolled or its certificate expired
   * and could not be renewed. Without it, such a device waits for someone to run `vigil enroll`.
   */
  enroll?: () => Promise<void>;
  /** Backoff between failed enrollments. */
  enrollBackoff?: BackoffOptions;
}

/** Silent enrollment's attempts: backs off between failures and logs each distinct failure once. */
class EnrollAttempts {
  private failures = 0;
  private notBefore = 0;
  private lastProblem: string | undefined;

  constructor(
    private readonly enroll: () => Promise<void>,
    private readonly backoff: BackoffOptions,
    private readonly log: Logger,
  ) {}

  /** When the next attempt may run (epoch ms). */
  get dueAt(): number {
    return this.notBefore;
  }

  async run(): Promise<void> {
    if (Date.now() < this.notBefore) return;
    // Retries stay quiet unless they fail differently: a fleet offline for a day must not fill its logs.
    if (this.failures === 0) this.log.info('enrolling with the enrollment secret');
    try {
      await this.enroll();
      this.log.info('enrolled with the enrollment secret');
      this.failures = 0;
      this.notBefore = 0;
      this.lastProblem = undefined;
    } catch (err) {
      const problem = err instanceof Error ? err.message : String(err);
      this.notBefore = Date.now() + backoffDelay(this.failures, this.backoff);
      this.failures++;
      if (problem !== this.lastProblem) this.log.error(`enrollment failed: ${problem}; retrying with backoff`, { retryAt: new Date(this.notBefore).toISOString() });
      this.lastProblem = problem;
    }
  }
}

/**
 * The daemon's renewal job. It does not poll the CA: after each run it sleeps until the manager's
 * nextRunAt (the renewal time derived from NotAfter, or the backoff after a failure), capped at
 * `recheckMs`. It runs at daemon start and, through the scheduler's watchdog, right after the machine wakes.
 */
export function renewalJob(manager: IdentityManager, opts: RenewalJobOptions = {}): Job {
  const log = (opts.logger ?? silentLogger()).child({ component: 'identity' });
  const recheckMs = opts.recheckMs ?? 10 * 60_000;
  const minDelayMs = opts.minDelayMs ?? 1000;
  let lastNeedsEnrollment: string | undefined;
  const enrolling = opts.enroll ? new EnrollAttempts(opts.enroll, opts.enrollBackoff ?? { baseMs: 5000, capMs: 15 * 60_000 }, log) : undefined;
  /** Set while the device needs enrolling and silent enrollment can do it: the job then runs on its backoff. */
  let enrollPending = false;
  return {
    name: IDENTITY_JOB,
    runOnWake: true,
    run: async () => {
      const outcome = await manager.renewIfDue();
      enrollPending = enrolling !== undefined && outcome.action === 'skipped' && (outcome.state === 'not-enrolled' || outcome.state === 'needs-enrollment');
      if (enrollPending) {
        await enrolling?.run();
        enrollPending = (await manager.status()).state !== 'valid';
      }
      if (outcome.action === 'failed') {
        log.warn(`certificate renewal failed: ${outcome.error.message}`, { retryAt: outcome.retryAt.toISOString() });
      } else if (outcome.action === 'revoked') {
        // The manager logged the refusal as it recorded it; the skipped runs that follow must not log it again.
        lastNeedsEnrollment = outcome.reason;
      } else if (outcome.action === 'skipped' && (outcome.state === 'needs-enrollment' || outcome.state === 'revoked')) {
        // Once per distinct reason: the state persists until someone re-enrolls, and the log must not flood.
        if (outcome.reason !== lastNeedsEnrollment) {
          log.error(`device certificate ${outcome.state === 'revoked' ? 'revoked' : 'needs enrollment'}: ${outcome.reason ?? ''}`);
        }
        lastNeedsEnrollment = outcome.reason;
      }
      opts.onOutcome?.(outcome);
    },
    nextDelayMs: () => {
      const next = enrollPending && enrolling ? new Date(enrolling.dueAt) : manager.nextRunAt();
      const delay = next ? next.getTime() - Date.now() : recheckMs;
      return Math.min(recheckMs, Math.max(minDelayMs, delay));
    },
  };
}

const shared = new WeakMap<Runtime, IdentityManager>();

/**
 * One manager per daemon runtime, shared by renewal and reporting: reporting hears of a refusal the
 * moment renewal records it (onRevoked), and the two never unseal the key or swap files concurrently.
 */
export function daemonIdentityManager(runtime: Runtime): IdentityManager {
  let m = shared.get(runtime);
  if (!m) {
    m = identityManagerFor(runtime);
    shared.set(runtime, m);
  }
  return m;
}

/** Silent enrollment (see silentEnrollmentConfig), or undefined when the config does not allow it. */
function silentEnrollment(runtime: Runtime, manager: IdentityManager, logger: Logger): (() => Promise<void>) | undefined {
  const silent = silentEnrollmentConfig(runtime.loaded.config);
  if (!silent) return undefined;
  return async () => {
    // Loaded at the first attempt: a daemon that is enrolled never needs the reporting client resident.
    const { enrollmentTokenSource } = await import('../reporting/setup.js');
    // Read at each attempt, so a secret the MDM replaces is picked up without a restart.
    const token = enrollmentTokenSource(runtime, manager, silent.controlPlaneUrl, await readEnrollmentSecret(silent.secretFile));
    // Nothing to save: every value came from the config.
    await enrollDevice({ stateDir: runtime.loaded.stateDir, manager, token, given: {}, logger });
  };
}

/** Hooks renewal, and silent enrollment where configured, onto `vigil daemon`. */
export const identityDaemonExtension: DaemonExtension = ({ runtime, scheduler, logger, board }) => {
  const manager = daemonIdentityManager(runtime);
  const enroll = silentEnrollment(runtime, manager, logger);
  // Every run may have renewed, enrolled or failed: clients re-read the identity.
  scheduler.add(renewalJob(manager, { logger, ...(enroll ? { enroll } : {}), onOutcome: () => {
    board.changed();
  } }));
  return Promise.resolve(undefined);
};
