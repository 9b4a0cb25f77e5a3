import { silentLogger, type Logger } from '../logging/logger.js';
import type { IdentityManager, RenewOutcome } from './manager.js';

export interface RenewalJobOptions {
  logger?: Logger;
  /** How often the job looks at the clock. Cheap: no I/O unless something is due. */
  heartbeatMs?: number;
  /** A wall-clock gap this much longer than a heartbeat means the machine slept (or the clock was set). */
  clockJumpMs?: number;
  /** Re-read the identity at least this often, to notice an enrollment made by the CLI. */
  recheckMs?: number;
  onOutcome?: (outcome: RenewOutcome) => void;
  now?: () => number;
}

/**
 * Keeps the certificate renewed from inside the daemon. It does not poll the CA: it sleeps until the
 * manager's nextRunAt (derived from NotAfter, or the backoff after a failure). Timers run on a monotonic
 * clock that stops while the machine sleeps, so a wall-clock jump between heartbeats triggers a check at
 * once instead of hours late.
 */
export class RenewalJob {
  private readonly log: Logger;
  private readonly heartbeatMs: number;
  private readonly clockJumpMs: number;
  private readonly recheckMs: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private lastBeat = 0;
  private lastCheck = 0;
  private dueAt: number | undefined;

  constructor(
    private readonly manager: IdentityManager,
    private readonly opts: RenewalJobOptions = {},
  ) {
    this.log = (opts.logger ?? silentLogger()).child({ component: 'identity' });
    this.heartbeatMs = opts.heartbeatMs ?? 30_000;
    this.clockJumpMs = opts.clockJumpMs ?? 120_000;
    this.recheckMs = opts.recheckMs ?? 10 * 60_000;
    this.now = opts.now ?? Date.now;
  }

  /** Checks at once (daemon start), then on every heartbeat that finds something due. */
  start(): void {
    if (this.timer) return;
    this.lastBeat = this.now();
    this.timer = setInterval(() => {
      this.beat();
    }, this.heartbeatMs);
    this.timer.unref();
    this.trigger('start');
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private beat(): void {
    const now = this.now();
    const gap = now - this.lastBeat;
    this.lastBeat = now;
    if (gap > this.heartbeatMs + this.clockJumpMs) {
      this.log.info('wall-clock jump detected (sleep or clock change); checking the certificate', { gapMs: gap });
      this.trigger('clock-jump');
    } else if ((this.dueAt !== undefined && now >= this.dueAt) || now - this.lastCheck >= this.recheckMs) {
      this.trigger('due');
    }
  }

  private trigger(reason: string): void {
    if (this.running) return;
    this.running = this.check(reason).then(
      () => {
        this.running = undefined;
      },
      () => {
        this.running = undefined;
      },
    );
  }

  /** One check: what a scheduler calls if it drives the job itself. Never throws. */
  async check(reason = 'manual'): Promise<RenewOutcome> {
    this.lastCheck = this.now();
    const outcome = await this.manager.renewIfDue();
    if (outcome.action === 'failed') {
      this.log.warn('renewal attempt failed', { reason, error: outcome.error.message, retryAt: outcome.retryAt.toISOString() });
    } else if (outcome.action === 'skipped' && outcome.state === 'needs-enrollment') {
      this.log.warn('device certificate needs enrollment', { reason: outcome.reason });
    }
    this.dueAt = this.manager.nextRunAt()?.getTime();
    this.opts.onOutcome?.(outcome);
    return outcome;
  }
}
