import type { DaemonExtension } from '../agent/daemon.js';
import type { ScanOutcome } from '../agent/agent.js';
import { ENROLLMENT_FILE, readSavedEnrollment } from '../config/enrollment-file.js';
import { silentEnrollmentConfig } from '../identity/enroll-device.js';
import type { IdentityManager } from '../identity/manager.js';
import { IdentityWatch } from './identity-watch.js';
import type { Reporter } from './reporter.js';
import type { RevocationNotifier } from './revocation-notice.js';

/**
 * Continuous reporting in `vigil daemon`. Off unless a control-plane URL is known and the device holds a
 * certificate: without one the control plane cannot tell who is reporting. The identity is watched, so
 * an enrollment or unenrollment made by another process (MDM enrolls after starting the daemon) starts or
 * stops reporting without a restart. The URL comes from reporting.controlPlaneUrl; when the config at
 * daemon start had none, from what `vigil enroll --control-plane` saves later, also watched.
 */
export const reportingDaemonExtension: DaemonExtension = async ({ runtime, agent, logger, board }) => {
  const configured = runtime.loaded.config.reporting.controlPlaneUrl;
  const log = logger.child({ component: 'reporter' });
  let baseUrl = configured;
  /** The saved file's problem last logged, so a corrupt file is reported once, not on every check. */
  let savedProblem: string | undefined;
  const savedUrl = async (): Promise<string | undefined> => {
    try {
      const url = (await readSavedEnrollment(runtime.loaded.stateDir))?.reporting?.controlPlaneUrl;
      savedProblem = undefined;
      return url;
    } catch (err) {
      const problem = err instanceof Error ? err.message : String(err);
      if (problem !== savedProblem) log.error(`reporting stays off: ${problem}`);
      savedProblem = problem;
      return undefined;
    }
  };
  interface Setup {
    module: typeof import('./setup.js');
    manager: IdentityManager;
    revocation: RevocationNotifier;
    unsubscribe: () => void;
  }
  // Loaded only once there is a control plane to talk to: otherwise it would stay resident for nothing.
  let setup: Setup | undefined;
  const loadSetup = async (url: string): Promise<Setup> => {
    if (!setup) {
      const [module, { daemonIdentityManager }, { RevocationNotifier }] = await Promise.all([
        import('./setup.js'),
        import('../identity/renewal-job.js'),
        import('./revocation-notice.js'),
      ]);
      // The renewal job's manager: reporting hears of a refusal the moment renewal records it.
      const manager = daemonIdentityManager(runtime);
      const revocation = new RevocationNotifier({
        baseUrl: url,
        identity: { current: () => manager.clientTls() },
        markReported: (serial) => manager.markRevocationReported(serial),
        logger,
        timeoutMs: runtime.loaded.config.reporting.requestTimeoutSeconds * 1000,
      });
      // The CA refused the certificate: the server must hear it (reporting posture under it is pointless now).
      const unsubscribe = manager.onRevoked((notice) => {
        if (notice.reportedAt === undefined) revocation.notify(notice.serial);
        void reconcile();
      });
      setup = { module, manager, revocation, unsubscribe };
    }
    return setup;
  };
  let reporter: Reporter | null = null;
  let reportedPolicy: string | undefined;
  /** The certificate the control plane last heard of, so that a renewal is reported at once. */
  let reportedSerial: string | undefined;
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

  const startReporting = async (url: string): Promise<void> => {
    const { module, manager } = await loadSetup(url);
    const r = await module.createReporter(runtime, agent, manager, url, {
      onRecheck: (id) => {
        log.info('control plane asked for a re-check', { requestId: id });
      },
      onStatusChange: () => {
        board.changed();
      },
    });
    reporter = r;
    r.start();
    log.info(`reporting to ${url}`);
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
    await reconcileReporting();
    board.changed();
  };
  const reconcileReporting = async (): Promise<void> => {
    try {
      baseUrl ??= await savedUrl();
      if (baseUrl === undefined) return;
      const { manager } = await loadSetup(baseUrl);
      const identity = await manager.status();
      if (stopped) return;
      const serialBefore = reportedSerial;
      reportedSerial = identity.serial;
      const usable = identity.state === 'valid' || identity.state === 'renewing';
      if (usable && !reporter) {
        await startReporting(baseUrl);
      } else if (usable && reporter) {
        // A new certificate (renewed, or enrolled again after a refusal) deserves a try right away.
        reporter.retryNow();
        // Gateways admit only the device's current certificate, which the control plane learns from a
        // report made with it: waiting for the next heartbeat would lock the device out for minutes.
        if (serialBefore !== undefined && identity.serial !== serialBefore && agent.report) reporter.postureChanged(agent.report);
      } else if (!usable) {
        const state = `${identity.state}${identity.reason ? ` (${identity.reason})` : ''}`;
        if (reporter) {
          await stopReporting();
          log.warn(`reporting to ${baseUrl} stopped: the device is ${state}`);
        } else if (announced !== state) {
          const by = silentEnrollmentConfig(runtime.loaded.config) ? 'the daemon enrolls with reporting.enrollmentSecretFile, or `vigil enroll`' : '`vigil enroll`';
          log.warn(`reporting is off until the device is enrolled (now ${state}); it starts by itself after ${by}`);
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

  board.setReporting(() => {
    if (baseUrl === undefined) return { state: 'off', queued: 0, dropped: 0 };
    if (!reporter) return { state: 'waiting-for-enrollment', controlPlaneUrl: baseUrl, queued: 0, dropped: 0 };
    return { ...reporter.status(), controlPlaneUrl: baseUrl };
  });
  const watch = new IdentityWatch({ stateDir: runtime.loaded.stateDir, onChange: reconcile, ...(configured === undefined ? { alsoFiles: [ENROLLMENT_FILE] } : {}) });
  await watch.start();
  await reconcile();
  return {
    stop: async () => {
      stopped = true;
      watch.stop();
      await watch.idle();
      await queue;
      await stopReporting();
      setup?.unsubscribe();
      await setup?.revocation.stop();
    },
  };
};
