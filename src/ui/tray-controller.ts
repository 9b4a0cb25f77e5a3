import { EventEmitter } from 'node:events';
import type { DeviceContext, Remediation } from '../posture/remediation/types.js';
import type { DeepLinkTarget } from '../posture/remediation/deeplinks.js';
import type { Platform } from '../posture/types.js';
import type { AgentState, HelloFrame, MethodResult } from '../protocol/local-api.js';
import { NotificationPlanner, type NotificationDecision, type NotificationSettings } from './notifications.js';
import { trayModel, type TrayModel } from './tray.js';
import type { DisplayOptions, IdentityStatus, ReportingStatus } from './types.js';
import { WalkthroughSession, type WalkthroughModel } from './walkthrough.js';

/**
 * The tray's connection to the device's agent (AgentConnection in src/protocol/local-api-client.ts): a
 * subscription that reconnects by itself, and the two calls the tray makes.
 */
export interface AgentLink {
  on(event: 'state', listener: (state: AgentState) => void): unknown;
  on(event: 'connected', listener: (hello: HelloFrame) => void): unknown;
  on(event: 'disconnected', listener: (reason: string) => void): unknown;
  call(method: 'recheck', params: { checks?: string[] }): Promise<MethodResult<'recheck'>>;
  call(method: 'device-context'): Promise<MethodResult<'device-context'>>;
}

export interface TrayControllerOptions {
  link: AgentLink;
  /** Remediation steps per check for this OS (compiled in, like the deep-link allow-list). */
  remediation(checkId: string): Remediation | undefined;
  platform: Platform;
  allowQuit: boolean;
  notifications: NotificationSettings;
  /** How a person starts the service on this OS, shown while it cannot be reached. */
  startHint: string;
  display(): DisplayOptions;
}

export interface TrayControllerEvents {
  /** The tray model changed: render it. */
  change: [];
  notify: [decision: NotificationDecision];
  /** The walkthrough's model changed: push it to its window, if one is open. */
  walkthrough: [model: WalkthroughModel];
}

function errorText(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown; retryAfterMs?: unknown };
  if (e.code === 'rate-limited' && typeof e.retryAfterMs === 'number') return `Checked too often; try again in ${Math.ceil(e.retryAfterMs / 1000)} s.`;
  if (e.code === 'not-running') return 'The Vigil agent is not running, so nothing could be checked.';
  const message = typeof e.message === 'string' ? e.message : String(err);
  // The agent words a failed scan as "the re-check failed: <why>"; the user needs only the why.
  return `The check could not run: ${e.code === 'failed' ? message.replace(/^the re-check failed: /, '') : message}`;
}

/**
 * Everything the tray decides, as a client of the device's agent: which icon and menu, when to notify,
 * and the walkthrough's state. It holds no agent and no identity of its own; what it shows is what the
 * agent last said, and while the agent cannot be reached it says that instead. electron/main.ts renders
 * what this computes and forwards clicks.
 */
export class TrayController extends EventEmitter<TrayControllerEvents> {
  private state?: AgentState;
  private connected = false;
  /** The agent was found unreachable at least once since the last connection: say so rather than "checking". */
  private down = false;
  private userScan = false;
  private context?: DeviceContext;
  private walk?: WalkthroughSession;
  private readonly planner: NotificationPlanner;
  private lastPosture?: string;
  private updateReady?: { version: string };

  constructor(private readonly o: TrayControllerOptions) {
    super();
    this.planner = new NotificationPlanner(o.notifications);
    o.link.on('connected', () => {
      this.connected = true;
      this.down = false;
      // Which desktop and distro the walkthrough's steps are for: asked once per connection.
      o.link.call('device-context').then(
        (ctx) => {
          this.context = ctx;
        },
        () => undefined,
      );
      this.emit('change');
    });
    o.link.on('disconnected', () => {
      this.connected = false;
      this.down = true;
      this.emit('change');
    });
    o.link.on('state', (s) => {
      this.onState(s);
    });
  }

  get agentState(): AgentState | undefined {
    return this.connected ? this.state : undefined;
  }

