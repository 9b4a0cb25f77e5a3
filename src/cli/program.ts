import { setFlagsFromString } from 'node:v8';
import { Command, CommanderError, Option } from 'commander';
import { PLATFORMS, type Platform } from '../posture/types.js';
import type { DeviceContext, RemediationGuide } from '../posture/remediation/types.js';
import { LOG_LEVELS } from '../logging/levels.js';
import { UsageError } from '../config/errors.js';
import type { GlobalOptions, Runtime } from '../runtime.js';
import type { DaemonExtension } from '../agent/daemon.js';
import { registerIdentityCommands } from './identity.js';
import { registerReportCommand } from '../reporting/report-command.js';
import { AGENT_VERSION } from '../version.js';
import type { PostureReport } from '../protocol/report.js';

// Each action imports what it runs: `vigil daemon` is long-lived, and every module loaded for a
// command it never runs would stay resident for the daemon's whole life.

/** Documented in the README; MDM scripts depend on them. */
export const EXIT = { ok: 0, failure: 1, usage: 2, limited: 3, blocked: 4 } as const;

export interface ProgramIO {
  stdout: (s: string) => void;
  /** Extensions the daemon loads (identity renewal, reporting); defaults to DEFAULT_DAEMON_EXTENSIONS. */
  daemonExtensions?: readonly DaemonExtension[];
  /** Resolves when the daemon should stop; defaults to SIGINT/SIGTERM. */
  untilStopped?: () => Promise<string>;
}

function globals(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals<GlobalOptions>();
}

function strictExit(report: PostureReport): number {
  return report.accessLevel === 'full' ? EXIT.ok : report.accessLevel === 'limited' ? EXIT.limited : EXIT.blocked;
}

async function firstSteps(rt: Runtime, report: PostureReport, ctx: DeviceContext): Promise<Map<string, RemediationGuide | undefined>> {
  const { selectGuide } = await import('../posture/remediation/select.js');
  return new Map(report.reasons.map((r) => [r.checkId, selectGuide(rt.support.checks[r.checkId]?.remediation, ctx)]));
}

