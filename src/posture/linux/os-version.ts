import { release } from 'node:os';
import type { PlatformCheck } from '../collector.js';
import type { Observation } from '../types.js';
import type { Thresholds } from '../../policy/schema.js';
import { compareVersions } from '../../util/version.js';
import { readOsRelease, type OsRelease } from './os-release.js';

/** Judges a release against the policy minimum for its os-release ID; derivatives need their own entry. */
export function judgeOsVersion(rel: OsRelease, kernel: string, thresholds: Thresholds): Observation {
  const evidence = { id: rel.id, name: rel.prettyName, versionId: rel.versionId ?? null, kernel };
  const minimum = thresholds.minimumOsVersions[rel.id];
  if (minimum === undefined) {
    return { status: 'unknown', evidence, reason: `the policy sets no minimum version for "${rel.id}"` };
  }
  if (!rel.versionId) {
    return { status: 'unknown', evidence: { ...evidence, minimum }, reason: 'os-release has no VERSION_ID' };
  }
  const ok = compareVersions(rel.versionId, minimum) >= 0;
  return {
    status: ok ? 'pass' : 'fail',
    evidence: { ...evidence, minimum },
    reason: ok
      ? `${rel.prettyName} meets the minimum ${rel.id} ${minimum}`
      : `${rel.prettyName} is older than the minimum ${rel.id} ${minimum}`,
  };
}

export const osVersion: PlatformCheck = {
  collect: async (ctx) => judgeOsVersion(await readOsRelease(ctx), release(), ctx.thresholds),
  remediation: {
    guides: [
      {
        label: 'Ubuntu',
        when: { distroFamily: 'debian' },
        steps: [
          'Save your work and connect to power.',
          'Open Software & Updates, Updates tab, and set "Notify me of a new Ubuntu version" to "For long-term support versions".',
          'Run `sudo do-release-upgrade` in a terminal (Debian: follow the release notes, changing the suite in /etc/apt/sources.list) and follow the prompts.',
          'Restart, then choose "Check again" in Vigil.',
        ],
        needsAdmin: true,
      },
      {
        label: 'Fedora / RHEL',
        when: { distroFamily: 'fedora' },
        steps: [
          'Save your work and connect to power.',
          'Fedora: run `sudo dnf system-upgrade download --releasever=<next>` then `sudo dnf system-upgrade reboot`. RHEL: ask IT, as major upgrades use Leapp.',
          'After the restart, choose "Check again" in Vigil.',
        ],
        needsAdmin: true,
      },
      {
        label: 'Other distributions',
        steps: ['Upgrade to a release your distribution still supports, or ask IT to reinstall the device.', 'Choose "Check again" in Vigil.'],
        needsAdmin: true,
      },
    ],
  },
};
