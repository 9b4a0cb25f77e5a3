import type { PlatformCheck } from '../collector.js';
import type { Observation } from '../types.js';
import { readWin32Posture, type Win32Posture } from './probe.js';

/**
 * Win32_Tpm needs admin; without it the TPM's ACPI device id tells presence and version: MSFT0101 is a
 * TPM 2.0, PNP0C31 a TPM 1.2. Windows 11 and its credential protections need 2.0.
 */
export function judgeTpm(p: Pick<Win32Posture, 'tpm'>): Observation {
  const t = p.tpm.value;
  if (t === null) return { status: 'unknown', evidence: {}, reason: 'could not query the TPM' };
  const cim = t.win32Tpm[0];
  if (cim) {
    const version = cim.SpecVersion?.split(',')[0]?.trim() ?? null;
    const evidence = { source: 'Win32_Tpm', specVersion: version, enabled: cim.IsEnabled_InitialValue, activated: cim.IsActivated_InitialValue };
    if (cim.IsEnabled_InitialValue !== true || cim.IsActivated_InitialValue !== true) {
      return { status: 'fail', evidence, reason: 'the TPM is present but turned off' };
    }
    return version !== null && Number.parseFloat(version) >= 2
      ? { status: 'pass', evidence, reason: `TPM ${version} is on` }
      : { status: 'fail', evidence, reason: `TPM ${version ?? '?'} is older than 2.0` };
  }
  const ids = t.securityDevices.filter((d) => d.Status === null || d.Status === 'OK').map((d) => (d.DeviceID ?? '').toUpperCase());
  const evidence = { source: 'Win32_PnPEntity', devices: ids, win32TpmError: t.win32TpmError?.category ?? null };
  if (ids.some((id) => id.includes('MSFT0101'))) return { status: 'pass', evidence, reason: 'a TPM 2.0 is present' };
  if (ids.some((id) => id.includes('PNP0C31'))) return { status: 'fail', evidence, reason: 'only a TPM 1.2 is present' };
  return { status: 'fail', evidence, reason: 'no TPM was found (it may be turned off in the firmware)' };
}

export const tpm: PlatformCheck = {
  collect: async (ctx) => judgeTpm(await readWin32Posture(ctx)),
  remediation: {
    guides: [
      {
        label: 'Windows',
        steps: [
          'Open Start > Windows Security > Device security and look for "Security processor".',
          'If it is missing, the TPM (often called PTT on Intel or fTPM on AMD) is turned off in the firmware: ask IT to turn it on, or follow your PC maker\'s instructions.',
          'Choose "Check again" in Vigil.',
        ],
        deepLink: 'windows-device-security',
        needsAdmin: true,
      },
    ],
  },
};
