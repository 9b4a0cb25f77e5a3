import { CHECK_IDS } from '../posture/catalog.js';
import type { PostureReport } from '../protocol/report.js';

type Reason = PostureReport['reasons'][number];

export interface Issue {
  checkId: string;
  title: string;
  severity: Reason['severity'];
  status: Reason['status'];
  effect: Reason['effect'];
}

const SEVERITY_RANK: Record<string, number> = { critical: 0, recommended: 1, info: 2, off: 3 };

/** Catalog position: a stable tie-breaker, so lists do not reshuffle between scans. */
export function catalogIndex(id: string): number {
  const i = CHECK_IDS.indexOf(id);
  return i === -1 ? CHECK_IDS.length : i;
}

export function severityRank(severity: string): number {
  return SEVERITY_RANK[severity] ?? 4;
}

/**
 * Sort key of an issue: critical before recommended, then those that block, then outright failures before
 * checks that could not be verified (which never count as a pass), then catalog order.
 */
export function issueRank(issue: Pick<Issue, 'checkId' | 'severity' | 'effect' | 'status'>): readonly number[] {
  return [severityRank(issue.severity), issue.effect === 'blocked' ? 0 : 1, issue.status === 'fail' ? 0 : 1, catalogIndex(issue.checkId)];
}

export function compareRanks(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** The checks that cost access, most serious first. */
export function issuesOf(report: PostureReport | undefined): Issue[] {
  if (!report) return [];
  return report.reasons
    .map((r) => ({ checkId: r.checkId, title: r.title, severity: r.severity, status: r.status, effect: r.effect }))
    .sort((a, b) => compareRanks(issueRank(a), issueRank(b)));
}

export function statusWord(status: 'pass' | 'fail' | 'unknown' | 'error'): string {
  switch (status) {
    case 'pass':
      return 'passed';
    case 'fail':
      return 'failed';
    case 'unknown':
      return 'could not be verified';
    case 'error':
      return 'could not be checked';
  }
}
