import type { CheckResult, CheckStatus } from '../posture/types.js';
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

/**
 * Turns results into an access level. A failed critical check blocks; a failed recommended check limits;
 * `unknown` and `error` are never a pass: on a critical check they cost what the policy says
 * (`unknownOnCritical`), on a recommended one they limit.
 */
export function evaluate(policy: Policy, results: readonly EvaluatedResult[]): Decision {
  const reasons: Reason[] = [];
  for (const r of results) {
    if (r.status === 'pass') continue;
    const severity = severityOf(policy, r.id);
    if (severity === 'info' || severity === 'off') continue;
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