export function waitForSignal(): Promise<string> {
  return new Promise((resolve) => {
    const done = (sig: string) => () => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(sig);
    };
    const onInt = done('SIGINT');
    const onTerm = done('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
}

export function buildProgram(io: ProgramIO): Command {
  const program = new Command('vigil')
    .description('Vigil endpoint agent: device posture, identity and reporting')
    .version(AGENT_VERSION, '-V, --version')
    .option('--config <file>', 'config file to use instead of the per-user one')
    .option('--state-dir <dir>', 'directory for state (status, identity, outbox) and, unless logDir is set, logs')
    .option('--socket <path>', "the agent's local API (agent.socket): where `vigil daemon` listens and other commands connect")
    .addOption(new Option('--log-level <level>', 'log verbosity').choices(LOG_LEVELS))
    .showHelpAfterError('(run vigil --help for usage)')
    .configureOutput({ writeOut: io.stdout })
    .exitOverride();

  program
    .command('check')
    .description('scan now and print the result: the running agent re-checks, else this process scans')
    .option('--json', 'print the versioned JSON report (schema: docs/report.schema.json)')
    .option('--strict', `exit ${EXIT.limited} if the access level is limited and ${EXIT.blocked} if blocked`)
    .option('--local', 'scan in this process even when an agent runs (checks that need privileges may come out unknown)')
    .action(async (opts: { json?: boolean; strict?: boolean; local?: boolean }, cmd: Command) => {
      const g = globals(cmd);
      if (!opts.local) {
        const { recheckViaAgent } = await import('./check.js');
        const via = await recheckViaAgent(g);
        if (via) {
          if (opts.json) io.stdout(`${JSON.stringify(via.report, null, 2)}\n`);
          else {
            const [{ formatReport }, { loadPlatformSupport }, { selectGuide }] = await Promise.all([
              import('./format.js'),
              import('../posture/platforms.js'),
              import('../posture/remediation/select.js'),
            ]);
            const support = await loadPlatformSupport(via.report.device.platform);
            const steps = new Map(via.report.reasons.map((r) => [r.checkId, selectGuide(support.checks[r.checkId]?.remediation, via.context)]));
            io.stdout(formatReport(via.report, steps));
          }
          process.exitCode = opts.strict ? strictExit(via.report) : EXIT.ok;
          return;
        }
      }
      const { loadRuntime, saveStatus } = await import('../runtime.js');
      const rt = await loadRuntime(g, 'cli');
      const agent = rt.createAgent();
      const { report } = await agent.scan();
      await saveStatus(rt.statusFile, report).catch((err: unknown) => {
        rt.logger.warn(`could not save status to ${rt.statusFile}: ${(err as Error).message}`);
      });
      if (opts.json) io.stdout(`${JSON.stringify(report, null, 2)}\n`);
      else {
        const { formatReport } = await import('./format.js');
        io.stdout(formatReport(report, await firstSteps(rt, report, await agent.deviceContext())));
      }
      process.exitCode = opts.strict ? strictExit(report) : EXIT.ok;
    });

  program
    .command('checks')
    .description('list the check catalog with remediation steps for a platform')
    .addOption(new Option('--platform <platform>', 'platform to describe').choices(PLATFORMS).default(process.platform))
    .option('--json', 'print JSON')
    .action(async (opts: { platform: Platform; json?: boolean }) => {
      const [{ CHECKS }, { loadPlatformSupport }, { resolveDeepLink }] = await Promise.all([
        import('../posture/catalog.js'),
        import('../posture/platforms.js'),
        import('../posture/remediation/deeplinks.js'),
      ]);
      const support = await loadPlatformSupport(opts.platform);
      const rows = CHECKS.filter((c) => (c.platforms as readonly Platform[]).includes(opts.platform)).map((c) => {
        const remediation = support.checks[c.id]?.remediation;
        return {
          id: c.id,
          title: c.title,
          category: c.category,
          severity: c.severity,
          platforms: c.platforms,
          why: c.why,
          implemented: Boolean(support.checks[c.id]),
          remediation: (remediation?.guides ?? []).map((g) => ({
            ...g,
            ...(g.deepLink ? { deepLinkTarget: resolveDeepLink(g.deepLink)?.target } : {}),
          })),
        };
      });
      if (opts.json) {
        io.stdout(`${JSON.stringify({ platform: opts.platform, checks: rows }, null, 2)}\n`);
        return;
      }
      const out: string[] = [`Vigil checks for ${opts.platform}:`, ''];
      for (const r of rows) {
        out.push(`${r.id} · ${r.title} · suggested severity ${r.severity}${r.implemented ? '' : ' · not yet implemented on this platform'}`);
        out.push(`  Why: ${r.why}`);
        for (const g of r.remediation) {
          out.push(`  ${g.label}${g.needsAdmin ? ' (needs an administrator)' : ''}:`);
          g.steps.forEach((s, i) => out.push(`    ${i + 1}. ${s}`));
          if (g.deepLinkTarget) {
            out.push(`    Opens: ${g.deepLinkTarget.kind === 'url' ? g.deepLinkTarget.url : g.deepLinkTarget.argv.join(' ')}`);
          }
        }
        out.push('');
      }
      io.stdout(out.join('\n'));
    });

  program
    .command('status')
    .description("show the device agent's posture, identity and reporting (from the running agent, else what it last saved)")
    .option('--json', 'print JSON')
    .option('--strict', `exit ${EXIT.limited} if the last access level is limited and ${EXIT.blocked} if blocked`)
    .action(async (opts: { json?: boolean; strict?: boolean }, cmd: Command) => {
      const { runStatus } = await import('./status.js');
      process.exitCode = await runStatus(globals(cmd), opts, io.stdout);
    });

  program
    .command('daemon')
    .description('run the agent in the foreground: scan on a schedule, log changes, stop on SIGTERM/SIGINT')
    .action(async (_opts: unknown, cmd: Command) => {
      // The daemon's life is timers and child processes, so V8's optimizing compilers buy it no speed that
      // matters, while their code pages and the code they emit (mostly for the module loader, hot while
      // the daemon's modules load next) cost about 4 MB of resident memory for as long as it runs.
      // V8 reads these flags whenever it considers optimizing, so setting them now takes effect.
      setFlagsFromString('--no-turbofan');
      setFlagsFromString('--no-maglev');
      const [{ loadRuntime }, { startDaemon }, { DEFAULT_DAEMON_EXTENSIONS }] = await Promise.all([
        import('../runtime.js'),
        import('../agent/daemon.js'),
        import('../agent/extensions.js'),
      ]);
      const rt = await loadRuntime(globals(cmd), 'daemon');
      const handle = await startDaemon(rt, io.daemonExtensions ?? DEFAULT_DAEMON_EXTENSIONS);
      const signal = await (io.untilStopped ?? waitForSignal)();
      rt.logger.info(`received ${signal}; shutting down`);
      await handle.stop();
    });

  registerIdentityCommands(program, io);
  registerReportCommand(program, io);

  const config = program.command('config').description('inspect configuration');
  config
    .command('show')
    .description('print the effective config and where each value came from')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const [{ loadRuntime }, { envName }, { leaves }, { configSchema }] = await Promise.all([
        import('../runtime.js'),
        import('../config/load.js'),
        import('../config/introspect.js'),
        import('../config/schema.js'),
      ]);
      const rt = await loadRuntime(globals(cmd), 'cli');
      const rows = leaves(configSchema).map((l) => {
        const key = l.path.join('.');
        let value: unknown = rt.loaded.config;
        for (const p of l.path) value = (value as Record<string, unknown> | undefined)?.[p];
        return { key, value: value ?? null, source: rt.loaded.sources.get(key) ?? 'default', managed: rt.loaded.managed.has(key), env: envName(l.path) };
      });
      if (opts.json) {
        io.stdout(`${JSON.stringify({ config: rt.loaded.config, sources: Object.fromEntries(rows.map((r) => [r.key, r.source])), stateDir: rt.loaded.stateDir, logDir: rt.loaded.logDir }, null, 2)}\n`);
        return;
      }
      const w = Math.max(...rows.map((r) => r.key.length));
      const lines = rows.map((r) => `${r.key.padEnd(w)}  ${JSON.stringify(r.value)}  (${r.managed ? 'managed: ' : ''}${r.source})`);
      lines.push('', `state dir: ${rt.loaded.stateDir}`, `log dir:   ${rt.loaded.logDir}`);
      io.stdout(`${lines.join('\n')}\n`);
    });

  return program;
}

/** Runs the CLI and returns the exit code; usage and config problems print one line each and give 2. */
export async function runCli(argv: readonly string[], io: ProgramIO = { stdout: (s) => process.stdout.write(s) }): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and --version throw too, with exit code 0; commander has already printed the usage error
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`vigil: ${err.message.split('\n').join('\nvigil: ')}\n`);
      return EXIT.usage;
    }
    process.stderr.write(`vigil: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT.failure;
  }
}
