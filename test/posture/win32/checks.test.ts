import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../../helpers.js';
import { thresholdsSchema } from '../../../src/policy/schema.js';
import { parseProbeOutput } from '../../../src/posture/probes.js';
import { WIN32_POSTURE_PROBE, type Win32Posture } from '../../../src/posture/win32/probe.js';
import { cimVolumeState, judgeBitLocker, shellVolumeState } from '../../../src/posture/win32/disk-encryption.js';
import { judgeWin32Edr } from '../../../src/posture/win32/edr-running.js';
import { judgeWin32Firewall } from '../../../src/posture/win32/firewall.js';
import { judgeWin32SecureBoot } from '../../../src/posture/win32/secure-boot.js';
import { judgeTpm } from '../../../src/posture/win32/tpm.js';
import { judgeUac } from '../../../src/posture/win32/uac.js';
import { judgeBootFlags, parseBootFlags } from '../../../src/posture/win32/not-rooted.js';
import { judgeWindowsVersion } from '../../../src/posture/win32/os-version.js';
import { judgeWindowsPatches } from '../../../src/posture/win32/os-patched.js';
import { judgeWin32ScreenLock } from '../../../src/posture/win32/screen-lock.js';
import { judgeWin32AutoUpdates } from '../../../src/posture/win32/auto-updates.js';
import { judgeWin32Guest } from '../../../src/posture/win32/guest-account.js';
import { judgeWin32Join } from '../../../src/posture/win32/mdm-enrolled.js';
import { decodeProductState, parseDsregcmd, parsePsDate, windowsVersion } from '../../../src/posture/win32/parse.js';
import { win32DeviceFactsFrom } from '../../../src/posture/win32/device-facts.js';

function text(rel: string): string {
  return readFileSync(join(ROOT, 'test', 'fixtures', 'win32', rel), 'utf8');
}
/** Goes through the same contract validation as a live probe run. */
function probe(name: string): Win32Posture {
  return parseProbeOutput(WIN32_POSTURE_PROBE, text(`probe/${name}.json`));
}

const compliant = probe('win11-admin-compliant');
const win10 = probe('win10-bitlocker-suspended-unsafe');
const twoVolumes = probe('win11-two-volumes-one-unencrypted');
const encrypting = probe('win11-encryption-in-progress');
const thirdParty = probe('win11-thirdparty-av-defender-passive');
const germanUser = probe('win11-de-standard-user');
const thresholds = thresholdsSchema.parse({ minimumOsVersions: { windows: '10.0.22000' } });

describe('the probe contract', () => {
  it('accepts PowerShell-unrolled scalars as one-element lists', () => {
    expect(germanUser.bitlockerShell.value).toEqual([{ DriveLetter: 'C:', BitLockerProtection: 1 }]);
    expect(germanUser.processes.value).toEqual(['MsMpEng']);
    expect(compliant.firewallProducts.value).toEqual([]);
  });

  it('rejects output that breaks the contract', () => {
    expect(() => parseProbeOutput(WIN32_POSTURE_PROBE, JSON.stringify({ ...compliant, extra: 1 }))).toThrow(/contract/);
    expect(() => parseProbeOutput(WIN32_POSTURE_PROBE, 'Get-CimInstance : Access denied')).toThrow(/not JSON/);
  });
});

describe('disk-encryption (BitLocker)', () => {
  it('maps CIM and Shell states', () => {
    expect(cimVolumeState({ ProtectionStatus: 0, ConversionStatus: 1 })).toBe('suspended');
    expect(cimVolumeState({ ProtectionStatus: 0, ConversionStatus: 4 })).toBe('encrypting');
    expect(shellVolumeState(6)).toBe('protected');
    expect(shellVolumeState(null)).toBe('unknown');
  });

  it('passes a protected system volume', () => {
    expect(judgeBitLocker(compliant)).toMatchObject({ status: 'pass', evidence: { source: 'Win32_EncryptableVolume' } });
  });

  it('fails a suspended volume', () => {
    expect(judgeBitLocker(win10)).toMatchObject({ status: 'fail', reason: 'not protected: C: suspended' });
  });

  it('fails when one of two fixed volumes is unencrypted, ignoring removable ones', () => {
    const obs = judgeBitLocker(twoVolumes);
    expect(obs).toMatchObject({ status: 'fail', reason: 'not protected: D: unencrypted' });
    expect(JSON.stringify(obs.evidence)).not.toContain('E:');
  });

  it('fails while encryption is still in progress, with the percentage', () => {
    expect(judgeBitLocker(encrypting).reason).toBe('not protected: C: encrypting 37%');
  });

  it('falls back to the Shell property for a standard user', () => {
    expect(judgeBitLocker(germanUser)).toMatchObject({ status: 'pass', evidence: { source: 'Shell System.Volume.BitLockerProtection' } });
    const nothing: Win32Posture = { ...germanUser, bitlockerShell: { value: [], error: { category: 'NotSpecified', hresult: null } } };
    expect(judgeBitLocker(nothing).reason).toMatch(/^requires-admin: /);
  });
});

