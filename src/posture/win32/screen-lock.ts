import type { PlatformCheck } from '../collector.js';
import type { Observation } from '../types.js';
import { WINDOWS_11 } from './guides.js';
import { regNumber } from './parse.js';
import { readWin32Posture, type Win32Posture } from './probe.js';

/**
 * The screen locks after max seconds idle if either the machine inactivity limit (InactivityTimeoutSecs, a
 * security policy) is set within it, or a password-protected screen saver starts within it. Screen saver
 * values come from the user's policy key when set, else from the user's own settings (REG_SZ "1"/"600").
 */
export function judgeWin32ScreenLock(p: Pick<Win32Posture, 'screenLock'>, maxIdleSeconds: number): Observation {
  const s = p.screenLock.value;
  if (s === null) return { status: 'unknown', evidence: {}, reason: 'could not read the screen lock settings' };
  const inactivity = regNumber(s.machinePolicy.InactivityTimeoutSecs);
  const pick = (k: 'ScreenSaveActive' | 'ScreenSaverIsSecure' | 'ScreenSaveTimeOut'): number | undefined =>
    regNumber(s.userPolicy[k]) ?? regNumber(s.user[k]);
  const active = pick('ScreenSaveActive');
  const secure = pick('ScreenSaverIsSecure');
  const timeout = pick('ScreenSaveTimeOut');
  const evidence = {
    inactivityTimeoutSecs: inactivity ?? null,
    screenSaverActive: active === undefined ? null : active === 1,
    screenSaverSecure: secure === undefined ? null : secure === 1,
    screenSaverTimeoutSecs: timeout ?? null,
    maxIdleSeconds,
  };
  if (inactivity !== undefined && inactivity > 0 && inactivity <= maxIdleSeconds) {
    return { status: 'pass', evidence, reason: `Windows locks after ${inactivity} s of inactivity (machine policy)` };
  }
  if (active === 1 && secure === 1 && timeout !== undefined && timeout > 0) {
    return timeout <= maxIdleSeconds
      ? { status: 'pass', evidence, reason: `a password-protected screen saver starts after ${timeout} s` }
      : { status: 'fail', evidence, reason: `the screen locks after ${timeout} s; the policy allows ${maxIdleSeconds} s` };
  }
  return { status: 'fail', evidence, reason: 'no inactivity lock or password-protected screen saver is set' };
}

export const screenLock: PlatformCheck = {
  collect: async (ctx) => judgeWin32ScreenLock(await readWin32Posture(ctx), ctx.thresholds.maxScreenLockIdleSeconds),
  remediation: {
    guides: [
      {
        label: 'Windows 11',
        when: WINDOWS_11,
        steps: [
          'Open Start > Settings > Personalization > Lock screen and click "Screen saver".',
          'Choose a screen saver, set "Wait" to 5 minutes or less, tick "On resume, display logon screen" and click OK.',
          'Choose "Check again" in Vigil.',
        ],
        deepLink: 'windows-lock-screen',
        needsAdmin: false,
      },
      {
        label: 'Windows 10',
        steps: [
          'Open Start > Settings > Personalization > Lock screen and click "Screen saver settings".',
          'Choose a screen saver, set "Wait" to 5 minutes or less, tick "On resume, display logon screen" and click OK.',
          'Choose "Check again" in Vigil.',
        ],
        deepLink: 'windows-lock-screen',
        needsAdmin: false,
      },
    ],
  },
};
