import type { PlatformCheck } from '../collector.js';
import type { Observation } from '../types.js';
import { WINDOWS_11 } from './guides.js';
import { parsePsDate } from './parse.js';
import { readWin32Posture, type Win32Posture } from './probe.js';

/**
 * Patch age = days since the newest installed update (Get-HotFix, which lists the monthly cumulative updates).
 * Microsoft ships security fixes every month, so an install older than the policy's limit means missed fixes.
 */
export function judgeWindowsPatches(p: Pick<Win32Posture, 'hotfixes'>, now: Date, maxPatchAgeDays: number): Observation {
  const fixes = p.hotfixes.value
    .map((h) => ({ id: h.HotFixID ?? '?', installedOn: parsePsDate(h.InstalledOn) }))
    .filter((h): h is { id: string; installedOn: Date } => h.installedOn !== undefined)
    .sort((a, b) => b.installedOn.getTime() - a.installedOn.getTime());
  const newest = fixes[0];
  if (!newest) {
    return { status: 'unknown', evidence: { hotfixes: 0 }, reason: 'no installed update with an install date was found' };
  }
  const ageDays = Math.floor((now.getTime() - newest.installedOn.getTime()) / 86_400_000);
  const evidence = { lastUpdate: newest.id, installedOn: newest.installedOn.toISOString(), patchAgeDays: ageDays, maxPatchAgeDays };
  return ageDays <= maxPatchAgeDays
    ? { status: 'pass', evidence, reason: `the last update (${newest.id}) was installed ${ageDays} days ago` }
    : { status: 'fail', evidence, reason: `no update installed for ${ageDays} days (allowed: ${maxPatchAgeDays})` };
}

export const osPatched: PlatformCheck = {
  collect: async (ctx) => judgeWindowsPatches(await readWin32Posture(ctx), ctx.now(), ctx.thresholds.maxPatchAgeDays),
  remediation: {
    guides: [
      {
        label: 'Windows 11',
        when: WINDOWS_11,
        steps: [
          'Save your work.',
          'Open Start > Settings > Windows Update and click "Check for updates".',
          'Click "Download & install all", then "Restart now" when it appears.',
          'Choose "Check again" in Vigil.',
        ],
        deepLink: 'windows-update',
        needsAdmin: false,
      },
      {
        label: 'Windows 10',
        steps: [
          'Save your work.',
          'Open Start > Settings > Update & Security > Windows Update and click "Check for updates".',
          'Let the updates install, then click "Restart now".',
          'Choose "Check again" in Vigil.',
        ],
        deepLink: 'windows-update',
        needsAdmin: false,
      },
    ],
  },
};
