import { Agent } from 'node:https';
import { gzipSync } from 'node:zlib';
import type { Logger } from '../logging/logger.js';
import { policySchema, type Policy } from '../policy/schema.js';
import type { PostureReport } from '../protocol/report.js';
import { reportAckSchema, type Directives, type ReportAck, type ReportEnvelope } from '../protocol/wire.js';
import { backoffDelay, type BackoffOptions } from './backoff.js';
import { DirectiveStream } from './directive-stream.js';
import { httpsRequest, RequestFailure, type TlsIdentity } from './https-client.js';
import { classifyAnswer, type Refusal } from './server-response.js';
import type { Outbox } from './outbox.js';

export interface ReporterOptions {
  /** Control-plane base URL, e.g. https://cp.example.com:8443. */
  baseUrl: string;
  outbox: Outbox;
  identity: TlsIdentity;
  logger: Logger;
  /** Runs a posture scan (the agent's engine); used for heartbeats and "re-check now". */
  scan(): Promise<PostureReport>;
  /** The version of the policy the agent applies now. */
  policyVersion(): string;
  /** Receives a validated policy that differs from the current one. Throwing keeps the old policy. */
  applyPolicy(policy: Policy): Promise<void>;
  onRecheck?(requestId: string): void;
  onIntervalChange?(seconds: number): void;
  onDelivered?(ack: ReportAck): void;
  /** Called whenever status() may answer differently (delivered, failed, refused, queued). */
  onStatusChange?(): void;
  /** Heartbeat until the server says otherwise. */
  intervalSeconds?: number;
  /** Posture changes closer together than this are sent as one report (the last). */
  debounceMs?: number;
  backoff?: BackoffOptions;
  /**
   * After the server refused the device or the endpoint for good (401/403/404...), wait this long before
   * asking again, unless retryNow() (a new certificate) comes first. Default 15 minutes.
   */
  refusedRetryMs?: number;
  requestTimeoutMs?: number;
  maxResponseBytes?: number;
  /** Gzip report bodies (default true; the protocol requires servers to accept gzip). */
  compress?: boolean;
  /** Hold the SSE directive stream open (default true). */
  directiveStream?: boolean;
  streamIdleTimeoutMs?: number;
}

export interface FlushResult {
  delivered: number;
  remaining: number;
  lastAck: ReportAck | null;
  lastError: string | null;
  /** Set when flush stopped early because the server refused for good; the report is still in the outbox. */
  refused: string | null;
}

type SendOutcome = { kind: 'ok'; ack: ReportAck } | { kind: 'retry'; why: string; retryAfterMs?: number } | { kind: 'refused'; refusal: Refusal; why: string };

const MAX_REMEMBERED_RECHECKS = 64;

/**
 * The agent side of continuous reporting. Reports go through the durable outbox and are sent oldest first
 * over mTLS; the server's answer carries directives (interval, policy version, re-check), which also arrive
 * on the long-lived directive stream. Meant to be registered with the daemon: start() once, stop() on
 * shutdown; postureChanged() after every scan.
 */
export type ReporterHealth = 'connecting' | 'online' | 'offline' | 'refused';

export interface ReporterStatus {
  state: ReporterHealth;
  lastDeliveredAt?: string;
  lastError?: string;
  queued: number;
  dropped: number;
}

