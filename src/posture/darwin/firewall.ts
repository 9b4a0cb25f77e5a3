import type { PlatformCheck } from '../collector.js';
import type { Observation } from '../types.js';
import { VENTURA } from './guides.js';
import { plistDict, prefBool } from './plist.js';
import { readDarwinPosture, type DarwinPosture } from './probe.js';
import { parseFirewallGlobalState, parseStealthMode } from './text.js';

/** The application firewall must be on (state 1 or 2). Stealth mode is reported, not required. */
export function judgeDarwinFirewall(p: Pick<DarwinPosture, 'firewallGlobalState' | 'firewallStealthMode' | 'firewallManaged'>): Observation {
  const state = p.firewallGlobalState === null ? undefined : parseFirewallGlobalState(p.firewallGlobalState);
  const stealth = p.firewallStealthMode === null ? undefined : parseStealthMode(p.firewallStealthMode);
  const enforced = prefBool(plistDict(p.firewallManaged)?.EnableFirewall);
  const evidence = { globalState: state ?? null, stealthMode: stealth ?? null, enforcedByProfile: enforced ?? null };
  if (state === undefined) {
    if (enforced === true) return { status: 'pass', evidence, reason: 'a configuration profile turns the firewall on' };
    return { status: 'unknown', evidence, reason: 'could not read the firewall state' };
  }
  if (state === 0) return { status: 'fail', evidence, reason: 'the macOS firewall is off' };
  return { status: 'pass', evidence, reason: state === 2 ? 'the firewall is on and blocks all incoming connections' : 'the firewall is on' };
}

export const firewall: PlatformCheck = {
  collect: async (ctx) => judgeDarwinFirewall(await readDarwinPosture(ctx)),
  remediation: {
    guides: [
      {
        label: 'macOS 13 Ventura and later',
        when: VENTURA,
        steps: [
          'Open Apple menu > System Settings > Network > Firewall.',
          'Turn Firewall on and enter an administrator password if asked.',
          'Choose "Check again" in Vigil.',
        ],
        deepLink: 'macos-firewall',
        needsAdmin: true,
      },
      {
        label: 'macOS 12 and earlier',
        steps: [
          'Open Apple menu > System Preferences > Security & Privacy > Firewall.',
          'Click the lock, enter an administrator password, then click "Turn On Firewall".',
          'Choose "Check again" in Vigil.',
        ],
        deepLink: 'macos-firewall-legacy',
        needsAdmin: true,
      },
    ],
  },
};
