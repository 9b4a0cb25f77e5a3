import type { PlatformCheck } from '../collector.js';
import type { Observation } from '../types.js';
import { VENTURA } from './guides.js';
import { readDarwinPosture } from './probe.js';
import { parseSpctlStatus } from './text.js';

export function judgeGatekeeper(spctl: string | null): Observation {
  const enabled = spctl === null ? undefined : parseSpctlStatus(spctl);
  const evidence = { assessments: enabled === undefined ? null : enabled ? 'enabled' : 'disabled' };
  if (enabled === undefined) return { status: 'unknown', evidence, reason: 'could not read the Gatekeeper status' };
  return enabled
    ? { status: 'pass', evidence, reason: 'Gatekeeper checks apps before they open' }
    : { status: 'fail', evidence, reason: 'Gatekeeper is off: apps from anywhere can open unchecked' };
}

export const gatekeeper: PlatformCheck = {
  collect: async (ctx) => judgeGatekeeper((await readDarwinPosture(ctx)).spctlStatus),
  remediation: {
    guides: [
      {
        label: 'macOS 13 Ventura and later',
        when: VENTURA,
        steps: [
          'Open Apple menu > System Settings > Privacy & Security.',
          'Under Security, set "Allow applications from" to "App Store and identified developers".',
          'If that option is missing, open Terminal, run `sudo spctl --global-enable` and enter your password.',
          'Choose "Check again" in Vigil.',
        ],
        deepLink: 'macos-security-general',
        needsAdmin: true,
      },
      {
        label: 'macOS 12 and earlier',
        steps: [
          'Open Apple menu > System Preferences > Security & Privacy > General and click the lock.',
          'Under "Allow apps downloaded from", choose "App Store and identified developers".',
          'If that option is missing, open Terminal, run `sudo spctl --master-enable` and enter your password.',
          'Choose "Check again" in Vigil.',
        ],
        deepLink: 'macos-security-general',
        needsAdmin: true,
      },
    ],
  },
};
