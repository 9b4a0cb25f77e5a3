import type { PlatformCheck } from '../collector.js';
import type { Observation } from '../types.js';
import { readDarwinPosture } from './probe.js';
import { parseCsrutilStatus } from './text.js';

/** SIP must be fully on: a custom configuration has protections switched off even when it says "enabled". */
export function judgeSip(csrutil: string | null): Observation {
  const sip = csrutil === null ? undefined : parseCsrutilStatus(csrutil);
  if (!sip) return { status: 'unknown', evidence: { csrutil }, reason: 'could not read the System Integrity Protection status' };
  const evidence = { sip: sip.status, customConfiguration: sip.custom, disabledProtections: sip.disabledProtections };
  if (sip.status === 'enabled' && !sip.custom) return { status: 'pass', evidence, reason: 'System Integrity Protection is on' };
  if (sip.status === 'disabled') return { status: 'fail', evidence, reason: 'System Integrity Protection is off' };
  return {
    status: 'fail',
    evidence,
    reason:
      sip.disabledProtections.length > 0
        ? `System Integrity Protection is partly off: ${sip.disabledProtections.join(', ')}`
        : 'System Integrity Protection runs a custom configuration',
  };
}

export const notRooted: PlatformCheck = {
  collect: async (ctx) => judgeSip((await readDarwinPosture(ctx)).csrutilStatus),
  remediation: {
    guides: [
      {
        label: 'macOS',
        steps: [
          'Save your work and shut down the Mac.',
          'Apple silicon: press and hold the power button until "Loading startup options" appears, then choose Options > Continue. Intel: turn the Mac on while holding Command-R.',
          'In the menu bar choose Utilities > Terminal, type `csrutil clear` (or `csrutil enable` on Intel Macs) and press Return.',
          'Choose Apple menu > Restart, then choose "Check again" in Vigil. If you cannot do this, contact IT.',
        ],
        needsAdmin: true,
      },
    ],
  },
};
