import type { PlatformCheck } from '../collector.js';
import type { Observation } from '../types.js';
import { VENTURA } from './guides.js';
import { readDarwinPosture } from './probe.js';
import { parseProfilesEnrollment } from './text.js';

/** Enrolled in an MDM. Since macOS 11 a manual enrollment must also be user approved to manage anything useful. */
export function judgeDarwinMdm(profiles: string | null): Observation {
  if (profiles === null) return { status: 'unknown', evidence: {}, reason: 'could not read the MDM enrollment status' };
  const e = parseProfilesEnrollment(profiles);
  const evidence = { enrolled: e.enrolled ?? null, viaDep: e.dep ?? null, userApproved: e.userApproved, server: e.server };
  if (e.enrolled === undefined) return { status: 'unknown', evidence, reason: 'unrecognised `profiles` output' };
  if (!e.enrolled) return { status: 'fail', evidence, reason: 'this Mac is not enrolled in device management' };
  if (e.dep !== true && !e.userApproved) {
    return { status: 'fail', evidence, reason: 'the device management enrollment has not been approved in System Settings' };
  }
  return { status: 'pass', evidence, reason: e.dep === true ? 'enrolled through Automated Device Enrollment' : 'enrolled (user approved)' };
}

export const mdmEnrolled: PlatformCheck = {
  collect: async (ctx) => judgeDarwinMdm((await readDarwinPosture(ctx)).profilesEnrollment),
  remediation: {
    guides: [
      {
        label: 'macOS 13 Ventura and later',
        when: VENTURA,
        steps: [
          'Open the enrollment link or Self Service app your IT team sent you, and download the enrollment profile.',
          'Open Apple menu > System Settings > Privacy & Security > Profiles (or General > Device Management).',
          'Double-click the downloaded profile, click Install and enter your password.',
          'Choose "Check again" in Vigil.',
        ],
        deepLink: 'macos-profiles',
        needsAdmin: true,
      },
      {
        label: 'macOS 12 and earlier',
        steps: [
          'Open the enrollment link your IT team sent you, and download the enrollment profile.',
          'Open Apple menu > System Preferences > Profiles, select the profile and click Install.',
          'Choose "Check again" in Vigil.',
        ],
        deepLink: 'macos-profiles',
        needsAdmin: true,
      },
    ],
  },
};
