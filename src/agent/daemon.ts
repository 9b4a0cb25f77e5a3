import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent, type ScanOutcome } from './agent.js';
import { acquireDaemonLock, lockHolder } from './daemon-lock.js';
import { Scheduler } from './scheduler.js';
import { StatusBoard } from './status-board.js';
import { daemonApiBackend } from './local-api-backend.js';
import { startLocalApiServer, type LocalApiServer } from './local-api-server.js';
import { daemonIdentityManager } from '../identity/renewal-job.js';
import { saveStatus, type Runtime } from '../runtime.js';
import { writeFileAtomic } from '../state/atomic.js';
import type { Logger } from '../logging/logger.js';

/**
 * Lets identity renewal and reporting hang their jobs on the daemon without it knowing about them; they
 * post what clients should see on the board.
 */
export type DaemonExtension = (ctx: {
  runtime: Runtime;
  agent: Agent;
  scheduler: Scheduler;
  logger: Logger;
  board: StatusBoard;
}) => Promise<{ stop?: () => Promise<void> } | undefined>;

export interface DaemonHandle {
  agent: Agent;
  scheduler: Scheduler;
  /** Stops every job, waits for runs in progress, releases the lock and removes the pid file. */
  stop(): Promise<void>;
}

export const SCAN_JOB = 'posture-scan';

/** The pid of the daemon running on this state dir, asked of the daemon itself through its lock. */
export function readDaemonPid(stateDir: string): Promise<number | undefined> {
  return lockHolder(stateDir);
}

export function logOutcome(logger: Logger, outcome: ScanOutcome): void {
  for (const c of outcome.changes) {
    const result = outcome.report.results.find((r) => r.id === c.id);
    logger.info(`check ${c.id}: ${c.from} -> ${c.to}`, { check: c.id, from: c.from, to: c.to, reason: result?.reason });
  }
  if (outcome.level) {
    const log = outcome.level.from !== 'none' && outcome.level.to !== 'full' ? logger.warn.bind(logger) : logger.info.bind(logger);
    log(`access level: ${outcome.level.from} -> ${outcome.level.to}`, {
      accessLevel: outcome.level.to,
      reasons: outcome.report.reasons.map((r) => r.message),
    });
  }
}

/** The long-lived agent: scans on a schedule, logs every change, and keeps status.json current. */
export async function startDaemon(runtime: Runtime, extensions: readonly DaemonExtension[] = []): Promise<DaemonHandle> {
  const { logger, loaded } = runtime;
  const lock = await acquireDaemonLock(loaded.stateDir);
  // Informational only (service managers, ops scripts): the lock, not this file, says whether a daemon runs.
  const pidFile = join(loaded.stateDir, 'daemon.pid');
  try {
    await writeFileAtomic(pidFile, `${process.pid}\n`, 0o644);
  } catch (err) {
    await lock.release();
    throw err;
  }

  const agent = runtime.createAgent();
  const scheduler = new Scheduler();
  scheduler.on('error', (job, err) => {
    logger.error(`job ${job} failed: ${err instanceof Error ? err.message : String(err)}`, { job });
  });
  scheduler.on('wake', (ms) => {
    logger.info(`woke after about ${Math.round(ms / 1000)} s asleep; re-running wake-sensitive jobs`);
  });
  agent.on('scanned', (outcome) => {
    logOutcome(logger, outcome);
    saveStatus(runtime.statusFile, outcome.report).catch((err: unknown) => {
      logger.error(`cannot save status: ${(err as Error).message}`, { file: runtime.statusFile });
    });
  });

  const intervalMs = loaded.config.scan.intervalSeconds * 1000;
  scheduler.add({ name: SCAN_JOB, run: async () => {
      await agent.scan();
    }, nextDelayMs: () => intervalMs, runOnWake: true });

  const board = new StatusBoard();
  const stops: (() => Promise<void>)[] = [];
  let api: LocalApiServer;
  try {
    for (const ext of extensions) {
      const handle = await ext({ runtime, agent, scheduler, logger, board });
      if (handle?.stop) stops.push(handle.stop);
    }
    // One identity manager per process: the renewal job, reporting and the clients' view share it.
    const backend = daemonApiBackend({ runtime, agent, manager: daemonIdentityManager(runtime), board, startedAt: new Date() });
    api = await startLocalApiServer({ address: loaded.socket, backend, logger });
  } catch (err) {
    await scheduler.stop();
    for (const s of stops) await s();
    await rm(pidFile, { force: true });
    await lock.release();
    throw err;
  }
  const mode =
    loaded.mode === 'service'
      ? 'service mode (privileged: the device’s agent)'
      : 'user mode (local-only: checks that need privileges report unknown; install the service for the device’s agent)';
  logger.info(`daemon started (pid ${process.pid}) in ${mode}; scanning every ${loaded.config.scan.intervalSeconds} s; local API on ${loaded.socket}`, {
    mode: loaded.mode,
    stateDir: loaded.stateDir,
    logDir: loaded.logDir,
    socket: loaded.socket,
    policy: `${runtime.policy.name} ${runtime.policy.version}`,
  });

  let stopping: Promise<void> | undefined;
  return {
    agent,
    scheduler,
    stop: () =>
      (stopping ??= (async () => {
        await api.close();
        await scheduler.stop();
        for (const s of stops) await s();
        await rm(pidFile, { force: true });
        await lock.release();
        logger.info('daemon stopped');
      })()),
  };
}
