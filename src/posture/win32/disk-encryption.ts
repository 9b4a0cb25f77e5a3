import type { PlatformCheck } from '../collector.js';
import type { JsonValue, Observation } from '../types.js';
import { WINDOWS_11 } from './guides.js';
import { deniedForNonAdmin, readWin32Posture, type Win32Posture } from './probe.js';

type VolumeState = 'protected' | 'suspended' | 'encrypting' | 'decrypting' | 'unencrypted' | 'unknown';

/**
 * Win32_EncryptableVolume: ProtectionStatus 0 off, 1 on, 2 unknown (locked); ConversionStatus 0-5 (see docs).
 * ConversionStatus decides first: the ProtectionStatus property is cached and has been seen reporting 1 on a
 * fully decrypted volume (Windows 11 24H2, osquery/osquery#8931), so "on" only counts on an encrypted volume.
 */
export function cimVolumeState(v: { ProtectionStatus: number | null; ConversionStatus: number | null }): VolumeState {
  // A locked volume cannot be read at all, so it is encrypted.
  if (v.ProtectionStatus === 2) return 'protected';
  switch (v.ConversionStatus) {
    case 0:
      return 'unencrypted';
    case 1:
      return v.ProtectionStatus === 1 ? 'protected' : 'suspended';
    case 2:
    case 4:
      return 'encrypting';
    case 3:
    case 5:
      return 'decrypting';
    default:
      return v.ProtectionStatus === 1 ? 'protected' : 'unknown';
  }
}

/**
 * The Shell's System.Volume.BitLockerProtection, which Explorer uses for its padlock icons. Microsoft does not
 * document the values; this is the mapping used by the Explorer verbs and community scripts: 1 on, 2 off,
 * 3 encrypting, 4 decrypting, 5 suspended, 6 on and locked, 8 waiting for activation (the key is still clear).
 */
export function shellVolumeState(v: number | null): VolumeState {
  switch (v) {
    case 1:
    case 6:
      return 'protected';
    case 2:
      return 'unencrypted';
    case 3:
      return 'encrypting';
    case 4:
      return 'decrypting';
    case 5:
    case 8:
      return 'suspended';
    default:
      return 'unknown';
  }
}

/** OS (0) and fixed data (1) volumes; removable drives (2) are out of scope. */
const FIXED_VOLUME_TYPES = new Set([0, 1]);

/**
 * Win32_EncryptableVolume also lists the hidden recovery partition: no drive letter, type Data, fully decrypted
 * (recorded: a 0.49 GB letterless Data volume beside C:, test/fixtures/win32/sections/bitlocker). Windows keeps
 * it in the clear because WinRE boots from it, so it would fail every encrypted machine. Only a letterless volume
 * BitLocker never touched is set aside; one that is encrypting or suspended is still judged.
 */
function isClearHiddenVolume(v: { DriveLetter: string | null; ConversionStatus: number | null }): boolean {
  return v.DriveLetter === null && v.ConversionStatus === 0;
}

/** Every fixed volume must be encrypted with protection on; a suspended one is a fail (its key sits in the clear). */
export function judgeBitLocker(p: Pick<Win32Posture, 'bitlocker' | 'bitlockerShell'>): Observation {
  let volumes: { volume: string; state: VolumeState; percent: number | null }[] | undefined;
  let source = 'Win32_EncryptableVolume';
  let hiddenClear: string[] = [];
  if (p.bitlocker.error === null && p.bitlocker.value.length > 0) {
    const fixed = p.bitlocker.value.filter((v) => v.VolumeType === null || FIXED_VOLUME_TYPES.has(v.VolumeType));
    hiddenClear = fixed.filter(isClearHiddenVolume).map((v) => v.DeviceID ?? '?');
    volumes = fixed
      .filter((v) => !isClearHiddenVolume(v))
      .map((v) => ({ volume: v.DriveLetter ?? v.DeviceID ?? '?', state: cimVolumeState(v), percent: v.EncryptionPercentage }));
  } else if (p.bitlockerShell.value.length > 0) {
    source = 'Shell System.Volume.BitLockerProtection';
    volumes = p.bitlockerShell.value.map((v) => ({ volume: v.DriveLetter, state: shellVolumeState(v.BitLockerProtection), percent: null }));
  }
  if (!volumes || volumes.length === 0) {
    const evidence = { source: null, cimError: p.bitlocker.error?.category ?? null };
    return deniedForNonAdmin(p.bitlocker.error)
      ? { status: 'unknown', evidence, reason: 'requires-admin: BitLocker status needs administrator rights and the Shell did not report it' }
      : { status: 'unknown', evidence, reason: 'no fixed volumes reported a BitLocker status' };
  }
  const evidence = {
    source,
    volumes: volumes.map((v): JsonValue => ({ volume: v.volume, state: v.state, percent: v.percent })),
    // Named so a reviewer can see what was set aside; absent when nothing was.
    ...(hiddenClear.length > 0 ? { hiddenUnencryptedVolumes: hiddenClear } : {}),
  };
  const bad = volumes.filter((v) => v.state !== 'protected');
  if (bad.length === 0) return { status: 'pass', evidence, reason: `BitLocker protects ${volumes.map((v) => v.volume).join(', ')}` };
  const unknownOnly = bad.every((v) => v.state === 'unknown');
  const describe = bad.map((v) => `${v.volume} ${v.state}${v.percent !== null && v.state === 'encrypting' ? ` ${v.percent}%` : ''}`);
  return unknownOnly
    ? { status: 'unknown', evidence, reason: `BitLocker state unclear for ${describe.join(', ')}` }
    : { status: 'fail', evidence, reason: `not protected: ${describe.join(', ')}` };
}

export const diskEncryption: PlatformCheck = {
  collect: async (ctx) => judgeBitLocker(await readWin32Posture(ctx)),
  remediation: {
    guides: [
      {
        label: 'Windows 11',
        when: WINDOWS_11,
        steps: [
          'Open Start > Settings > Privacy & security > Device encryption (Windows Home) and turn it on; on Windows Pro or Enterprise, open Control Panel > BitLocker Drive Encryption instead.',
          'If a drive shows "BitLocker suspended", click "Resume protection".',
          'Otherwise click "Turn on BitLocker" for every drive and save the recovery key where IT asked you to.',
          'Keep the PC on power until encryption finishes, then choose "Check again" in Vigil.',
        ],
        deepLink: 'windows-bitlocker',
        needsAdmin: true,
      },
      {
        label: 'Windows 10',
        steps: [
          'Open Control Panel > System and Security > BitLocker Drive Encryption (Windows Home: Settings > Update & Security > Device encryption).',
          'If a drive shows "BitLocker suspended", click "Resume protection".',
          'Otherwise click "Turn on BitLocker" for every drive and save the recovery key where IT asked you to.',
          'Keep the PC on power until encryption finishes, then choose "Check again" in Vigil.',
        ],
        deepLink: 'windows-bitlocker',
        needsAdmin: true,
      },
    ],
  },
};
