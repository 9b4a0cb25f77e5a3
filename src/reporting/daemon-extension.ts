import type { DaemonExtension } from '../agent/daemon.js';
import type { ScanOutcome } from '../agent/agent.js';
import { IdentityWatch } from './identity-watch.js';
import type { Reporter } from './reporter.js';

/**
 * Continuous reporting in `vigil daemon`. Off unless reporting.controlPlaneUrl is set and the device holds
 * a certificate: without one the control plane cannot tell who is reporting. The identity is watched, so
 * an enrollment or unenrollment made by another process (MDM enrolls after starting the daemon) starts or
 * stops reporting without a restart.
 */
export const reportingDaemonExtension: DaemonExtension = async ({ runtime, agent, logger }) => {
  const baseUrl = runtime.loaded.config.reporting.controlPlaneUrl;
  if (baseUrl === undefined) return undefined;
  // Not loaded by a daemon that has no control plane to talk to: it would stay resident for nothing.
  const [{ createReporter }, { daemonIdentityManager }, { RevocationNotifier }] = await Promise.all([
    import('./setup.js'),
    import('../identity/renewal-job.js'),
    import('./revocation-notice.js'),
  ]);
  const manager = daemonIdentityManager(runtime);
  const log = logger.child({ component: 'reporter' });
  const revocation = new RevocationNotifier({
    baseUrl,
    identity: { current: () => manager.clientTls() },
    markReported: (serial) => manager.markRevocationReported(serial),
    logger,
    timeoutMs: runtime.loaded.config.reporting.requestTimeoutSeconds * 1000,
  });
  let reporter: Reporter | null = null;
  let reportedPolicy: string | undefined;
  let stopped = false;
  /** The state last logged, so each transition is logged once. */
  let announced: string | undefined;

  agent.on('scanned', (outcome: ScanOutcome) => {
    // Unchanged posture is left to the heartbeat; a new policy version is news to the server even then.
    if (!reporter || (outcome.changes.length === 0 && !outcome.level && outcome.report.policy.version === reportedPolicy)) return;
    reportedPolicy = outcome.report.policy.version;
    reporter.postureChanged(outcome.report);
  });
  agent.on('policy-changed', () => {
    if (!reporter) return;
    // A scan already running was started under the old policy; the new one needs a scan of its own.
    const inFlight = agent.scanning ? agent.scan().catch(() => undefined) : Promise.resolve(undefined);
    inFlight.then(() => agent.scan()).catch((err: unknown) => {
      log.error(`scan after a policy change failed: ${err instanceof Error ? err.message : String(err)}`);
    });
  });

  const startReporting = async (): Promise<void> => {
    const r = await createReporter(runtime, agent, manager, baseUrl, {
      onRecheck: (id) => {
        log.info('control plane asked for a re-check', { requestId: id });
      },
    });
    reporter = r;
    r.start();
    log.info(`reporting to ${baseUrl}`);
    if (announced === undefined) {
      // At daemon start: its first scan may have finished already; if not, the 'scanned' handler sends it.
      const first = agent.report;
      if (first) {
        reportedPolicy = first.policy.version;
        r.postureChanged(first);
      }
      return;
    }
    // Enrolled while the daemon ran: the last scan may be old, and the server should start from the present.
    agent
      .scan()
      .then((o) => {
        if (reporter !== r) return;
        reportedPolicy = o.report.policy.version;
        r.postureChanged(o.report);
      })
      .catch((err: unknown) => {
        log.error(`first scan for reporting failed: ${err instanceof Error ? err.message : String(err)}`);
      });
  };

  const stopReporting = async (): Promise<void> => {
    const r = reporter;
    reporter = null;
    await r?.stop();
  };

  /** Brings reporting in line with the identity on disk. */
  const reconcileNow = async (): Promise<void> => {
    try {
      const identity = await manager.status();
      if (stopped) return;
      const usable = identity.state === 'valid' || identity.state === 'renewing';
      if (usable && !reporter) {
        await startReporting();
      } else if (usable && reporter) {
        // A new certificate (renewed, or enrolled again after a refusal) deserves a try right away.
        reporter.retryNow();
      } else if (!usable) {
        const state = `${identity.state}${identity.reason ? ` (${identity.reason})` : ''}`;
        if (reporter) {
          await stopReporting();
          log.warn(`reporting to ${baseUrl} stopped: the device is ${state}`);
        } else if (announced !== state) {
          log.warn(`reporting is off until the device is enrolled (now ${state}); it starts by itself after \`vigil enroll\``);
        }
        announced = state;
        return;
      }
      announced = 'on';
    } catch (err) {
      log.error(`could not check the device identity: ${err instanceof Error ? err.message : String(err)}`);
    }
  };

  let queue: Promise<void> = Promise.resolve();
  // The watch and daemon start could otherwise overlap and start two reporters.
  const reconcile = (): Promise<void> => (queue = queue.then(reconcileNow));

  const watch = new IdentityWatch({ stateDir: runtime.loaded.stateDir, onChange: reconcile });
  // The CA refused the certificate: the server must hear it (reporting posture under it is pointless now).
  const unsubscribe = manager.onRevoked((notice) => {
    if (notice.reportedAt === undefined) revocation.notify(notice.serial);
    void reconcile();
  });
  await watch.start();
  await reconcile();
  return {
    stop: async () => {
      stopped = true;
      unsubscribe();
      watch.stop();
      await watch.idle();
      await queue;
      await stopReporting();
      await revocation.stop();
    },
  };
};
