import { CHECKS } from '../posture/catalog.js';
import type { CheckResult, CheckStatus, Platform } from '../posture/types.js';
import type { AccessLevel, Policy, PolicySeverity } from './schema.js';

export interface Reason {
  checkId: string;
  title: string;
  severity: Exclude<PolicySeverity, 'off' | 'info'>;
  status: Exclude<CheckStatus, 'pass'>;
  /** The level this result alone would impose. */
  effect: Exclude<AccessLevel, 'full'>;
  message: string;
}

/** What evaluation reads of a result: the control plane receives evidence but never looks at it. */
export type EvaluatedResult = Pick<CheckResult, 'id' | 'title' | 'status' | 'reason'>;

export interface Decision {
  accessLevel: AccessLevel;
  reasons: Reason[];
}

const RANK: Record<AccessLevel, number> = { full: 0, limited: 1, blocked: 2 };

export function severityOf(policy: Policy, checkId: string): PolicySeverity {
  return policy.checks[checkId] ?? 'info';
}

const enforced = (s: PolicySeverity): s is Reason['severity'] => s === 'critical' || s === 'recommended';

/**
 * The results an enforced check of this platform is missing from, as `unknown`: a report that leaves a check
 * out must not pass it. The agent always sends them all; a forged or truncated report does not.
 */
export function completeResults(policy: Policy, results: readonly EvaluatedResult[], platforms: readonly Platform[]): readonly EvaluatedResult[] {
  const present = new Set(results.map((r) => r.id));
  const missing: EvaluatedResult[] = [];
  for (const c of CHECKS) {
    if (present.has(c.id) || !enforced(severityOf(policy, c.id))) continue;
    if (!(c.platforms as readonly Platform[]).some((p) => platforms.includes(p))) continue;
    missing.push({ id: c.id, title: c.title, status: 'unknown', reason: 'not in the report' });
  }
  return missing.length === 0 ? results : [...results, ...missing];
}

/**
 * Turns results into an access level. A failed critical check blocks; a failed recommended check limits;
 * `unknown` and `error` are never a pass: on a critical check they cost what the policy says
 * (`unknownOnCritical`), on a recommended one they limit. An enforced check of any of `platforms` that has no
 * result counts as `unknown`.
 */
export function evaluate(policy: Policy, results: readonly EvaluatedResult[], platforms: readonly Platform[]): Decision {
  const reasons: Reason[] = [];
  for (const r of completeResults(policy, results, platforms)) {
    if (r.status === 'pass') continue;
    const severity = severityOf(policy, r.id);
    if (!enforced(severity)) continue;
    const effect: Reason['effect'] =
      severity === 'recommended' ? 'limited' : r.status === 'fail' ? 'blocked' : policy.unknownOnCritical;
    const what = r.status === 'fail' ? 'failed' : r.status === 'unknown' ? 'could not be verified' : 'errored';
    reasons.push({
      checkId: r.id,
      title: r.title,
      severity,
      status: r.status,
      effect,
      message: `${severity} check "${r.title}" ${what}${r.reason ? `: ${r.reason}` : ''}`,
    });
  }
  // Check IDs are ASCII, so a code-unit comparison orders them the same everywhere. localeCompare would
  // page in ICU's collation data, megabytes of resident memory for the daemon's whole life.
  reasons.sort((a, b) => RANK[b.effect] - RANK[a.effect] || (a.checkId < b.checkId ? -1 : a.checkId > b.checkId ? 1 : 0));
  const accessLevel = reasons.reduce<AccessLevel>((lvl, r) => (RANK[r.effect] > RANK[lvl] ? r.effect : lvl), 'full');
  return { accessLevel, reasons };
}
