import type { PlatformCheck } from '../collector.js';
import type { Observation } from '../types.js';
import { readWin32Posture, type Win32Posture } from './probe.js';

/** The built-in Guest account (RID 501, whatever its localized name) must be disabled or absent. */
export function judgeWin32Guest(p: Pick<Win32Posture, 'guest'>): Observation {
  if (p.guest.error !== null) return { status: 'unknown', evidence: {}, reason: 'could not list local accounts' };
  const enabled = p.guest.value.filter((g) => !g.Disabled);
  const evidence = { guestAccounts: p.guest.value.length, enabled: enabled.length };
  return enabled.length === 0
    ? { status: 'pass', evidence, reason: 'the Guest account is disabled' }
    : { status: 'fail', evidence, reason: 'the Guest account is enabled' };
}

export const guestAccount: PlatformCheck = {
  collect: async (ctx) => judgeWin32Guest(await readWin32Posture(ctx)),
  remediation: {
    guides: [
      {
        label: 'Windows',
        steps: [
          'Right-click Start and choose "Terminal (Admin)" or "Windows PowerShell (Admin)".',
          'Run `Get-LocalUser | Where-Object SID -like "*-501" | Disable-LocalUser` and close the window.',
          'Choose "Check again" in Vigil. If you are not an administrator, contact IT.',
        ],
        deepLink: 'windows-other-users',
        needsAdmin: true,
      },
    ],
  },
};
