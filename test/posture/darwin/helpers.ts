import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../helpers.js';
import type { DarwinPosture } from '../../../src/posture/darwin/probe.js';

export function fixture(rel: string): string {
  return readFileSync(join(ROOT, 'test', 'fixtures', 'darwin', rel), 'utf8');
}

/** A posture.sh output with every tool missing, overlaid with the given fields (assembled, see the README). */
export function posture(over: Partial<DarwinPosture> = {}): DarwinPosture {
  return {
    probeVersion: 1,
    productVersion: null,
    buildVersion: null,
    fdesetupStatus: null,
    firewallGlobalState: null,
    firewallStealthMode: null,
    firewallManaged: null,
    spctlStatus: null,
    csrutilStatus: null,
    screenLockStatus: null,
    screensaverByHost: null,
    screensaverManaged: null,
    screensaverManagedUser: null,
    softwareUpdate: null,
    softwareUpdateManaged: null,
    xprotect: null,
    xprotectProtected: null,
    xprotectRemediator: null,
    mrt: null,
    processes: null,
    profilesEnrollment: null,
    sshdLaunchd: null,
    tcpListeners: null,
    loginwindow: null,
    loginwindowManaged: null,
    ...over,
  };
}

/** A minimal XML plist dictionary, as `plutil -convert xml1` writes it. */
export function plist(entries: Record<string, string | number | boolean>): string {
  const body = Object.entries(entries)
    .map(([k, v]) => {
      const val = typeof v === 'boolean' ? `<${v}/>` : typeof v === 'number' ? `<integer>${v}</integer>` : `<string>${v}</string>`;
      return `\t<key>${k}</key>\n\t${val}`;
    })
    .join('\n');
  return `<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n<plist version="1.0">\n<dict>\n${body}\n</dict>\n</plist>\n`;
}
