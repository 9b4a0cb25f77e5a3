import type { Job } from '../agent/scheduler.js';
import type { DaemonExtension } from '../agent/daemon.js';
import { silentLogger, type Logger } from '../logging/logger.js';
import type { Runtime } from '../runtime.js';
import { IdentityManager, type RenewOutcome } from './manager.js';

export const IDENTITY_JOB = 'identity-renewal';

export interface RenewalJobOptions {
  logger?: Logger;
  /** Re-read the identity at least this often, to notice an enrollment made by the CLI meanwhile. */
  recheckMs?: number;
  /** Floor on the delay, so a clock oddity cannot spin the job. */
  minDelayMs?: number;
  onOutcome?: (outcome: RenewOutcome) => void;
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
  return {
    name: IDENTITY_JOB,
    runOnWake: true,
    run: async () => {
      const outcome = await manager.renewIfDue();
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
      const next = manager.nextRunAt();
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
    m = new IdentityManager({ stateDir: runtime.loaded.stateDir, config: runtime.loaded.config.identity, logger: runtime.logger });
    shared.set(runtime, m);
  }
  return m;
}

/** Hooks renewal onto `vigil daemon`. */
export const identityDaemonExtension: DaemonExtension = ({ runtime, scheduler, logger }) => {
  scheduler.add(renewalJob(daemonIdentityManager(runtime), { logger }));
  return Promise.resolve(undefined);
};
