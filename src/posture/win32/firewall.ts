import type { PlatformCheck } from '../collector.js';
import type { Observation } from '../types.js';
import { decodeProductState } from './parse.js';
import { readWin32Posture, type Win32Posture } from './probe.js';

/**
 * Windows Firewall must be on for the Domain, Private and Public profiles (GpoBoolean Enabled: 1 = True), unless
 * SecurityCenter2 lists a third-party firewall that is on: Windows turns its own off when one registers.
 */
export function judgeWin32Firewall(p: Pick<Win32Posture, 'firewallProfiles' | 'firewallProducts'>): Observation {
  const profiles = p.firewallProfiles.value;
  const thirdParty = p.firewallProducts.value
    .filter((f) => f.productState !== null && decodeProductState(f.productState).state === 'on' && !decodeProductState(f.productState).microsoft)
    .map((f) => f.displayName ?? '?');
  const evidence = {
    profiles: Object.fromEntries(profiles.map((x) => [x.Name, x.Enabled === 1])),
    thirdPartyFirewalls: thirdParty,
  };
  if (thirdParty.length > 0) return { status: 'pass', evidence, reason: `firewall: ${thirdParty.join(', ')}` };
  if (profiles.length === 0) return { status: 'unknown', evidence, reason: 'could not read the Windows Firewall profiles' };
  const off = profiles.filter((x) => x.Enabled !== 1).map((x) => x.Name);
  return off.length === 0
    ? { status: 'pass', evidence, reason: 'Windows Firewall is on for every network profile' }
    : { status: 'fail', evidence, reason: `Windows Firewall is off for: ${off.join(', ')}` };
}

export const firewall: PlatformCheck = {
  collect: async (ctx) => judgeWin32Firewall(await readWin32Posture(ctx)),
  remediation: {
    guides: [
      {
        label: 'Windows',
        steps: [
          'Open Start > Windows Security > Firewall & network protection.',
          'For each of "Domain network", "Private network" and "Public network" marked off, click it and turn Microsoft Defender Firewall on.',
          'Choose "Check again" in Vigil.',
        ],
        deepLink: 'windows-firewall',
        needsAdmin: true,
      },
    ],
  },
};
