import type { PlatformCheck } from '../collector.js';
import type { Observation } from '../types.js';
import type { Thresholds } from '../../policy/schema.js';
import { compareVersions } from '../../util/version.js';
import { VENTURA } from './guides.js';
import { readDarwinPosture } from './probe.js';

/** Compares sw_vers' product version with the policy's "macos" minimum. */
export function judgeMacosVersion(productVersion: string | null, buildVersion: string | null, thresholds: Thresholds): Observation {
  const minimum = thresholds.minimumOsVersions.macos;
  const evidence = { productVersion, buildVersion, minimum: minimum ?? null };
  if (productVersion === null) return { status: 'unknown', evidence, reason: 'sw_vers printed no version' };
  if (minimum === undefined) return { status: 'unknown', evidence, reason: 'the policy sets no minimum version for "macos"' };
  return compareVersions(productVersion, minimum) >= 0
    ? { status: 'pass', evidence, reason: `macOS ${productVersion} meets the minimum ${minimum}` }
    : { status: 'fail', evidence, reason: `macOS ${productVersion} is older than the minimum ${minimum}` };
}

export const osVersion: PlatformCheck = {
  collect: async (ctx) => {
    const p = await readDarwinPosture(ctx);
    return judgeMacosVersion(p.productVersion, p.buildVersion, ctx.thresholds);
  },
  remediation: {
    guides: [
      {
        label: 'macOS 13 Ventura and later',
        when: VENTURA,
        steps: [
          'Back up your Mac and connect it to power.',
          'Open Apple menu > System Settings > General > Software Update.',
          'Under "Upgrade", click "Upgrade Now" for the newest macOS and follow the prompts.',
          'If no upgrade is offered, your Mac may be too old for a supported macOS: contact IT.',
          'After the restart, choose "Check again" in Vigil.',
        ],
        deepLink: 'macos-software-update',
        needsAdmin: true,
      },
      {
        label: 'macOS 12 and earlier',
        steps: [
          'Back up your Mac and connect it to power.',
          'Open Apple menu > System Preferences > Software Update.',
          'Click "Upgrade Now" for the newest macOS and follow the prompts.',
          'If no upgrade is offered, your Mac may be too old for a supported macOS: contact IT.',
          'After the restart, choose "Check again" in Vigil.',
        ],
        deepLink: 'macos-software-update-legacy',
        needsAdmin: true,
      },
    ],
  },
};