describe('edr-running', () => {
  it('decodes SecurityCenter2 productState', () => {
    expect(decodeProductState(397568)).toEqual({ state: 'on', upToDate: true, microsoft: true });
    expect(decodeProductState(393472)).toEqual({ state: 'off', upToDate: true, microsoft: true });
    expect(decodeProductState(266240)).toEqual({ state: 'on', upToDate: true, microsoft: false });
    expect(decodeProductState(397584).upToDate).toBe(false);
    expect(decodeProductState(401664).state).toBe('snoozed');
  });

  it('passes active Defender with fresh signatures', () => {
    expect(judgeWin32Edr(compliant, 7).status).toBe('pass');
  });

  it('passes a third-party antivirus while Defender is passive', () => {
    expect(judgeWin32Edr(thirdParty, 7)).toMatchObject({ status: 'pass', reason: 'active antivirus: Sophos Anti-Virus' });
  });

  it('fails passive Defender with nothing else active', () => {
    const alone: Win32Posture = { ...thirdParty, antivirusProducts: { value: [{ displayName: 'Windows Defender', productState: 393472, pathToSignedProductExe: null }], error: null }, processes: { value: [], error: null } };
    expect(judgeWin32Edr(alone, 7)).toMatchObject({ status: 'fail', reason: 'antivirus turned off or out of date: Windows Defender' });
  });

  it('fails stale Defender signatures', () => {
    const stale: Win32Posture = { ...compliant, processes: { value: [], error: null } };
    const d = stale.defender.value;
    if (d) stale.defender = { value: { ...d, AntivirusSignatureAge: 30 }, error: null };
    expect(judgeWin32Edr(stale, 7).reason).toContain('30 days old');
  });
});

describe('firewall, secure-boot, tpm, uac, not-rooted', () => {
  it('firewall: all profiles on, or a third-party firewall', () => {
    expect(judgeWin32Firewall(compliant).status).toBe('pass');
    expect(judgeWin32Firewall(win10)).toMatchObject({ status: 'fail', reason: 'Windows Firewall is off for: Public' });
    expect(judgeWin32Firewall(thirdParty)).toMatchObject({ status: 'pass', reason: 'firewall: Sophos Firewall' });
  });

  it('secure-boot: the registry answers when Confirm-SecureBootUEFI is denied', () => {
    expect(judgeWin32SecureBoot(compliant).status).toBe('pass');
    expect(judgeWin32SecureBoot(win10).status).toBe('fail');
    expect(judgeWin32SecureBoot(germanUser)).toMatchObject({ status: 'pass', evidence: { confirmError: 'PermissionDenied', UEFISecureBootEnabled: 1 } });
    const blind: Win32Posture = { ...germanUser, secureBoot: { value: { UEFISecureBootEnabled: null, confirmSecureBootUEFI: null, confirmError: { category: 'PermissionDenied', hresult: -2147024891 } }, error: null } };
    expect(judgeWin32SecureBoot(blind).reason).toMatch(/^requires-admin: /);
  });

  it('tpm: Win32_Tpm for admins, the ACPI id for everyone else', () => {
    expect(judgeTpm(compliant)).toMatchObject({ status: 'pass', evidence: { source: 'Win32_Tpm', specVersion: '2.0' } });
    expect(judgeTpm(germanUser)).toMatchObject({ status: 'pass', evidence: { source: 'Win32_PnPEntity' } });
    expect(judgeTpm(win10)).toMatchObject({ status: 'fail', reason: 'only a TPM 1.2 is present' });
  });

  it('uac', () => {
    expect(judgeUac(compliant).status).toBe('pass');
    expect(judgeUac(win10)).toMatchObject({ status: 'fail', reason: 'User Account Control is off' });
  });

  it('not-rooted: test-signing and kernel debugging from SystemStartOptions', () => {
    expect(parseBootFlags(' NOEXECUTE=OPTIN  NODEBUG')).toEqual([]);
    expect(judgeBootFlags(compliant).status).toBe('pass');
    expect(judgeBootFlags(win10)).toMatchObject({ status: 'fail', evidence: { unsafeFlags: ['TESTSIGNING', 'DEBUG', 'DEBUGPORT=COM1'] } });
  });
});

