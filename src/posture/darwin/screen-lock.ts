import type { PlatformCheck } from '../collector.js';
import type { Observation } from '../types.js';
import { VENTURA } from './guides.js';
import { plistDict, prefBool, prefNumber } from './plist.js';
import { readDarwinPosture, type DarwinPosture } from './probe.js';
import { parseSysadminctlScreenLock } from './text.js';

/** macOS starts the screen saver after 20 minutes when the user never changed it. */
const DEFAULT_IDLE_SECONDS = 1200;

type Source = 'profile' | 'user' | 'default';

/**
 * Locked after max seconds idle means: a password is required, the screen saver starts (idleTime > 0), and
 * idleTime + the password grace delay is within the policy. Values enforced by a configuration profile win
 * over the user's own (per-user profile first); since 10.13 the user's password setting lives where only
 * `sysadminctl -screenLock status` can read it. Display sleep can also lock the screen; it is not counted,
 * so a Mac that relies on it alone fails.
 */
export function judgeDarwinScreenLock(
  p: Pick<DarwinPosture, 'screenLockStatus' | 'screensaverByHost' | 'screensaverManaged' | 'screensaverManagedUser'>,
  maxIdleSeconds: number,
): Observation {
  const mu = plistDict(p.screensaverManagedUser);
  const m = plistDict(p.screensaverManaged);
  const byHost = plistDict(p.screensaverByHost);
  const sys = p.screenLockStatus === null ? undefined : parseSysadminctlScreenLock(p.screenLockStatus);

  const profileAsk = prefBool(mu?.askForPassword) ?? prefBool(m?.askForPassword);
  const profileDelay = prefNumber(mu?.askForPasswordDelay) ?? prefNumber(m?.askForPasswordDelay);
  const passwordRequired = profileAsk ?? sys?.passwordRequired;
  const delay = profileDelay ?? (sys?.passwordRequired === true ? sys.delaySeconds : undefined);

  const profileIdle = prefNumber(mu?.idleTime) ?? prefNumber(m?.idleTime);
  const userIdle = prefNumber(byHost?.idleTime);
  const idle = profileIdle ?? userIdle ?? DEFAULT_IDLE_SECONDS;
  const idleSource: Source = profileIdle !== undefined ? 'profile' : userIdle !== undefined ? 'user' : 'default';

  const evidence = {
    passwordRequired: passwordRequired ?? null,
    passwordSource: profileAsk !== undefined ? 'profile' : sys ? 'user' : null,
    passwordDelaySeconds: delay ?? null,
    idleTimeSeconds: idle,
    idleSource,
    maxIdleSeconds,
  };
  if (passwordRequired === undefined) {
    return { status: 'unknown', evidence, reason: 'could not read whether a password is required after the screen saver' };
  }
  if (!passwordRequired) return { status: 'fail', evidence, reason: 'no password is required when the screen saver starts' };
  if (idle <= 0) return { status: 'fail', evidence, reason: 'the screen saver never starts' };
  const total = idle + (delay ?? 0);
  return total <= maxIdleSeconds
    ? { status: 'pass', evidence, reason: `the screen locks after ${total} s idle` }
    : { status: 'fail', evidence, reason: `the screen locks after ${total} s idle; the policy allows ${maxIdleSeconds} s` };
}

export const screenLock: PlatformCheck = {
  collect: async (ctx) => judgeDarwinScreenLock(await readDarwinPosture(ctx), ctx.thresholds.maxScreenLockIdleSeconds),
  remediation: {
    guides: [
      {
        label: 'macOS 13 Ventura and later',
        when: VENTURA,
        steps: [
          'Open Apple menu > System Settings > Lock Screen.',
          'Set "Start Screen Saver when inactive" to 5 minutes or less.',
          'Set "Require password after screen saver begins or display is turned off" to "Immediately".',
          'Choose "Check again" in Vigil.',
        ],
        deepLink: 'macos-lock-screen',
        needsAdmin: false,
      },
      {
        label: 'macOS 12 and earlier',
        steps: [
          'Open Apple menu > System Preferences > Desktop & Screen Saver > Screen Saver and set "Start after" to 5 minutes or less.',
          'Open System Preferences > Security & Privacy > General.',
          'Tick "Require password" and choose "immediately" after sleep or screen saver begins.',
          'Choose "Check again" in Vigil.',
        ],
        deepLink: 'macos-security-general',
        needsAdmin: false,
      },
    ],
  },
};
