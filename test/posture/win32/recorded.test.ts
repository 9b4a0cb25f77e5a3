/**
 * The Windows judges on probe outputs composed from recorded real outputs (see recorded.ts and the fixtures
 * README for each source). Sections no recording covers are NOT_RECORDED, and only the judge that reads the
 * recorded sections is asserted.
 */
import { describe, expect, it } from 'vitest';
import { thresholdsSchema } from '../../../src/policy/schema.js';
import { judgeBitLocker } from '../../../src/posture/win32/disk-encryption.js';
import { defenderSignatureAge, judgeWin32Edr } from '../../../src/posture/win32/edr-running.js';
import { judgeWin32Firewall } from '../../../src/posture/win32/firewall.js';
import { judgeTpm } from '../../../src/posture/win32/tpm.js';
import { judgeWindowsPatches } from '../../../src/posture/win32/os-patched.js';
import { judgeWindowsVersion } from '../../../src/posture/win32/os-version.js';
import { decodeProductState } from '../../../src/posture/win32/parse.js';
import {
  composeProbe,
  defenderFrom,
  firewallProfilesFrom,
  formatList,
  hotfixesFromTable,
  osFromVerBanner,
  productsFrom,
  section,
  sectionErrorFromRecord,
  volumeFromBitLockerJson,
  volumeFromBitLockerList,
  volumeFromManageBde,
  volumeFromOsqueryRow,
  volumesFromBitLockerTable,
  win32TpmFrom,
} from './recorded.js';

function one<T>(rows: T[]): T {
  const [row] = rows;
  if (row === undefined || rows.length !== 1) throw new Error(`expected one record, got ${rows.length}`);
  return row;
}
const defender = (name: string) => defenderFrom(one(formatList(section(`defender/${name}.txt`))));
const products = (name: string) => productsFrom(formatList(section(`securitycenter2/${name}.txt`)));

describe('edr-running on recorded Get-MpComputerStatus and SecurityCenter2 outputs', () => {
  it('reads the recorded values with the types the probe sends', () => {
    expect(defender('normal-learn-example')).toEqual({
      AMServiceEnabled: true,
      AntivirusEnabled: true,
      RealTimeProtectionEnabled: true,
      AMRunningMode: 'Normal',
      AntivirusSignatureAge: 1,
      AntivirusSignatureLastUpdated: '2024-06-04T08:06:27.000Z',
      IsTamperProtected: false,
    });
    expect(products('bitdefender-on-defender-off').map((p) => [p.displayName, p.productState])).toEqual([
      ['Bitdefender Antivirus', 266240],
      ['Windows Defender', 393472],
    ]);
  });

  it('decodes the recorded productState values', () => {
    expect(decodeProductState(266240)).toEqual({ state: 'on', upToDate: true, microsoft: false });
    expect(decodeProductState(393472)).toEqual({ state: 'off', upToDate: true, microsoft: true });
    expect(decodeProductState(397568)).toEqual({ state: 'on', upToDate: true, microsoft: true });
  });

  it('passes Defender in Normal mode with day-old signatures (Microsoft Learn example + Windows 10 22H2 SecurityCenter2)', () => {
    const p = composeProbe({ defender: defender('normal-learn-example'), antivirusProducts: products('defender-on-win10-19045'), processes: [] });
    expect(judgeWin32Edr(p, 7)).toMatchObject({ status: 'pass', reason: 'Microsoft Defender Antivirus is on and up to date' });
  });

  it('passes a third-party antivirus while Defender is not running (Bitdefender on, Defender off)', () => {
    const p = composeProbe({ defender: defender('not-running-learn-example'), antivirusProducts: products('bitdefender-on-defender-off'), processes: [] });
    const obs = judgeWin32Edr(p, 7);
    expect(obs).toMatchObject({ status: 'pass', reason: 'active antivirus: Bitdefender Antivirus' });
    // 4294967295 is what Defender reports when it never loaded signatures, not an age.
    expect(obs.evidence).toMatchObject({ defender: { runningMode: 'Not running', realTime: false, signatureAgeDays: null } });
  });

  it('fails stale signatures: 278 days in Normal mode', () => {
    const p = composeProbe({ defender: defender('normal-stale-278-days'), processes: [] });
    expect(judgeWin32Edr(p, 7)).toMatchObject({ status: 'fail', reason: 'Defender signatures are 278 days old (allowed: 7)' });
  });

  it('fails Defender stopped for Kaspersky when SecurityCenter2 was not recorded (Russian locale)', () => {
    const d = defender('not-running-kaspersky-ru');
    // The poster's paste ends before RealTimeProtectionEnabled; the age is 65535 here, 4294967295 elsewhere.
    expect(d).toMatchObject({ AMRunningMode: 'Not running', AMServiceEnabled: false, RealTimeProtectionEnabled: null, AntivirusSignatureAge: 65535 });
    expect(defenderSignatureAge(d.AntivirusSignatureAge)).toBeNull();
    const p = composeProbe({ defender: d, processes: [] });
    expect(p.antivirusProducts).toEqual({ value: [], error: { category: 'NotRecorded', hresult: null } });
    expect(judgeWin32Edr(p, 7)).toMatchObject({ status: 'fail', reason: 'no active antivirus or EDR found' });
  });
});

