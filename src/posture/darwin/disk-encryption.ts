import type { PlatformCheck } from '../collector.js';
import type { Observation } from '../types.js';
import { VENTURA } from './guides.js';
import { readDarwinPosture } from './probe.js';
import { parseFdesetupStatus } from './text.js';

/** FileVault must be fully on. Encryption still in progress is a fail: part of the disk is still readable. */
export function judgeFileVault(fdesetup: string | null): Observation {
  if (fdesetup === null) return { status: 'unknown', evidence: { fdesetup: null }, reason: 'fdesetup printed nothing' };
  const fv = parseFdesetupStatus(fdesetup);
  const evidence = { state: fv.state, percent: fv.percent, deferred: fv.deferred, fdesetup: fdesetup.trim() };
  switch (fv.state) {
    case 'on':
      return { status: 'pass', evidence, reason: 'FileVault is on' };
    case 'encrypting':
      return {
        status: 'fail',
        evidence,
        reason:
          fv.percent === null
            ? 'FileVault encryption is paused (connect the Mac to power to continue)'
            : `FileVault encryption is in progress (${fv.percent}% done)`,
      };
    case 'decrypting':
      return { status: 'fail', evidence, reason: 'FileVault is being turned off (decryption in progress)' };
    case 'off':
      return {
        status: 'fail',
        evidence,
        reason: fv.deferred ? 'FileVault is off; it will be turned on at the next login' : 'FileVault is off',
      };
    case 'unknown':
      return { status: 'unknown', evidence, reason: 'unrecognised fdesetup output' };
  }
}

export const diskEncryption: PlatformCheck = {
  collect: async (ctx) => judgeFileVault((await readDarwinPosture(ctx)).fdesetupStatus),
  remediation: {
    guides: [
      {
        label: 'macOS 13 Ventura and later',
        when: VENTURA,
        steps: [
          'Connect your Mac to power.',
          'Open Apple menu > System Settings > Privacy & Security.',
          'Scroll down to FileVault and click "Turn On…".',
          'When asked how to unlock, choose the recovery option your IT team asked for, then click Continue.',
          'Keep working: encryption finishes in the background. Then choose "Check again" in Vigil.',
        ],
        deepLink: 'macos-filevault',
        needsAdmin: true,
      },
      {
        label: 'macOS 12 and earlier',
        steps: [
          'Connect your Mac to power.',
          'Open Apple menu > System Preferences > Security & Privacy > FileVault.',
          'Click the lock, enter an administrator password, then click "Turn On FileVault…".',
          'Choose the recovery option your IT team asked for and restart when prompted.',
          'Encryption finishes in the background. Then choose "Check again" in Vigil.',
        ],
        deepLink: 'macos-filevault',
        needsAdmin: true,
      },
    ],
  },
};
