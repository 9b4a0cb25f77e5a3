import { readFileSync } from 'node:fs';
import { evaluate } from '../../src/policy/evaluate.js';
import { policySchema } from '../../src/policy/schema.js';
import type { CheckStatus } from '../../src/posture/types.js';
import { postureReportSchema, type PostureReport } from '../../src/protocol/report.js';

/** A real report recorded on this machine (see test/fixtures/ui/README.md). */
export function recordedReport(): PostureReport {
  const text = readFileSync(new URL('../fixtures/ui/report.debian12-container.json', import.meta.url), 'utf8');
  return postureReportSchema.parse(JSON.parse(text));
}

/**
 * The report with some checks' statuses replaced and the access level re-decided by the real policy
 * evaluation, as the agent would after a re-scan. `at` moves generatedAt (and those checks' checkedAt).
 */
export function withStatuses(report: PostureReport, statuses: Record<string, CheckStatus>, at?: string): PostureReport {
  const policy = policySchema.parse({
    schemaVersion: 1,
    name: report.policy.name,
    version: report.policy.version,
    checks: Object.fromEntries(report.results.map((r) => [r.id, r.severity])),
  });
  const results = report.results.map((r) => {
    const status = statuses[r.id];
    if (status === undefined) return r;
    const next = { ...r, status, checkedAt: at ?? r.checkedAt };
    if (status === 'pass') delete next.reason;
    return next;
  });
  const decision = evaluate(policy, results, [report.device.platform]);
  return { ...report, generatedAt: at ?? report.generatedAt, results, accessLevel: decision.accessLevel, reasons: decision.reasons };
}

/** Every check that costs access passing: the compliant state. */
export function allPassing(report: PostureReport, at?: string): PostureReport {
  return withStatuses(report, Object.fromEntries(report.reasons.map((r) => [r.checkId, 'pass' as const])), at);
}