describe('disk-encryption on recorded BitLocker outputs', () => {
  it('passes a protected OS volume (Get-BitLockerVolume | ConvertTo-Json)', () => {
    const json = JSON.parse(section('bitlocker/protected-os-volume.json')) as Record<string, unknown>;
    const p = composeProbe({ bitlocker: [volumeFromBitLockerJson(json)] });
    expect(judgeBitLocker(p)).toMatchObject({ status: 'pass', reason: 'BitLocker protects C:' });
  });

  it('fails "waiting for activation": fully encrypted, protection off, key in the clear', () => {
    const v = volumeFromBitLockerList(one(formatList(section('bitlocker/waiting-for-activation.txt'))));
    expect(v).toMatchObject({ DriveLetter: 'C:', VolumeType: 0, ProtectionStatus: 0, ConversionStatus: 1, EncryptionPercentage: 100 });
    expect(judgeBitLocker(composeProbe({ bitlocker: [v] }))).toMatchObject({ status: 'fail', reason: 'not protected: C: suspended' });
  });

  it('fails "used space only encrypted" with no key protectors (German decimal comma in manage-bde)', () => {
    const v = volumeFromManageBde(section('bitlocker/used-space-only-no-protectors-de.txt'), 'C:', 0);
    expect(v).toMatchObject({ ProtectionStatus: 0, ConversionStatus: 1, EncryptionPercentage: 100 });
    expect(judgeBitLocker(composeProbe({ bitlocker: [v] })).reason).toBe('not protected: C: suspended');
  });

  it('fails while encryption is in progress, with the percentage', () => {
    const v = volumeFromManageBde(section('bitlocker/encryption-in-progress.txt'), null, null);
    expect(v).toMatchObject({ ProtectionStatus: 0, ConversionStatus: 2, EncryptionPercentage: 50 });
    expect(judgeBitLocker(composeProbe({ bitlocker: [v] }))).toMatchObject({ status: 'fail', reason: 'not protected: ? encrypting 50%' });
  });

  it('fails a decrypted volume whose cached ProtectionStatus still says on (Windows 11 24H2)', () => {
    const v = volumeFromOsqueryRow(section('bitlocker/stale-protection-status-win11-24h2.txt'));
    expect(v).toMatchObject({ DriveLetter: 'C:', ConversionStatus: 0, ProtectionStatus: 1 });
    expect(judgeBitLocker(composeProbe({ bitlocker: [v] }))).toMatchObject({ status: 'fail', reason: 'not protected: C: unencrypted' });
  });
});

describe('disk-encryption on recorded machines with several volumes', () => {
  it('fails five volumes, one encrypting, and names every one that is not protected (Microsoft Learn example)', () => {
    const volumes = volumesFromBitLockerTable(section('bitlocker/five-volumes-learn-example.txt'));
    expect(volumes.map((v) => [v.DriveLetter, v.VolumeType, v.ConversionStatus, v.EncryptionPercentage, v.ProtectionStatus])).toEqual([
      ['D:', 1, 2, 1, 0],
      ['E:', 1, 0, 0, 0],
      ['C:', 0, 0, 0, 0],
      ['F:', 1, 0, 0, 0],
      ['G:', 1, 0, 0, 0],
    ]);
    expect(judgeBitLocker(composeProbe({ bitlocker: volumes }))).toMatchObject({
      status: 'fail',
      reason: 'not protected: D: encrypting 1%, E: unencrypted, C: unencrypted, F: unencrypted, G: unencrypted',
    });
  });

  it('sets the letterless recovery partition aside and judges C: alone', () => {
    const [hidden, c] = volumesFromBitLockerTable(section('bitlocker/letterless-data-volume.txt'));
    expect(hidden).toMatchObject({ DriveLetter: null, VolumeType: 1, ConversionStatus: 0 });
    expect(c).toMatchObject({ DriveLetter: 'C:', VolumeType: 0, ConversionStatus: 0 });
    const obs = judgeBitLocker(composeProbe({ bitlocker: [hidden, c].filter((v) => v !== undefined) }));
    // Before, the hidden volume was named too ("? unencrypted") and failed machines whose C: is protected.
    expect(obs).toMatchObject({ status: 'fail', reason: 'not protected: C: unencrypted', evidence: { hiddenUnencryptedVolumes: ['?'] } });
  });
});

