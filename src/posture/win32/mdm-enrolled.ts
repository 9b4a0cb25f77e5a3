import type { PlatformCheck } from '../collector.js';
import type { Observation } from '../types.js';
import { WINDOWS_11 } from './guides.js';
import { parseDsregcmd } from './parse.js';
import { readWin32Posture, type Win32Posture } from './probe.js';

/**
 * Managed means joined to Active Directory, Microsoft Entra (including hybrid and on-premises DRS), or at least
 * registered with a work account (WorkplaceJoined). dsregcmd's keys are fixed English; Win32_ComputerSystem's
 * PartOfDomain backs it up when dsregcmd is missing (Server Core, old builds).
 */
export function judgeWin32Join(p: Pick<Win32Posture, 'join'>): Observation {
  const j = p.join.value;
  if (j === null) return { status: 'unknown', evidence: {}, reason: 'could not read the join state' };
  const d = j.dsregcmd === null ? {} : parseDsregcmd(j.dsregcmd);
  const yes = (k: string): boolean | null => (d[k] === undefined ? null : d[k].toUpperCase() === 'YES');
  const evidence = {
    AzureAdJoined: yes('AzureAdJoined'),
    DomainJoined: yes('DomainJoined') ?? j.PartOfDomain,
    EnterpriseJoined: yes('EnterpriseJoined'),
    WorkplaceJoined: yes('WorkplaceJoined'),
    domainName: d.DomainName ?? null,
    tenantName: d.TenantName ?? null,
  };
  const joined = (['AzureAdJoined', 'DomainJoined', 'EnterpriseJoined', 'WorkplaceJoined'] as const).filter((k) => evidence[k] === true);
  if (joined.length > 0) return { status: 'pass', evidence, reason: `managed: ${joined.join(', ')}` };
  if (evidence.AzureAdJoined === null && evidence.DomainJoined === null) {
    return { status: 'unknown', evidence, reason: 'could not read the join state' };
  }
  return { status: 'fail', evidence, reason: 'this PC is not joined to a domain or Microsoft Entra, nor registered with a work account' };
}

export const mdmEnrolled: PlatformCheck = {
  collect: async (ctx) => judgeWin32Join(await readWin32Posture(ctx)),
  remediation: {
    guides: [
      {
        label: 'Windows 11',
        when: WINDOWS_11,
        steps: [
          'Open Start > Settings > Accounts > Access work or school.',
          'Click "Connect" and sign in with your work account, as IT instructed.',
          'Restart the PC, then choose "Check again" in Vigil.',
        ],
        deepLink: 'windows-work-access',
        needsAdmin: false,
      },
      {
        label: 'Windows 10',
        steps: [
          'Open Start > Settings > Accounts > Access work or school.',
          'Click "Connect" and sign in with your work account, as IT instructed.',
          'Restart the PC, then choose "Check again" in Vigil.',
        ],
        deepLink: 'windows-work-access',
        needsAdmin: false,
      },
    ],
  },
};
