import type { PlatformCheck } from '../collector.js';
import type { Observation } from '../types.js';
import type { Thresholds } from '../../policy/schema.js';
import { compareVersions } from '../../util/version.js';
import { WINDOWS_11 } from './guides.js';
import { windowsVersion } from './parse.js';
import { readWin32Posture, type Win32Posture } from './probe.js';

/** Compares "10.0.<build>.<UBR>" with the policy's "windows" minimum (10.0.22000 = the first Windows 11). */
export function judgeWindowsVersion(p: Pick<Win32Posture, 'os'>, thresholds: Thresholds): Observation {
  const os = p.os.value;
  const version = windowsVersion(os?.Version ?? null, os?.UBR ?? null);
  const minimum = thresholds.minimumOsVersions.windows;
  const evidence = { caption: os?.Caption ?? null, version, displayVersion: os?.DisplayVersion ?? null, minimum: minimum ?? null };
  if (version === null) return { status: 'unknown', evidence, reason: 'could not read the Windows version' };
  if (minimum === undefined) return { status: 'unknown', evidence, reason: 'the policy sets no minimum version for "windows"' };
  const name = `${os?.Caption ?? 'Windows'} ${version}`;
  return compareVersions(version, minimum) >= 0
    ? { status: 'pass', evidence, reason: `${name} meets the minimum ${minimum}` }
    : { status: 'fail', evidence, reason: `${name} is older than the minimum ${minimum}` };
}

export const osVersion: PlatformCheck = {
  collect: async (ctx) => judgeWindowsVersion(await readWin32Posture(ctx), ctx.thresholds),
  remediation: {
    guides: [
      {
        label: 'Windows 11',
        when: WINDOWS_11,
        steps: [
          'Save your work and connect the PC to power.',
          'Open Start > Settings > Windows Update and click "Check for updates".',
          'Install the feature update offered (for example "Windows 11, version 24H2") and restart when asked.',
          'Choose "Check again" in Vigil.',
        ],
        deepLink: 'windows-update',
        needsAdmin: false,
      },
      {
        label: 'Windows 10',
        steps: [
          'Save your work and connect the PC to power.',
          'Open Start > Settings > Update & Security > Windows Update and click "Check for updates".',
          'If "Upgrade to Windows 11 is ready" appears, click "Download and install". If your PC cannot run Windows 11, contact IT.',
          'Restart when asked, then choose "Check again" in Vigil.',
        ],
        deepLink: 'windows-update',
        needsAdmin: true,
      },
    ],
  },
};