describe('sections a standard user is denied, from recorded error records', () => {
  it('Get-CimInstance access denied is PermissionDenied: BitLocker is requires-admin', () => {
    const error = sectionErrorFromRecord(section('errors/get-ciminstance-access-denied.txt'));
    expect(error).toEqual({ category: 'PermissionDenied', hresult: null });
    const p = composeProbe({}, { bitlocker: error });
    expect(judgeBitLocker(p)).toMatchObject({ status: 'unknown', reason: expect.stringMatching(/^requires-admin: /) as unknown });
  });

  it('Get-MpComputerStatus refused by the CIM server is ResourceUnavailable: edr-running is unknown, not a fail', () => {
    const error = sectionErrorFromRecord(section('errors/get-mpcomputerstatus-access-denied.txt'));
    expect(error).toEqual({ category: 'ResourceUnavailable', hresult: null });
    const p = composeProbe({ processes: [] }, { defender: error });
    expect(judgeWin32Edr(p, 7)).toMatchObject({ status: 'unknown', reason: 'neither Defender nor Windows Security Center could be queried' });
  });
});

describe('firewall, tpm, os-patched, os-version on recorded outputs', () => {
  it('firewall: the profile name is not localized on a French Windows', () => {
    const profiles = firewallProfilesFrom(formatList(section('firewall/domain-profile-fr.txt')));
    expect(profiles).toEqual([{ Name: 'Domain', Enabled: 1 }]);
    // Only the Domain profile was published; a live probe lists all three.
    expect(judgeWin32Firewall(composeProbe({ firewallProfiles: profiles, firewallProducts: [] }))).toMatchObject({
      status: 'pass',
      evidence: { profiles: { Domain: true } },
    });
  });

  it('tpm: Win32_Tpm of a Nuvoton TPM 2.0', () => {
    const win32Tpm = win32TpmFrom(formatList(section('tpm/nuvoton-npct75x-2.0.txt')));
    const p = composeProbe({ tpm: { win32Tpm, win32TpmError: null, securityDevices: [] } });
    expect(judgeTpm(p)).toMatchObject({ status: 'pass', reason: 'TPM 2.0 is on', evidence: { specVersion: '2.0', enabled: true, activated: true } });
  });

  it('os-patched: Get-HotFix of a German Windows 11 22H2, judged on the day it was posted', () => {
    const hotfixes = hotfixesFromTable(section('hotfix/win11-22h2-de.txt'));
    expect(hotfixes.map((h) => h.HotFixID)).toEqual(['KB5026446', 'KB5026549', 'KB5025182', 'KB5012170']);
    const p = composeProbe({ hotfixes });
    expect(judgeWindowsPatches(p, new Date('2023-05-19T00:00:00Z'), 30)).toMatchObject({
      status: 'pass',
      evidence: { lastUpdate: 'KB5026446', installedOn: '2023-05-12T00:00:00.000Z', patchAgeDays: 7 },
    });
    expect(judgeWindowsPatches(p, new Date('2023-07-01T00:00:00Z'), 30)).toMatchObject({ status: 'fail', reason: 'no update installed for 50 days (allowed: 30)' });
  });

  it('os-version: Windows 10 22H2 (build 19045.4046) is below the Windows 11 baseline', () => {
    const os = osFromVerBanner(section('os/ver-win10-19045.txt'));
    const thresholds = thresholdsSchema.parse({ minimumOsVersions: { windows: '10.0.22000' } });
    expect(judgeWindowsVersion(composeProbe({ os }), thresholds)).toMatchObject({
      status: 'fail',
      reason: 'Windows 10.0.19045.4046 is older than the minimum 10.0.22000',
    });
  });
});
