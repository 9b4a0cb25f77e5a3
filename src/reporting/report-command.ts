import type { Command } from 'commander';
import { UsageError } from '../config/errors.js';
import type { GlobalOptions } from '../runtime.js';

interface ReportIO {
  stdout: (s: string) => void;
}

/** `vigil report --once`: scan, report, drain the outbox; exits 1 with the reason unless the server accepted it. */
export function registerReportCommand(program: Command, io: ReportIO): void {
  program
    .command('report')
    .description('scan and send the report to the control plane (reporting.controlPlaneUrl)')
    .requiredOption('--once', 'send one report, drain the outbox and exit (the daemon reports continuously)')
    .option('--timeout <seconds>', 'give up after this long, retrying transient failures meanwhile (a refusal ends it at once)', '30')
    .action(async (opts: { timeout: string }, cmd: Command) => {
      const timeoutS = Number(opts.timeout);
      if (!Number.isFinite(timeoutS) || timeoutS <= 0) throw new UsageError(`--timeout ${opts.timeout}: expected a positive number of seconds`);
      // Loaded here, not at registration, so that other commands sharing the program (the daemon) do not carry it.
      const [{ loadRuntime, saveStatus }, { createReporter }, { identityManagerFor }] = await Promise.all([
        import('../runtime.js'),
        import('./setup.js'),
        import('../identity/for-runtime.js'),
      ]);
      const rt = await loadRuntime(cmd.optsWithGlobals<GlobalOptions>(), 'cli');
      const baseUrl = rt.loaded.config.reporting.controlPlaneUrl;
      if (baseUrl === undefined) throw new UsageError('report needs reporting.controlPlaneUrl in the config, or an enrollment with vigil enroll --control-plane, which saves it');
      const manager = identityManagerFor(rt);
      const identity = await manager.status();
      if (identity.state !== 'valid' && identity.state !== 'renewing') {
        throw new Error(`report not accepted: the device is ${identity.state}${identity.reason ? ` (${identity.reason})` : ''}; run vigil enroll first`);
      }
      const agent = rt.createAgent();
      const delivered = new Map<string, string>();
      const reporter = await createReporter(rt, agent, manager, baseUrl, {
        directiveStream: false,
        onDelivered: (ack) => delivered.set(ack.reportId, ack.accessLevel),
      });
      const { report } = await agent.scan();
      await saveStatus(rt.statusFile, report).catch((err: unknown) => {
        rt.logger.warn(`could not save status to ${rt.statusFile}: ${(err as Error).message}`);
      });
      const env = await reporter.enqueue(report);
      const result = await reporter.flush(timeoutS * 1000);
      await reporter.stop();
      const serverLevel = delivered.get(env.reportId);
      if (serverLevel === undefined) {
        const queued = `${result.remaining} report(s) stay queued in the outbox`;
        if (result.refused !== null) throw new Error(`report not accepted: ${result.refused}; ${queued}`);
        throw new Error(`report not accepted within ${timeoutS} s: ${result.lastError ?? 'not delivered'}; ${queued}, retried by the daemon or the next report`);
      }
      const others = result.delivered - 1;
      io.stdout(
        `Report ${env.reportId} accepted; access level ${serverLevel} (agent: ${report.accessLevel})${others > 0 ? `; ${others} earlier report(s) delivered too` : ''}${result.remaining > 0 ? `; ${result.remaining} still queued` : ''}.\n`,
      );
    });
}
