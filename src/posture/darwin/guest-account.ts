import type { PlatformCheck } from '../collector.js';
import type { Observation } from '../types.js';
import { VENTURA } from './guides.js';
import { plistDict, prefBool } from './plist.js';
import { readDarwinPosture, type DarwinPosture } from './probe.js';

/** com.apple.loginwindow GuestEnabled; a profile's value wins. Absent means off, the macOS default. */
export function judgeDarwinGuest(p: Pick<DarwinPosture, 'loginwindow' | 'loginwindowManaged'>): Observation {
  const managed = prefBool(plistDict(p.loginwindowManaged)?.GuestEnabled);
  const localDict = plistDict(p.loginwindow);
  const local = prefBool(localDict?.GuestEnabled);
  const guestEnabled = managed ?? local;
  const evidence = { guestEnabled: guestEnabled ?? null, managedByProfile: managed !== undefined };
  if (guestEnabled === true) return { status: 'fail', evidence, reason: 'the Guest user can log in' };
  if (guestEnabled === false) return { status: 'pass', evidence, reason: 'the Guest user is off' };
  if (localDict) return { status: 'pass', evidence, reason: 'the Guest user was never turned on' };
  return { status: 'unknown', evidence, reason: 'could not read the login window settings' };
}

export const guestAccount: PlatformCheck = {
  collect: async (ctx) => judgeDarwinGuest(await readDarwinPosture(ctx)),
  remediation: {
    guides: [
      {
        label: 'macOS 13 Ventura and later',
        when: VENTURA,
        steps: [
          'Open Apple menu > System Settings > Users & Groups.',
          'Click the ⓘ button next to "Guest User".',
          'Turn off "Allow guests to log in to this computer" and click OK.',
          'Choose "Check again" in Vigil.',
        ],
        deepLink: 'macos-users',
        needsAdmin: true,
      },
      {
        label: 'macOS 12 and earlier',
        steps: [
          'Open Apple menu > System Preferences > Users & Groups and click the lock.',
          'Select "Guest User" and untick "Allow guests to log in to this computer".',
          'Choose "Check again" in Vigil.',
        ],
        deepLink: 'macos-users-legacy',
        needsAdmin: true,
      },
    ],
  },
};