  /** Shown only once a CA is configured or the device holds an identity: posture-only use has none. */
  private identity(): IdentityStatus | undefined {
    const id = this.state?.identity;
    if (!id || (id.caUrl === undefined && id.state === 'not-enrolled')) return undefined;
    return { state: id.state, ...(id.notAfter === undefined ? {} : { notAfter: id.notAfter }) };
  }

  private reporting(): ReportingStatus | undefined {
    const r = this.state?.reporting;
    if (!r || r.state === 'off' || r.state === 'waiting-for-enrollment') return undefined;
    return { online: r.state !== 'offline', ...(r.lastDeliveredAt === undefined ? {} : { lastDeliveredAt: r.lastDeliveredAt }) };
  }

  model(): TrayModel {
    const report = this.connected ? (this.state?.posture ?? undefined) : undefined;
    const identity = this.identity();
    const reporting = this.reporting();
    return trayModel({
      ...(report ? { report } : {}),
      ...(identity ? { identity } : {}),
      ...(reporting ? { reporting } : {}),
      ...(!this.connected && this.down ? { agentDown: { hint: this.o.startHint } } : {}),
      checking: this.userScan || (!report && (this.state?.scanning ?? true)),
      allowQuit: this.o.allowQuit,
      ...(this.updateReady ? { updateReady: this.updateReady } : {}),
      display: this.o.display(),
    });
  }

  /** electron-updater downloaded and verified a new version: offer "Restart to update". */
  setUpdateReady(version: string): void {
    this.updateReady = { version };
    this.emit('change');
  }

  private onState(s: AgentState): void {
    this.state = s;
    const posture = s.posture;
    if (posture && posture.generatedAt !== this.lastPosture) {
      this.lastPosture = posture.generatedAt;
      const identity = this.identity();
      const decision = this.planner.next({ report: posture, now: this.o.display().now, ...(identity ? { identity } : {}) });
      if (decision) this.emit('notify', decision);
      if (this.walk) {
        this.walk.update(posture);
        this.emit('walkthrough', this.walk.model());
      }
    }
    this.emit('change');
  }

  /** "Check now": the agent re-scans everything; the icon says "checking" until its answer. */
  async checkNow(): Promise<string | undefined> {
    if (this.userScan) return undefined;
    this.userScan = true;
    this.emit('change');
    try {
      await this.o.link.call('recheck', {});
      return undefined;
    } catch (err) {
      return errorText(err);
    } finally {
      this.userScan = false;
      this.emit('change');
    }
  }

  /** Opens (or refocuses) the walkthrough's state, at `focus` when given. */
  openWalkthrough(focus?: string): WalkthroughModel {
    if (!this.walk) {
      this.walk = new WalkthroughSession(
        { device: this.context ?? { platform: this.o.platform }, remediation: (id) => this.o.remediation(id) },
        this.state?.posture ?? undefined,
        focus,
      );
    } else if (focus !== undefined) this.walk.focus = focus;
    return this.walk.model();
  }

  closeWalkthrough(): void {
    delete this.walk;
  }

  walkthroughModel(): WalkthroughModel | undefined {
    return this.walk?.model();
  }

  /** "Check again" on one step: the agent re-runs that check alone and the step shows its result. */
  async recheck(checkId: string): Promise<void> {
    const walk = this.walk;
    if (!walk?.startRecheck(checkId)) return;
    this.emit('walkthrough', walk.model());
    try {
      const { report } = await this.o.link.call('recheck', { checks: [checkId] });
      walk.finishRecheck(checkId, report);
    } catch (err) {
      walk.failRecheck(checkId, errorText(err));
    }
    if (this.walk === walk) this.emit('walkthrough', walk.model());
  }

  /** The allow-listed settings page for a step of the open walkthrough, for this OS only. */
  settingsTarget(checkId: string): DeepLinkTarget | undefined {
    return this.walk?.settingsTarget(checkId);
  }

  /** For the About box. */
  about(): { policy?: string; agent?: string } {
    const s = this.agentState;
    return s ? { policy: `${s.policy.name} ${s.policy.version}`, agent: `${s.agentVersion} (${s.mode} mode, pid ${s.pid})` } : {};
  }
}