describe('os-version, os-patched, auto-updates', () => {
  it('compares build and UBR with the Windows 11 baseline', () => {
    expect(windowsVersion('10.0.22631', 4460)).toBe('10.0.22631.4460');
    expect(judgeWindowsVersion(compliant, thresholds).status).toBe('pass');
    expect(judgeWindowsVersion(win10, thresholds)).toMatchObject({ status: 'fail', reason: 'Microsoft Windows 10 Pro 10.0.19045.5131 is older than the minimum 10.0.22000' });
  });

  it('measures patch age from the newest hotfix, in both date forms', () => {
    expect(parsePsDate('/Date(1697241600000)/')?.toISOString()).toBe('2023-10-14T00:00:00.000Z');
    const now = new Date('2024-11-30T00:00:00Z');
    expect(judgeWindowsPatches(compliant, now, 30)).toMatchObject({ status: 'pass', evidence: { lastUpdate: 'KB5046633', patchAgeDays: 17 } });
    expect(judgeWindowsPatches(win10, now, 30).status).toBe('fail');
    expect(judgeWindowsPatches({ hotfixes: { value: [], error: null } }, now, 30).status).toBe('unknown');
  });

  it('auto-updates: policies that stop installs fail', () => {
    expect(judgeWin32AutoUpdates(compliant).status).toBe('pass');
    expect(judgeWin32AutoUpdates(win10)).toMatchObject({ status: 'fail', reason: 'a policy turns automatic updates off' });
  });
});

describe('screen-lock, guest-account, mdm-enrolled', () => {
  it('screen-lock: machine inactivity limit or a secure screen saver within the policy', () => {
    expect(judgeWin32ScreenLock(compliant, 900)).toMatchObject({ status: 'pass', reason: 'Windows locks after 900 s of inactivity (machine policy)' });
    expect(judgeWin32ScreenLock(compliant, 300)).toMatchObject({ status: 'pass', reason: 'a password-protected screen saver starts after 300 s' });
    expect(judgeWin32ScreenLock(win10, 300).status).toBe('fail');
  });

  it('guest-account by RID, whatever its localized name', () => {
    expect(judgeWin32Guest(germanUser).status).toBe('pass');
    expect(judgeWin32Guest(win10).status).toBe('fail');
  });

  it('parses dsregcmd by key and judges join state', () => {
    expect(parseDsregcmd(text('dsregcmd/hybrid-joined.txt'))).toMatchObject({ AzureAdJoined: 'YES', EnterpriseJoined: 'NO', DomainJoined: 'YES', DomainName: 'HYBRIDADFS' });
    expect(judgeWin32Join(compliant)).toMatchObject({ status: 'pass', reason: 'managed: AzureAdJoined, DomainJoined' });
    expect(judgeWin32Join(germanUser)).toMatchObject({ status: 'pass', reason: 'managed: AzureAdJoined' });
    expect(judgeWin32Join(win10).status).toBe('fail');
  });
});

describe('device facts', () => {
  it('maps CIM values and drops OEM placeholders', () => {
    const host = { hostname: 'PC-1', arch: 'x64', kernel: '10.0.22631', user: 'jdoe' };
    const facts = win32DeviceFactsFrom(
      { probeVersion: 1, SerialNumber: 'PF3ABCDE', UUID: '4C4C4544-0042-3510-8052-B4C04F4B4E32', Manufacturer: 'LENOVO', Model: '21HD0040GE', Caption: 'Microsoft Windows 11 Pro', Version: '10.0.22631', BuildNumber: '22631' },
      host,
    );
    expect(facts.hardware).toEqual({ vendor: 'LENOVO', model: '21HD0040GE', serial: 'PF3ABCDE', uuid: '4C4C4544-0042-3510-8052-B4C04F4B4E32' });
    expect(facts.os).toEqual({ name: 'Microsoft Windows 11 Pro', id: 'windows', version: '10.0.22631', kernel: '10.0.22631' });
    const placeholders = win32DeviceFactsFrom(
      { probeVersion: 1, SerialNumber: 'To be filled by O.E.M.', UUID: 'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF', Manufacturer: 'System manufacturer', Model: 'System Product Name', Caption: null, Version: null, BuildNumber: null },
      host,
    );
    expect(placeholders.hardware.serial).toBeNull();
    expect(placeholders.hardware.uuid).toBeNull();
  });
});
