import { findCheck } from '../posture/catalog.js';
import { resolveDeepLink, type DeepLinkTarget } from '../posture/remediation/deeplinks.js';
import { selectGuide } from '../posture/remediation/select.js';
import type { DeviceContext, Remediation } from '../posture/remediation/types.js';
import type { PostureReport } from '../protocol/report.js';
import { compareRanks, issueRank, issuesOf, statusWord } from './issues.js';
import type { RecheckState, WalkthroughCheck, WalkthroughModel } from './ipc.js';

// The model's types are inferred from the schema main validates with (ipc.ts), so main, the preload and
// the renderer share one definition and cannot drift.
export type { RecheckState, WalkthroughCheck, WalkthroughModel } from './ipc.js';

export interface WalkthroughDeps {
  device: DeviceContext;
  remediation(checkId: string): Remediation | undefined;
}

const ADMIN_NOTE = 'This step needs an administrator password. If you do not have one, ask IT to do it for you.';

/**
 * One walkthrough window's state. It remembers every check that needed fixing while it was open, so a
 * fixed check stays on screen as "fixed" and progress reads "2 of 3 fixed" rather than shrinking away.
 */
export class WalkthroughSession {
  private report?: PostureReport;
  /** Check id -> its sort key when it first needed fixing; kept, so a fixed check does not move. */
  private readonly tracked = new Map<string, readonly number[]>();
  private readonly rechecks = new Map<string, RecheckState>();
  focus?: string;

  constructor(private readonly deps: WalkthroughDeps, report?: PostureReport, focus?: string) {
    if (focus !== undefined) this.focus = focus;
    if (report) this.update(report);
  }

  update(report: PostureReport): void {
    this.report = report;
    for (const issue of issuesOf(report)) if (!this.tracked.has(issue.checkId)) this.tracked.set(issue.checkId, issueRank(issue));
    const present = new Set(report.results.map((r) => r.id));
    // A check the policy no longer runs cannot be fixed or checked: drop it rather than count it forever.
    for (const id of [...this.tracked.keys()]) if (!present.has(id)) this.tracked.delete(id);
  }

  /** False when the check is not in this walkthrough or is already being checked: the click is ignored. */
  startRecheck(checkId: string): boolean {
    if (!this.tracked.has(checkId) || this.rechecks.get(checkId)?.phase === 'checking') return false;
    this.rechecks.set(checkId, { phase: 'checking' });
    return true;
  }

  /** The one-check scan finished: its result is in `report`, merged into the full picture. */
  finishRecheck(checkId: string, report: PostureReport): void {
    this.update(report);
    const result = report.results.find((r) => r.id === checkId);
    this.rechecks.set(
      checkId,
      result ? { phase: 'result', status: result.status, at: result.checkedAt } : { phase: 'failed', message: 'The check did not run; the policy may have changed.' },
    );
  }

  failRecheck(checkId: string, message: string): void {
    this.rechecks.set(checkId, { phase: 'failed', message });
  }

  /** The settings page to open for a check, only ever from the allow-list and only for this OS. */
  settingsTarget(checkId: string): DeepLinkTarget | undefined {
    if (!this.tracked.has(checkId)) return undefined;
    const key = selectGuide(this.deps.remediation(checkId), this.deps.device)?.deepLink;
    const link = key === undefined ? undefined : resolveDeepLink(key);
    return link && link.platform === this.deps.device.platform ? link.target : undefined;
  }

  model(): WalkthroughModel {
    const results = new Map(this.report?.results.map((r) => [r.id, r]));
    const checks: WalkthroughCheck[] = [];
    const order = [...this.tracked].sort(([, a], [, b]) => compareRanks(a, b)).map(([id]) => id);
    for (const id of order) {
      const r = results.get(id);
      if (!r) continue;
      const guide = selectGuide(this.deps.remediation(id), this.deps.device);
      const fixed = r.status === 'pass';
      const check: WalkthroughCheck = {
        id,
        title: r.title,
        why: findCheck(id)?.why ?? '',
        severity: r.severity,
        status: r.status,
        statusText: fixed ? 'fixed' : statusWord(r.status),
        fixed,
        canOpenSettings: !fixed && this.settingsTarget(id) !== undefined,
        recheck: this.rechecks.get(id) ?? { phase: 'idle' },
      };
      if (r.reason !== undefined) check.reason = r.reason;
      if (guide) check.guide = { label: guide.label, steps: [...guide.steps] };
      if (guide?.needsAdmin) check.adminNote = ADMIN_NOTE;
      checks.push(check);
    }
    const fixedCount = checks.filter((c) => c.fixed).length;
    const label = checks.length === 0 ? 'Nothing to fix' : `${fixedCount} of ${checks.length} fixed`;
    const model: WalkthroughModel = { checks, progress: { fixed: fixedCount, total: checks.length, label }, waiting: !this.report };
    if (this.focus !== undefined && this.tracked.has(this.focus)) model.focus = this.focus;
    return model;
  }
}
