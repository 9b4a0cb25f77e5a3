import type { AccessLevel } from '../policy/schema.js';
import type { PostureReport } from '../protocol/report.js';
import { issuesOf } from './issues.js';
import { needsEnrollment, type IdentityStatus } from './types.js';

export interface NotificationDecision {
  /** Notifications replace each other under one tag, so a burst of changes is one toast, not a stack. */
  tag: 'vigil';
  title: string;
  body: string;
  /** Clicking opens the walkthrough here; unset opens it at the first issue. */
  checkId?: string;
  urgency: 'normal' | 'critical';
}

export interface NotificationSettings {
  enabled: boolean;
  /** The same subject in the same state is not announced again within this window. */
  cooldownMs: number;
}

export interface NotificationInput {
  report?: PostureReport;
  identity?: IdentityStatus;
  now: Date;
}

interface Candidate {
  /** What it is about: "access", "identity" or "check:<id>". Rate limiting is per key. */
  key: string;
  /** The state announced; the same key in a new state is news even within the cooldown. */
  state: string;
  rank: number;
  line: string;
  checkId?: string;
}

const LEVEL_RANK: Record<AccessLevel, number> = { full: 0, limited: 1, blocked: 2 };
const MAX_LINES = 3;

/**
 * Decides which scan results are worth interrupting the user for: an access level that drops, a critical
 * check that starts failing, a certificate that needs enrollment, and once, everything fixed. Stateful:
 * feed it every new state in order.
 */
export class NotificationPlanner {
  private previous?: PostureReport;
  private previousIdentity?: IdentityStatus['state'];
  private readonly announced = new Map<string, { state: string; at: number }>();
  /** Something was announced and has not been fixed since: the "all fixed" message is owed. */
  private owesAllFixed = false;

  constructor(private readonly settings: NotificationSettings) {}

  next(input: NotificationInput): NotificationDecision | undefined {
    const candidates = [...this.postureCandidates(input.report), ...this.identityCandidates(input.identity)];
    const allFixed =
      this.owesAllFixed && input.report?.accessLevel === 'full' && input.report.reasons.length === 0 && !needsEnrollment(input.identity);
    if (input.report) this.previous = input.report;
    this.previousIdentity = input.identity?.state;

    if (allFixed) {
      this.owesAllFixed = false;
      // The user was told it is over; a new failure after that is news, whatever the cooldown says.
      this.announced.clear();
      return this.settings.enabled
        ? { tag: 'vigil', title: 'All fixed', body: 'This device meets the security policy again. Thank you!', urgency: 'normal' }
        : undefined;
    }

    const now = input.now.getTime();
    const fresh = candidates.filter((c) => {
      const last = this.announced.get(c.key);
      return !last || last.state !== c.state || now - last.at >= this.settings.cooldownMs;
    });
    if (fresh.length === 0) return undefined;
    for (const c of fresh) this.announced.set(c.key, { state: c.state, at: now });
    this.owesAllFixed = true;
    if (!this.settings.enabled) return undefined;
    return group(fresh, input.report);
  }

  private postureCandidates(report: PostureReport | undefined): Candidate[] {
    if (!report) return [];
    const out: Candidate[] = [];
    const before = this.previous?.accessLevel ?? 'full';
    if (LEVEL_RANK[report.accessLevel] > LEVEL_RANK[before]) {
      const top = issuesOf(report)[0];
      out.push({
        key: 'access',
        state: report.accessLevel,
        rank: report.accessLevel === 'blocked' ? 1 : 3,
        line: report.accessLevel === 'blocked' ? 'Access from this device is blocked.' : 'Access from this device is limited.',
        ...(top ? { checkId: top.checkId } : {}),
      });
    }
    const was = new Map(this.previous?.results.map((r) => [r.id, r.status]));
    for (const r of report.results) {
      if (r.severity !== 'critical' || r.status !== 'fail' || was.get(r.id) === 'fail') continue;
      out.push({ key: `check:${r.id}`, state: r.status, rank: 2, line: `${r.title}: failed.`, checkId: r.id });
    }
    return out;
  }

  private identityCandidates(identity: IdentityStatus | undefined): Candidate[] {
    if (!identity || !needsEnrollment(identity)) return [];
    if (identity.state === 'revoked') {
      // Once: revoked is news even right after needs-enrollment, but not again on every later state.
      if (this.previousIdentity === 'revoked') return [];
      return [{ key: 'identity', state: 'revoked', rank: 0, line: 'The device certificate was revoked. Ask IT to enroll this device again.' }];
    }
    const wasNeeded = this.previousIdentity === 'needs-enrollment' || this.previousIdentity === 'not-enrolled' || this.previousIdentity === 'revoked';
    if (wasNeeded) return [];
    return [{ key: 'identity', state: 'needs-enrollment', rank: 0, line: 'The device certificate needs enrollment.' }];
  }
}

function group(candidates: readonly Candidate[], report: PostureReport | undefined): NotificationDecision {
  const sorted = [...candidates].sort((a, b) => a.rank - b.rank);
  const first = sorted[0];
  const blocked = report?.accessLevel === 'blocked';
  const title =
    first?.key === 'identity'
      ? first.state === 'revoked'
        ? 'Device certificate revoked'
        : 'Device certificate needs enrollment'
      : blocked
        ? 'Access blocked: action needed'
        : report?.accessLevel === 'limited'
          ? 'Access limited: action needed'
          : 'A security check failed';
  const lines = sorted.map((c) => c.line).filter((l, i, all) => all.indexOf(l) === i);
  const shown = lines.slice(0, MAX_LINES);
  if (lines.length > MAX_LINES) shown.push(`…and ${lines.length - MAX_LINES} more.`);
  const target = sorted.find((c) => c.checkId !== undefined)?.checkId;
  return {
    tag: 'vigil',
    title,
    body: target ? `${shown.join(' ')} Click to see how to fix it.` : shown.join(' '),
    ...(target ? { checkId: target } : {}),
    urgency: blocked || first?.key === 'identity' ? 'critical' : 'normal',
  };
}
