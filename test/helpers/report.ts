import { CHECKS } from '../../src/posture/catalog.js';
import type { CheckDefinition, Evidence } from '../../src/posture/types.js';
import { evaluate, severityOf } from '../../src/policy/evaluate.js';
import { policySchema } from '../../src/policy/schema.js';
import defaultPolicyJson from '../../src/policy/default-policy.json' with { type: 'json' };
import { REPORT_SCHEMA_VERSION, type PostureReport } from '../../src/protocol/report.js';

/**
 * A synthetic but realistically sized Linux posture report: every catalog check, with evidence of the kind
 * the collectors record. Test data written by hand, not a recorded scan (the agent CLI that prints one is
 * being built in parallel).
 */
const EVIDENCE: Record<string, Evidence> = {
  'os-version': { osId: 'debian', version: '12', minimum: '12', prettyName: 'Debian GNU/Linux 12 (bookworm)' },
  'os-patched': { pendingSecurityUpdates: 0, oldestPendingDays: null, source: 'apt-get -s upgrade', lastAptUpdate: '2026-11-02T08:11:00Z' },
  'disk-encryption': { rootDevice: '/dev/mapper/nvme0n1p3_crypt', luks: true, cipher: 'aes-xts-plain64', mounts: ['/', '/home'] },
  'not-rooted': { secureBootDb: 'unknown', kernelTainted: 0, unsignedModules: [] },
  'edr-running': { candidates: ['falcon-sensor', 'clamd', 'wdavdaemon'], running: ['clamd'], signatureAgeDays: 1 },
  firewall: { backend: 'nftables', tables: 2, inputPolicy: 'drop', ufw: 'inactive' },
  'screen-lock': { desktop: 'GNOME', lockEnabled: true, idleDelaySeconds: 300, source: 'gsettings' },
  'auto-updates': { unattendedUpgrades: true, aptPeriodicUpdate: '1', aptPeriodicUnattended: '1' },
  'secure-boot': { efi: true, secureBoot: true, source: '/sys/firmware/efi/efivars/SecureBoot-8be4df61' },
  'ssh-server': { listening: [], sshdActive: false },
  'root-empty-password': { status: 'L', source: 'passwd -S root' },
  'guest-account': { guestUsers: [], lightdmAllowGuest: null },
};

export function sampleReport(opts: { failing?: readonly string[]; unknown?: readonly string[]; generatedAt?: Date } = {}): PostureReport {
  const policy = policySchema.parse(defaultPolicyJson);
  const at = (opts.generatedAt ?? new Date()).toISOString();
  const catalog: readonly CheckDefinition[] = CHECKS;
  const results = catalog.filter((c) => c.platforms.includes('linux')).map((c, i) => {
    const status = opts.failing?.includes(c.id) ? ('fail' as const) : opts.unknown?.includes(c.id) ? ('unknown' as const) : ('pass' as const);
    return {
      id: c.id,
      title: c.title,
      severity: severityOf(policy, c.id),
      status,
      evidence: EVIDENCE[c.id] ?? {},
      ...(status === 'pass' ? {} : { reason: status === 'fail' ? `${c.title}: not satisfied` : 'requires-admin: cannot read without root' }),
      checkedAt: at,
      durationMs: 3 + i,
    };
  });
  const decision = evaluate(policy, results, ['linux']);
  return {
    schemaVersion: REPORT_SCHEMA_VERSION,
    agentVersion: '0.1.0',
    generatedAt: at,
    device: {
      hostname: 'ws-0142',
      platform: 'linux',
      arch: 'x64',
      os: { name: 'Debian GNU/Linux 12 (bookworm)', id: 'debian', version: '12', kernel: '6.1.0-27-amd64' },
      hardware: { vendor: 'LENOVO', model: '21HMCTO1WW', serial: null, uuid: '4c4c4544-0042-3610-8052-b4c04f4e3432' },
      user: 'alice',
    },
    policy: { name: policy.name, version: policy.version },
    accessLevel: decision.accessLevel,
    reasons: decision.reasons,
    results,
  };
}