export class Reporter {
  private readonly o: Required<Pick<ReporterOptions, 'debounceMs' | 'backoff' | 'requestTimeoutMs' | 'maxResponseBytes' | 'refusedRetryMs'>> & ReporterOptions;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 2 });
  private readonly stream: DirectiveStream | null;
  private intervalSeconds: number;
  private running = false;
  private heartbeat: NodeJS.Timeout | null = null;
  private debounce: NodeJS.Timeout | null = null;
  private pendingChange: PostureReport | null = null;
  private lastEnqueueAt = 0;
  private sending: Promise<void> | null = null;
  private sleeper: { timer: NodeJS.Timeout; wake: () => void } | null = null;
  private attempt = 0;
  private readonly rechecks: string[] = [];
  private rejectedPolicyVersion: string | null = null;
  private policyFetch: Promise<void> | null = null;
  private lastAck: ReportAck | null = null;
  private lastError: string | null = null;
  /** The refusal last logged, so a refusal that lasts for days is logged once, not on every attempt. */
  private refusal: string | null = null;
  private delivered = 0;
  private lastDeliveredAt: string | null = null;
  /** How the last contact with the server went; `connecting` until there was one. */
  private health: ReporterHealth = 'connecting';

  constructor(opts: ReporterOptions) {
    this.o = {
      debounceMs: 2000,
      backoff: { baseMs: 1000, capMs: 300_000 },
      requestTimeoutMs: 15_000,
      maxResponseBytes: 1024 * 1024,
      refusedRetryMs: 15 * 60_000,
      ...opts,
    };
    this.intervalSeconds = opts.intervalSeconds ?? 300;
    this.stream =
      opts.directiveStream === false
        ? null
        : new DirectiveStream({
            url: `${this.base()}/v1/directives/stream`,
            identity: opts.identity,
            logger: opts.logger,
            backoff: this.o.backoff,
            refusedRetryMs: this.o.refusedRetryMs,
            ...(opts.streamIdleTimeoutMs === undefined ? {} : { idleTimeoutMs: opts.streamIdleTimeoutMs }),
            onDirectives: (d) => {
              this.applyDirectives(d);
            },
            onConnected: () => {
              this.serverReachable();
              this.setHealth('online');
            },
          });
  }

  private base(): string {
    return this.o.baseUrl.replace(/\/+$/, '');
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.scheduleHeartbeat();
    this.stream?.start();
    this.kick();
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const t of [this.heartbeat, this.debounce]) if (t) clearTimeout(t);
    this.heartbeat = this.debounce = null;
    this.stream?.stop();
    this.sleeper?.wake();
    await this.sending;
    // A change still in its debounce window is kept: it goes to the outbox, to be sent after restart.
    if (this.pendingChange) {
      const report = this.pendingChange;
      this.pendingChange = null;
      await this.o.outbox.append(report);
    }
    this.agent.destroy();
  }

  /** What the tray and `vigil status` show: whether reports get through, and what waits in the outbox. */
  status(): ReporterStatus {
    const stats = this.o.outbox.stats();
    return {
      state: this.health,
      ...(this.lastDeliveredAt === null ? {} : { lastDeliveredAt: this.lastDeliveredAt }),
      ...(this.lastError === null ? {} : { lastError: this.lastError }),
      queued: stats.entries,
      dropped: stats.droppedTotal,
    };
  }

  private setHealth(h: ReporterHealth): void {
    const changed = this.health !== h;
    this.health = h;
    if (changed) this.o.onStatusChange?.();
  }

  /** Ends any backoff now: the identity changed (renewed, or enrolled again), so a refusal may be over. */
  retryNow(): void {
    this.attempt = 0;
    this.sleeper?.wake();
    this.stream?.retryNow();
  }

  /**
   * Another request reached the server, so the outage that the delivery backoff waits out is over: waiting
   * on (up to its 5-minute cap) would leave queued reports undelivered long after the server came back.
   */
  private serverReachable(): void {
    this.attempt = 0;
    this.sleeper?.wake();
  }

  /** Call after each scan; reports are sent when posture changed, debounced. */
  postureChanged(report: PostureReport): void {
    this.pendingChange = report;
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = null;
      const r = this.pendingChange;
      this.pendingChange = null;
      if (r) void this.enqueue(r);
    }, this.o.debounceMs);
  }

  /** Stores a report durably and starts sending; resolves once it is in the outbox. */
  async enqueue(report: PostureReport, inResponseTo?: string): Promise<ReportEnvelope> {
    const env = await this.o.outbox.append(report, inResponseTo ? { inResponseTo } : {});
    this.lastEnqueueAt = Date.now();
    this.o.onStatusChange?.();
    this.kick();
    return env;
  }

  /**
   * Sends what the outbox holds until it is empty or `timeoutMs` passes, retrying transient failures with
   * backoff meanwhile (`vigil report --once`). Stops at the first permanent refusal: a refused device or
   * endpoint leaves the report queued, a refused report is dropped as the daemon drops it. Works without start().
   */
  async flush(timeoutMs: number): Promise<FlushResult> {
    const deadline = Date.now() + timeoutMs;
    const before = this.delivered;
    await this.sending;
    const refused = await this.drain(() => Date.now() < deadline, { deadline, stopOnRefusal: true });
    return { delivered: this.delivered - before, remaining: this.o.outbox.stats().entries, lastAck: this.lastAck, lastError: this.lastError, refused };
  }

  private kick(): void {
    if (!this.running || this.sending) return;
    this.sending = this.drain(() => this.running, { stopOnRefusal: false }).then(() => undefined).finally(() => {
      this.sending = null;
      // Something may have been appended after the loop saw an empty outbox.
      if (this.running && this.o.outbox.stats().entries > 0) this.kick();
    });
  }

  /** Returns the refusal that stopped it (only with stopOnRefusal), else null. */
  private async drain(keepGoing: () => boolean, mode: { deadline?: number; stopOnRefusal: boolean }): Promise<string | null> {
    const log = this.o.logger;
    while (keepGoing()) {
      const [env] = this.o.outbox.peek(1);
      if (!env) return null;
      const outcome = await this.sendOne(env);
      if (outcome.kind === 'ok') {
        this.attempt = 0;
        this.lastError = null;
        if (this.refusal !== null) log.info('control plane accepts reports again', { component: 'reporter' });
        this.refusal = null;
        // The stream may still sit out its own backoff from the outage; pushes should resume with delivery.
        this.stream?.retryNow();
        await this.o.outbox.ack(env.reportId);
        await this.noticeSequenceReset(env, outcome.ack);
        this.delivered++;
        this.lastAck = outcome.ack;
        this.lastDeliveredAt = new Date().toISOString();
        this.health = 'online';
        this.o.onStatusChange?.();
        this.o.onDelivered?.(outcome.ack);
        this.applyDirectives(outcome.ack.directives);
        continue;
      }
      this.lastError = outcome.why;
      this.setHealth(outcome.kind === 'refused' && outcome.refusal !== 'report' ? 'refused' : outcome.kind === 'refused' ? this.health : 'offline');
      let delay: number;
      if (outcome.kind === 'refused') {
        if (outcome.refusal === 'report') {
          // Retrying a report the server will never take would block every later one, in the daemon and in
          // `vigil report --once` alike (an MDM script that only ever runs the latter would be stuck for good).
          log.error('control plane refused a report for good; dropping it', { component: 'reporter', seq: env.seq, why: outcome.why });
          await this.o.outbox.discard(env.reportId);
          if (mode.stopOnRefusal) return `${outcome.why}; it was dropped from the outbox so that later reports can go`;
          continue;
        }
        if (mode.stopOnRefusal) return outcome.why;
        if (this.refusal !== outcome.why) {
          log.error(`${outcome.why}; reports stay queued and are retried every ${Math.round(this.o.refusedRetryMs / 60_000)} min or when the certificate changes`, {
            component: 'reporter',
          });
        }
        this.refusal = outcome.why;
        delay = this.o.refusedRetryMs;
      } else {
        delay = Math.max(backoffDelay(this.attempt++, this.o.backoff), outcome.retryAfterMs ?? 0);
        log.warn('report not delivered; will retry', { component: 'reporter', seq: env.seq, why: outcome.why, retryInMs: delay });
      }
      // `vigil report --once` must end by its timeout even when the server asks for a long pause.
      await this.sleep(mode.deadline === undefined ? delay : Math.min(delay, Math.max(0, mode.deadline - Date.now())));
    }
    return null;
  }

  /**
   * The server names the seq it had from this device before this report. At or above this report's seq,
   * the local sequence went back (the outbox state was lost, or the state dir restored from a backup):
   * later reports would rank as older than ones the server already has, so the sequence moves past it.
   * A duplicate's previousSeq describes the first delivery, not this one, so it is not evidence.
   */
  private async noticeSequenceReset(env: ReportEnvelope, ack: ReportAck): Promise<void> {
    const prev = ack.previousSeq;
    if (ack.duplicate || prev === null || prev === undefined || prev < env.seq) return;
    const next = await this.o.outbox.advancePast(prev);
    if (next === null) return;
    this.o.logger.warn(
      `report sequence went back: this agent sent seq ${env.seq} but the control plane had already received seq ${prev} from this device; the state dir was probably restored from a backup or its outbox state lost; continuing at ${next}`,
      { component: 'reporter' },
    );
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.sleeper = null;
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.sleeper = { timer, wake };
    });
  }

  private async sendOne(env: ReportEnvelope): Promise<SendOutcome> {
    let tls;
    try {
      tls = await this.o.identity.current();
    } catch (err) {
      return { kind: 'retry', why: `no device identity: ${err instanceof Error ? err.message : String(err)}` };
    }
    try {
      const json = JSON.stringify(env);
      const compress = this.o.compress !== false;
      const res = await httpsRequest({
        url: `${this.base()}/v1/reports`,
        method: 'POST',
        body: compress ? gzipSync(json) : json,
        ...(compress ? { headers: { 'content-encoding': 'gzip' } } : {}),
        tls,
        agent: this.agent,
        timeoutMs: this.o.requestTimeoutMs,
        maxBytes: this.o.maxResponseBytes,
      });
      const text = res.body.toString('utf8');
      if (res.status === 200) {
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          return { kind: 'retry', why: 'HTTP 200 with a body that is not JSON' };
        }
        const ack = reportAckSchema.safeParse(json);
        if (!ack.success || ack.data.reportId !== env.reportId) return { kind: 'retry', why: 'HTTP 200 with an invalid acknowledgement' };
        return { kind: 'ok', ack: ack.data };
      }
      const answer = classifyAnswer(res.status, res.headers, text, Date.now());
      if (answer.kind === 'refused') return { kind: 'refused', refusal: answer.refusal, why: answer.why };
      return answer.retryAfterMs === undefined ? { kind: 'retry', why: answer.why } : { kind: 'retry', why: answer.why, retryAfterMs: answer.retryAfterMs };
    } catch (err) {
      if (err instanceof RequestFailure) return { kind: 'retry', why: `${err.kind}: ${err.message}` };
      throw err;
    }
  }

  // ---- directives ----

  private applyDirectives(d: Directives): void {
    if (d.reportIntervalSeconds !== this.intervalSeconds) {
      this.intervalSeconds = d.reportIntervalSeconds;
      this.o.onIntervalChange?.(d.reportIntervalSeconds);
      this.scheduleHeartbeat();
    }
    if (d.policyVersion !== this.o.policyVersion() && d.policyVersion !== this.rejectedPolicyVersion && !this.policyFetch) {
      this.policyFetch = this.fetchPolicy(d.policyVersion).finally(() => (this.policyFetch = null));
    }
    if (d.recheck && !this.rechecks.includes(d.recheck.requestId)) {
      const id = d.recheck.requestId;
      this.rechecks.push(id);
      if (this.rechecks.length > MAX_REMEMBERED_RECHECKS) this.rechecks.shift();
      this.o.onRecheck?.(id);
      void this.scanAndEnqueue(id);
    }
  }

  private async fetchPolicy(announced: string): Promise<void> {
    try {
      const res = await httpsRequest({
        url: `${this.base()}/v1/policy`,
        method: 'GET',
        tls: await this.o.identity.current(),
        agent: this.agent,
        timeoutMs: this.o.requestTimeoutMs,
        maxBytes: this.o.maxResponseBytes,
      });
      if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
      this.serverReachable();
      let json: unknown;
      try {
        json = JSON.parse(res.body.toString('utf8'));
      } catch {
        json = undefined;
      }
      const parsed = policySchema.safeParse(json);
      if (!parsed.success) {
        this.rejectedPolicyVersion = announced;
        this.o.logger.error('control plane sent an invalid policy; keeping the current one', {
          component: 'reporter',
          announced,
          issues: parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.')}: ${i.message}`),
        });
        return;
      }
      if (parsed.data.version === this.o.policyVersion()) return;
      try {
        await this.o.applyPolicy(parsed.data);
        this.o.logger.info('applied policy from the control plane', { component: 'reporter', version: parsed.data.version });
      } catch (err) {
        this.rejectedPolicyVersion = announced;
        this.o.logger.error('policy from the control plane was not applied; keeping the current one', { component: 'reporter', announced, err });
      }
    } catch (err) {
      this.o.logger.warn('could not fetch the policy; will try again on the next directive', { component: 'reporter', err });
    }
  }

  private async scanAndEnqueue(inResponseTo?: string): Promise<void> {
    try {
      const report = await this.o.scan();
      if (!this.running && inResponseTo === undefined) return;
      await this.enqueue(report, inResponseTo);
    } catch (err) {
      this.o.logger.error('scan for a report failed', { component: 'reporter', err });
    }
  }

  /** Jittered so a fleet restarted together does not report in lockstep. */
  private scheduleHeartbeat(): void {
    if (this.heartbeat) clearTimeout(this.heartbeat);
    this.heartbeat = null;
    if (!this.running) return;
    const ms = this.intervalSeconds * 1000 * (0.9 + Math.random() * 0.2);
    this.heartbeat = setTimeout(() => {
      // A report from a posture change already proved liveness this period.
      if (Date.now() - this.lastEnqueueAt >= this.intervalSeconds * 500) void this.scanAndEnqueue();
      this.scheduleHeartbeat();
    }, ms);
  }
}
