import type { PlatformCheck } from '../collector.js';
import type { Observation } from '../types.js';
import { VENTURA } from './guides.js';
import { readDarwinPosture, type DarwinPosture } from './probe.js';
import { parseNetstatListeningPorts, parseSshdLaunchd } from './text.js';

/**
 * Remote Login (sshd). `systemsetup -getremotelogin` needs admin, so this reads launchd's enabled flag for
 * com.openssh.sshd and whether anything listens on TCP 22; either one on is a fail.
 */
export function judgeRemoteLogin(p: Pick<DarwinPosture, 'sshdLaunchd' | 'tcpListeners'>): Observation {
  const launchd = p.sshdLaunchd === null ? undefined : parseSshdLaunchd(p.sshdLaunchd);
  const ports = p.tcpListeners === null ? undefined : parseNetstatListeningPorts(p.tcpListeners);
  const listening22 = ports?.includes(22);
  const evidence = { launchd: launchd ?? null, listeningOn22: listening22 ?? null };
  if (launchd === 'enabled' || listening22 === true) {
    return { status: 'fail', evidence, reason: 'Remote Login (SSH) is on' };
  }
  if (launchd === 'disabled' || listening22 === false) return { status: 'pass', evidence, reason: 'Remote Login (SSH) is off' };
  return { status: 'unknown', evidence, reason: 'could not read the Remote Login state' };
}

export const sshServer: PlatformCheck = {
  collect: async (ctx) => judgeRemoteLogin(await readDarwinPosture(ctx)),
  remediation: {
    guides: [
      {
        label: 'macOS 13 Ventura and later',
        when: VENTURA,
        steps: [
          'Open Apple menu > System Settings > General > Sharing.',
          'Turn off "Remote Login" and enter an administrator password if asked.',
          'Choose "Check again" in Vigil.',
        ],
        deepLink: 'macos-sharing',
        needsAdmin: true,
      },
      {
        label: 'macOS 12 and earlier',
        steps: [
          'Open Apple menu > System Preferences > Sharing.',
          'Click the lock if needed, then untick "Remote Login".',
          'Choose "Check again" in Vigil.',
        ],
        deepLink: 'macos-sharing-legacy',
        needsAdmin: true,
      },
    ],
  },
};
