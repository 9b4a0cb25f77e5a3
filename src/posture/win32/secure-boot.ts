import type { PlatformCheck } from '../collector.js';
import type { Observation } from '../types.js';
import { WINDOWS_11 } from './guides.js';
import { regNumber } from './parse.js';
import { deniedForNonAdmin, readWin32Posture, type Win32Posture } from './probe.js';

/**
 * Confirm-SecureBootUEFI needs admin, so the registry value it mirrors (SecureBoot\State UEFISecureBootEnabled,
 * readable by everyone) decides when the cmdlet is denied. On legacy BIOS the cmdlet is "not supported".
 */
export function judgeWin32SecureBoot(p: Pick<Win32Posture, 'secureBoot'>): Observation {
  const s = p.secureBoot.value;
  const reg = regNumber(s?.UEFISecureBootEnabled ?? null);
  const evidence = {
    confirmSecureBootUEFI: s?.confirmSecureBootUEFI ?? null,
    confirmError: s?.confirmError?.category ?? null,
    UEFISecureBootEnabled: reg ?? null,
  };
  const on = s?.confirmSecureBootUEFI ?? (reg === undefined ? undefined : reg === 1);
  if (on === true) return { status: 'pass', evidence, reason: 'Secure Boot is on' };
  if (on === false) return { status: 'fail', evidence, reason: 'Secure Boot is off' };
  if (s?.confirmError?.category === 'NotImplemented') {
    return { status: 'fail', evidence, reason: 'the PC boots in legacy BIOS mode, which has no Secure Boot' };
  }
  return deniedForNonAdmin(s?.confirmError)
    ? { status: 'unknown', evidence, reason: 'requires-admin: Confirm-SecureBootUEFI was denied and the registry has no Secure Boot state' }
    : { status: 'unknown', evidence, reason: 'could not read the Secure Boot state' };
}

export const secureBoot: PlatformCheck = {
  collect: async (ctx) => judgeWin32SecureBoot(await readWin32Posture(ctx)),
  remediation: {
    guides: [
      {
        label: 'Windows 11',
        when: WINDOWS_11,
        steps: [
          'Ask IT first: switching a PC from legacy BIOS to UEFI can stop it from starting.',
          'Open Start > Settings > System > Recovery, and next to "Advanced startup" click "Restart now".',
          'Choose Troubleshoot > Advanced options > UEFI Firmware Settings > Restart.',
          'In the firmware menu, find Secure Boot (often under Security or Boot), set it to Enabled, then save and exit.',
          'Choose "Check again" in Vigil.',
        ],
        deepLink: 'windows-recovery',
        needsAdmin: true,
      },
      {
        label: 'Windows 10',
        steps: [
          'Ask IT first: switching a PC from legacy BIOS to UEFI can stop it from starting.',
          'Open Start > Settings > Update & Security > Recovery, and under "Advanced startup" click "Restart now".',
          'Choose Troubleshoot > Advanced options > UEFI Firmware Settings > Restart.',
          'In the firmware menu, find Secure Boot (often under Security or Boot), set it to Enabled, then save and exit.',
          'Choose "Check again" in Vigil.',
        ],
        deepLink: 'windows-recovery',
        needsAdmin: true,
      },
    ],
  },
};
