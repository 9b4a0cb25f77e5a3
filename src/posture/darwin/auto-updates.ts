import type { PlatformCheck } from '../collector.js';
import type { Observation } from '../types.js';
import { VENTURA } from './guides.js';
import { plistDict, prefBool } from './plist.js';
import { readDarwinPosture, type DarwinPosture } from './probe.js';

/** Keys of com.apple.SoftwareUpdate that must not be off; absent means Apple's default, which is on. */
const REQUIRED = ['AutomaticCheckEnabled', 'AutomaticDownload', 'CriticalUpdateInstall'] as const;

/**
 * Automatic checking, downloading and installing of security responses must be on. Whether macOS updates
 * themselves install automatically (AutomaticallyInstallMacOSUpdates) is reported but not required: many
 * companies stage OS updates. A configuration profile's value wins over the local one.
 */
export function judgeDarwinAutoUpdates(p: Pick<DarwinPosture, 'softwareUpdate' | 'softwareUpdateManaged'>): Observation {
  const local = plistDict(p.softwareUpdate);
  const managed = plistDict(p.softwareUpdateManaged);
  const value = (key: string): boolean | null => prefBool(managed?.[key]) ?? prefBool(local?.[key]) ?? null;
  const evidence = {
    AutomaticCheckEnabled: value('AutomaticCheckEnabled'),
    AutomaticDownload: value('AutomaticDownload'),
    CriticalUpdateInstall: value('CriticalUpdateInstall'),
    ConfigDataInstall: value('ConfigDataInstall'),
    AutomaticallyInstallMacOSUpdates: value('AutomaticallyInstallMacOSUpdates'),
    managedByProfile: managed !== undefined,
  };
  if (!local && !managed) return { status: 'unknown', evidence, reason: 'could not read the software update settings' };
  const off = REQUIRED.filter((k) => evidence[k] === false);
  return off.length === 0
    ? { status: 'pass', evidence, reason: 'automatic update checks, downloads and security responses are on' }
    : { status: 'fail', evidence, reason: `automatic update settings are off: ${off.join(', ')}` };
}

export const autoUpdates: PlatformCheck = {
  collect: async (ctx) => judgeDarwinAutoUpdates(await readDarwinPosture(ctx)),
  remediation: {
    guides: [
      {
        label: 'macOS 13 Ventura and later',
        when: VENTURA,
        steps: [
          'Open Apple menu > System Settings > General > Software Update.',
          'Click the ⓘ button next to "Automatic updates".',
          'Turn on "Check for updates", "Download new updates when available" and "Install Security Responses and system files", then click Done.',
          'Choose "Check again" in Vigil.',
        ],
        deepLink: 'macos-software-update',
        needsAdmin: true,
      },
      {
        label: 'macOS 12 and earlier',
        steps: [
          'Open Apple menu > System Preferences > Software Update and click "Advanced…".',
          'Tick "Check for updates", "Download new updates when available" and "Install system data files and security updates", then click OK.',
          'Choose "Check again" in Vigil.',
        ],
        deepLink: 'macos-software-update-legacy',
        needsAdmin: true,
      },
    ],
  },
};
