import type { DaemonExtension } from '../agent/daemon.js';
import { createReporter, identityManager } from './setup.js';

/**
 * Continuous reporting in `vigil daemon`. Off unless reporting.controlPlaneUrl is set and the device holds
 * a certificate: without one the control plane cannot tell who is reporting.
 */
export const reportingDaemonExtension: DaemonExtension = async ({ runtime, agent, logger }) => {
  const baseUrl = runtime.loaded.config.reporting.controlPlaneUrl;
  if (baseUrl === undefined) return undefined;
  const manager = identityManager(runtime);
  const identity = await manager.status();
  if (identity.state !== 'valid' && identity.state !== 'renewing') {
    logger.warn(`reporting to ${baseUrl} is off: the device is ${identity.state}; enroll, then restart the daemon`);
    return undefined;
  }
  const reporter = await createReporter(runtime, agent, manager, baseUrl, {
    onRecheck: (id) => {
      logger.info('control plane asked for a re-check', { component: 'reporter', requestId: id });
    },
  });
  let reportedPolicy: string | undefined;
  agent.on('scanned', (outcome) => {
    // Unchanged posture is left to the heartbeat; a new policy version is news to the server even then.
    if (outcome.changes.length === 0 && !outcome.level && outcome.report.policy.version === reportedPolicy) return;
    reportedPolicy = outcome.report.policy.version;
    reporter.postureChanged(outcome.report);
  });
  agent.on('policy-changed', () => {
    // A scan already running was started under the old policy; the new one needs a scan of its own.
    const inFlight = agent.scanning ? agent.scan().catch(() => undefined) : Promise.resolve(undefined);
    inFlight.then(() => agent.scan()).catch((err: unknown) => {
      logger.error(`scan after a policy change failed: ${err instanceof Error ? err.message : String(err)}`);
    });
  });
  // The daemon's first scan may have finished while this extension was starting.
  const first = agent.report;
  if (first) {
    reportedPolicy = first.policy.version;
    reporter.postureChanged(first);
  }
  reporter.start();
  logger.info(`reporting to ${baseUrl}`, { component: 'reporter' });
  return { stop: () => reporter.stop() };
};
