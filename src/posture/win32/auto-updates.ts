import type { PlatformCheck } from '../collector.js';
import type { Observation } from '../types.js';
import { WINDOWS_11 } from './guides.js';
import { regNumber } from './parse.js';
import { readWin32Posture, type Win32Posture } from './probe.js';

/**
 * Windows updates itself unless a policy says otherwise: NoAutoUpdate = 1 turns it off, AUOptions = 2 only
 * notifies (nothing installs until someone acts), and a disabled Windows Update service stops everything.
 */
export function judgeWin32AutoUpdates(p: Pick<Win32Posture, 'windowsUpdate'>): Observation {
  const w = p.windowsUpdate.value;
  if (w === null) return { status: 'unknown', evidence: {}, reason: 'could not read the Windows Update settings' };
  const noAuto = regNumber(w.policy.NoAutoUpdate);
  const options = regNumber(w.policy.AUOptions);
  const evidence = { NoAutoUpdate: noAuto ?? null, AUOptions: options ?? null, serviceStartMode: w.serviceStartMode };
  if (w.serviceStartMode === 'Disabled') return { status: 'fail', evidence, reason: 'the Windows Update service is disabled' };
  if (noAuto === 1) return { status: 'fail', evidence, reason: 'a policy turns automatic updates off' };
  if (options === 2) return { status: 'fail', evidence, reason: 'a policy makes Windows Update only notify, not install' };
  return { status: 'pass', evidence, reason: 'Windows installs updates automatically' };
}

export const autoUpdates: PlatformCheck = {
  collect: async (ctx) => judgeWin32AutoUpdates(await readWin32Posture(ctx)),
  remediation: {
    guides: [
      {
        label: 'Windows 11',
        when: WINDOWS_11,
        steps: [
          'Open Start > Settings > Windows Update. If it says "Some settings are managed by your organization", contact IT: a policy turned updates off.',
          'Otherwise click "Resume updates" if updates are paused, then "Check for updates".',
          'Choose "Check again" in Vigil.',
        ],
        deepLink: 'windows-update',
        needsAdmin: true,
      },
      {
        label: 'Windows 10',
        steps: [
          'Open Start > Settings > Update & Security > Windows Update. If it says "Some settings are managed by your organization", contact IT.',
          'Otherwise click "Resume updates" if updates are paused, then "Check for updates".',
          'Choose "Check again" in Vigil.',
        ],
        deepLink: 'windows-update',
        needsAdmin: true,
      },
    ],
  },
};
