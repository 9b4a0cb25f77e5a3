import type { PlatformCheck } from '../collector.js';
import type { Observation } from '../types.js';
import { VENTURA } from './guides.js';
import { plistDict, prefBool } from './plist.js';
import { readDarwinPosture, type DarwinPosture } from './probe.js';

function bundleVersion(xml: string | null): string | null {
  const v = plistDict(xml)?.CFBundleShortVersionString;
  return typeof v === 'string' ? v : null;
}

type XprotectFields = 'xprotect' | 'xprotectProtected' | 'xprotectRemediator' | 'mrt' | 'softwareUpdate' | 'softwareUpdateManaged';

/**
 * XProtect is Apple's built-in malware scanner; it is only as good as its definitions, which arrive through
 * the "security responses and system files" update (ConfigDataInstall). A profile's value wins over the local one.
 * macOS 15 scans with the bundle in /var/protected/xprotect and falls back to the CoreServices one only when that
 * is missing, so the version reported is the one in use; the CoreServices copy can be older on the same Mac.
 */
export function judgeXprotect(p: Pick<DarwinPosture, XprotectFields>): Observation {
  const managed = prefBool(plistDict(p.softwareUpdateManaged)?.ConfigDataInstall);
  const local = prefBool(plistDict(p.softwareUpdate)?.ConfigDataInstall);
  const configDataInstall = managed ?? local ?? null;
  const protectedVersion = bundleVersion(p.xprotectProtected);
  const coreServicesVersion = bundleVersion(p.xprotect);
  const evidence = {
    xprotectVersion: protectedVersion ?? coreServicesVersion,
    xprotectSource: protectedVersion !== null ? '/var/protected/xprotect' : coreServicesVersion !== null ? 'CoreServices' : null,
    xprotectCoreServicesVersion: coreServicesVersion,
    xprotectRemediatorVersion: bundleVersion(p.xprotectRemediator),
    mrtVersion: bundleVersion(p.mrt),
    configDataInstall,
  };
  if (evidence.xprotectVersion === null) return { status: 'fail', evidence, reason: 'XProtect definitions were not found' };
  if (configDataInstall === false) {
    return { status: 'fail', evidence, reason: 'automatic installation of XProtect definitions (system data files) is off' };
  }
  return { status: 'pass', evidence, reason: `XProtect ${evidence.xprotectVersion} with automatic definition updates` };
}

export const xprotect: PlatformCheck = {
  collect: async (ctx) => judgeXprotect(await readDarwinPosture(ctx)),
  remediation: {
    guides: [
      {
        label: 'macOS 13 Ventura and later',
        when: VENTURA,
        steps: [
          'Open Apple menu > System Settings > General > Software Update.',
          'Click the ⓘ button next to "Automatic updates".',
          'Turn on "Install Security Responses and system files" and click Done.',
          'Choose "Check again" in Vigil.',
        ],
        deepLink: 'macos-software-update',
        needsAdmin: true,
      },
      {
        label: 'macOS 12 and earlier',
        steps: [
          'Open Apple menu > System Preferences > Software Update and click "Advanced…".',
          'Tick "Install system data files and security updates" and click OK.',
          'Choose "Check again" in Vigil.',
        ],
        deepLink: 'macos-software-update-legacy',
        needsAdmin: true,
      },
    ],
  },
};
