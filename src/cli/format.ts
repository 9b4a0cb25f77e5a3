import type { PostureReport } from '../protocol/report.js';
import type { RemediationGuide } from '../posture/remediation/types.js';

const useColor = (stream: NodeJS.WriteStream): boolean => stream.isTTY && !process.env.NO_COLOR && process.env.TERM !== 'dumb';

function paint(on: boolean, code: number, s: string): string {
  return on ? `\u001b[${code}m${s}\u001b[0m` : s;
}

const STATUS_MARK = { pass: '✓ pass', fail: '✗ fail', unknown: '? unknown', error: '! error' } as const;
const STATUS_COLOR = { pass: 32, fail: 31, unknown: 33, error: 35 } as const;
const LEVEL_COLOR = { full: 32, limited: 33, blocked: 31 } as const;

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

function truncate(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}

/** The human form of `vigil check`: a compact table, the access level, and the first step of each fix. */
export function formatReport(report: PostureReport, firstSteps: ReadonlyMap<string, RemediationGuide | undefined>, stream = process.stdout): string {
  const color = useColor(stream);
  const width = Math.max(80, stream.columns || 140);
  const lines: string[] = [];
  const d = report.device;
  lines.push(`${d.hostname} · ${d.os.name} · policy ${report.policy.name} ${report.policy.version}`);
  lines.push(`Access level: ${paint(color, LEVEL_COLOR[report.accessLevel], report.accessLevel.toUpperCase())}`);
  lines.push('');
  const titleWidth = Math.max(...report.results.map((r) => r.title.length), 5);
  lines.push(`  ${pad('STATUS', 10)} ${pad('SEVERITY', 12)} ${pad('CHECK', titleWidth)}  DETAIL`);
  const order = { fail: 0, error: 1, unknown: 2, pass: 3 } as const;
  const sevOrder = { critical: 0, recommended: 1, info: 2, off: 3 } as const;
  const rows = [...report.results].sort((a, b) => order[a.status] - order[b.status] || sevOrder[a.severity] - sevOrder[b.severity]);
  for (const r of rows) {
    const detail = truncate(r.reason ?? '', Math.max(20, width - titleWidth - 30));
    lines.push(`  ${paint(color, STATUS_COLOR[r.status], pad(STATUS_MARK[r.status], 10))} ${pad(r.severity, 12)} ${pad(r.title, titleWidth)}  ${detail}`);
  }
  const fixes = report.reasons.filter((r) => firstSteps.get(r.checkId));
  if (fixes.length > 0) {
    lines.push('');
    lines.push('To fix:');
    for (const reason of fixes) {
      const guide = firstSteps.get(reason.checkId);
      const step = guide?.steps[0];
      if (!step) continue;
      lines.push(`  • ${reason.title}${guide.needsAdmin ? ' (needs an administrator)' : ''}: ${step}`);
    }
    lines.push(`  Full steps: vigil checks --platform ${d.platform}`);
  }
  return `${lines.join('\n')}\n`;
}
