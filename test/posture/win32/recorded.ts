/**
 * Builds posture.ps1 sections from recorded real outputs (test/fixtures/win32/sections, sources in the README).
 *
 * The recordings are what people published: mostly Format-List text, some tables, manage-bde text and one
 * Get-BitLockerVolume | ConvertTo-Json. Each function below projects exactly the fields posture.ps1 projects,
 * typed as ConvertTo-Json would type the live CIM value (Boolean -> true/false, UInt32 -> number, empty -> null),
 * so the composed object goes through the same contract validation as a live run.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../helpers.js';
import { parseProbeOutput } from '../../../src/posture/probes.js';
import { WIN32_POSTURE_PROBE, type SectionError, type Win32Posture } from '../../../src/posture/win32/probe.js';

export function section(rel: string): string {
  return readFileSync(join(ROOT, 'test', 'fixtures', 'win32', 'sections', rel), 'utf8');
}

type Row = Readonly<Record<string, string>>;

/** Format-List output: "Name   : value" lines, one record per blank-line-separated block. */
export function formatList(text: string): Row[] {
  const rows: Record<string, string>[] = [];
  let current: Record<string, string> | undefined;
  for (const line of text.split(/\r?\n/)) {
    const m = /^(\S+)\s+: ?(.*)$/.exec(line);
    if (!m?.[1]) {
      current = undefined;
      continue;
    }
    if (!current) rows.push((current = {}));
    current[m[1]] = (m[2] ?? '').trim();
  }
  return rows;
}

/** Format-List prints null and an empty string alike; the CIM properties read here are null when unset. */
function str(v: string | undefined): string | null {
  return v === undefined || v === '' ? null : v;
}
function bool(v: string | undefined): boolean | null {
  return v === 'True' ? true : v === 'False' ? false : null;
}
function int(v: string | undefined): number | null {
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : null;
}

/**
 * ConvertTo-IsoDate of a date Format-List printed in the en-US culture ("6/4/2024 8:06:27 AM"). The text does not
 * show the machine's time zone, so it is read as UTC: the composed value can be off by the zone offset, never more.
 */
function enUsDateAsUtc(v: string | undefined): string | null {
  const m = /^(\d{1,2})\/(\d{1,2})\/(\d{4}) (\d{1,2}):(\d{2}):(\d{2}) (AM|PM)$/.exec(v ?? '');
  if (!m) return null;
  const [, mo, d, y, h, mi, s, ampm] = m;
  const hour = (Number(h) % 12) + (ampm === 'PM' ? 12 : 0);
  return new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d), hour, Number(mi), Number(s))).toISOString();
}

/** `Get-HotFix` InstalledOn as a de-DE table prints it ("12.05.2023 00:00:00"), read as UTC like above. */
function deDateAsUtc(v: string): string | null {
  const m = /^(\d{2})\.(\d{2})\.(\d{4}) (\d{2}):(\d{2}):(\d{2})$/.exec(v);
  if (!m) return null;
  const [, d, mo, y, h, mi, s] = m;
  return new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s))).toISOString();
}

/** $result.defender: the seven Get-MpComputerStatus fields posture.ps1 keeps. A field the source cut off is null. */
export function defenderFrom(r: Row): NonNullable<Win32Posture['defender']['value']> {
  return {
    AMServiceEnabled: bool(r.AMServiceEnabled),
    AntivirusEnabled: bool(r.AntivirusEnabled),
    RealTimeProtectionEnabled: bool(r.RealTimeProtectionEnabled),
    AMRunningMode: str(r.AMRunningMode),
    AntivirusSignatureAge: int(r.AntivirusSignatureAge),
    AntivirusSignatureLastUpdated: enUsDateAsUtc(r.AntivirusSignatureLastUpdated),
    IsTamperProtected: bool(r.IsTamperProtected),
  };
}

/** $result.antivirusProducts / firewallProducts: root\SecurityCenter2 instances. */
export function productsFrom(rows: Row[]): Win32Posture['antivirusProducts']['value'] {
  return rows.map((r) => ({ displayName: str(r.displayName), productState: int(r.productState), pathToSignedProductExe: str(r.pathToSignedProductExe) }));
}

/** GpoBoolean, which posture.ps1 casts with [int]: False 0, True 1, NotConfigured 2. */
const GPO_BOOLEAN: Readonly<Record<string, number>> = { False: 0, True: 1, NotConfigured: 2 };

/** $result.firewallProfiles: Name and [int]Enabled of Get-NetFirewallProfile. */
export function firewallProfilesFrom(rows: Row[]): Win32Posture['firewallProfiles']['value'] {
  return rows.map((r) => ({ Name: r.Name ?? '', Enabled: GPO_BOOLEAN[r.Enabled ?? ''] ?? -1 }));
}

/** $result.tpm.win32Tpm: the three Win32_Tpm fields posture.ps1 keeps. */
export function win32TpmFrom(rows: Row[]): NonNullable<Win32Posture['tpm']['value']>['win32Tpm'] {
  return rows.map((r) => ({
    IsEnabled_InitialValue: bool(r.IsEnabled_InitialValue),
    IsActivated_InitialValue: bool(r.IsActivated_InitialValue),
    SpecVersion: str(r.SpecVersion),
  }));
}

/**
 * $result.hotfixes from a `Get-HotFix | Select-Object HotFixID, InstalledOn` table: posture.ps1's own
 * Sort-Object InstalledOn -Descending | Select-Object -First 5. The table has no Description column: null.
 */
export function hotfixesFromTable(text: string): Win32Posture['hotfixes']['value'] {
  const rows = text
    .split(/\r?\n/)
    .map((l) => /^(KB\d+)\s+(.+?)\s*$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ HotFixID: m[1] ?? null, Description: null, InstalledOn: deDateAsUtc(m[2] ?? '') }))
    .filter((h) => h.InstalledOn !== null);
  return rows.sort((a, b) => (b.InstalledOn ?? '').localeCompare(a.InstalledOn ?? '')).slice(0, 5);
}

/** The `ver` banner cmd.exe prints ("Microsoft Windows [Version 10.0.19045.4046]"): Version, BuildNumber and UBR. */
export function osFromVerBanner(text: string): NonNullable<Win32Posture['os']['value']> {
  const m = /\[Version (\d+\.\d+)\.(\d+)\.(\d+)\]/.exec(text);
  if (!m?.[1] || !m[2] || !m[3]) throw new Error('no version banner');
  return {
    Caption: null,
    Version: `${m[1]}.${m[2]}`,
    BuildNumber: m[2],
    ProductType: null,
    DisplayVersion: null,
    UBR: Number(m[3]),
    EditionID: null,
    InstallationType: null,
  };
}

type Volume = Win32Posture['bitlocker']['value'][number];

/** Get-BitLockerVolume's enums are Win32_EncryptableVolume's values under names (BitLocker module docs). */
const VOLUME_STATUS: Readonly<Record<string, number>> = {
  FullyDecrypted: 0,
  FullyEncrypted: 1,
  EncryptionInProgress: 2,
  DecryptionInProgress: 3,
  EncryptionPaused: 4,
  DecryptionPaused: 5,
};
const PROTECTION_STATUS: Readonly<Record<string, number>> = { Off: 0, On: 1, Unknown: 2 };
const VOLUME_TYPE: Readonly<Record<string, number>> = { OperatingSystem: 0, Data: 1 };

/** A Get-BitLockerVolume Format-List record. DeviceID is not among its properties: null. */
export function volumeFromBitLockerList(r: Row): Volume {
  return {
    DeviceID: null,
    DriveLetter: str(r.MountPoint),
    VolumeType: VOLUME_TYPE[r.VolumeType ?? ''] ?? null,
    ProtectionStatus: PROTECTION_STATUS[r.ProtectionStatus ?? ''] ?? null,
    ConversionStatus: VOLUME_STATUS[r.VolumeStatus ?? ''] ?? null,
    EncryptionPercentage: int(r.EncryptionPercentage),
  };
}

/** `Get-BitLockerVolume | ConvertTo-Json`, which already serializes the enums as their numbers. */
export function volumeFromBitLockerJson(o: Readonly<Record<string, unknown>>): Volume {
  const n = (v: unknown): number | null => (typeof v === 'number' ? v : null);
  return {
    DeviceID: null,
    DriveLetter: typeof o.MountPoint === 'string' ? o.MountPoint : null,
    VolumeType: n(o.VolumeType),
    ProtectionStatus: n(o.ProtectionStatus),
    ConversionStatus: n(o.VolumeStatus),
    EncryptionPercentage: n(o.EncryptionPercentage),
  };
}

/** manage-bde prints GetConversionStatus' states in words; "Used Space Only Encrypted" is FullyEncrypted (1). */
const CONVERSION_WORDS: Readonly<Record<string, number>> = {
  'Fully Decrypted': 0,
  'Fully Encrypted': 1,
  'Used Space Only Encrypted': 1,
  'Encryption in Progress': 2,
  'Decryption in Progress': 3,
  'Encryption Paused': 4,
  'Decryption Paused': 5,
};

/**
 * One volume of `manage-bde -status`. GetConversionStatus without a PrecisionFactor returns a whole percentage,
 * so manage-bde's "50.8%" (or "100,0%" in a German locale) becomes the integer part. The volume letter and type
 * are the caller's: the recorded excerpts do not always show them.
 */
export function volumeFromManageBde(text: string, driveLetter: string | null, volumeType: number | null): Volume {
  const field = (name: string): string | undefined => new RegExp(`^\\s*${name}:\\s*(.+?)\\s*$`, 'm').exec(text)?.[1];
  const percent = /^(\d+)/.exec(field('Percentage Encrypted') ?? '')?.[1];
  const protection = field('Protection Status');
  return {
    DeviceID: null,
    DriveLetter: driveLetter,
    VolumeType: volumeType,
    ProtectionStatus: protection?.startsWith('Protection On') ? 1 : protection?.startsWith('Protection Off') ? 0 : null,
    ConversionStatus: CONVERSION_WORDS[field('Conversion Status') ?? ''] ?? null,
    EncryptionPercentage: percent === undefined ? null : Number(percent),
  };
}

/**
 * Get-BitLockerVolume's default table view. The header spans two lines ("Mount"/"Point", …), so columns are read
 * by position from the dash line: VolumeType, MountPoint, CapacityGB, VolumeStatus, EncryptionPercentage,
 * KeyProtector, AutoUnlockEnabled, ProtectionStatus. The table cuts a volume path to "\\..."; such a volume has no
 * drive letter, which is all Win32_EncryptableVolume would say (its DeviceID is not shown: null).
 */
export function volumesFromBitLockerTable(text: string): Volume[] {
  const lines = text.split(/\r?\n/);
  const dashIndex = lines.findIndex((l) => /^-+(\s+-+)+\s*$/.test(l));
  const dashes = lines[dashIndex];
  if (dashes === undefined) throw new Error('no Get-BitLockerVolume table');
  const starts = [...dashes.matchAll(/-+/g)].map((m) => m.index);
  return lines
    .slice(dashIndex + 1)
    .filter((l) => l.trim() !== '')
    .map((line) => {
      const cell = (i: number): string => line.slice(starts[i] ?? line.length, starts[i + 1] ?? line.length).trim();
      const mount = cell(1);
      return {
        DeviceID: null,
        DriveLetter: /^[A-Z]:$/.test(mount) ? mount : null,
        VolumeType: VOLUME_TYPE[cell(0)] ?? null,
        ProtectionStatus: PROTECTION_STATUS[cell(7)] ?? null,
        ConversionStatus: VOLUME_STATUS[cell(3)] ?? null,
        EncryptionPercentage: int(cell(4)),
      };
    });
}

/**
 * Invoke-Section's error for a recorded PowerShell error record: CategoryInfo's category. posture.ps1 also sends
 * Exception.HResult, which an error record does not print (its "HRESULT 0x…" is the CIM status inside the
 * FullyQualifiedErrorId), so hresult is null.
 */
export function sectionErrorFromRecord(text: string): SectionError {
  const category = /CategoryInfo\s*:\s*(\w+):/.exec(text)?.[1];
  if (!category) throw new Error('no CategoryInfo in the error record');
  return { category, hresult: null };
}

/** A row of osquery's bitlocker_info table, whose columns are the Win32_EncryptableVolume properties. */
export function volumeFromOsqueryRow(text: string): Volume {
  const row = /^\|\s*([A-Z]:)\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|/m.exec(text);
  if (!row?.[1]) throw new Error('no bitlocker_info row');
  return { DeviceID: null, DriveLetter: row[1], VolumeType: 0, ProtectionStatus: Number(row[3]), ConversionStatus: Number(row[2]), EncryptionPercentage: null };
}

/** What a composed probe says for a section no recording covers; judges must not read it as a real answer. */
export const NOT_RECORDED = { value: null, error: { category: 'NotRecorded', hresult: null } } as const;

type Sections = Omit<Win32Posture, 'probeVersion'>;

/**
 * A whole posture.ps1 output: recorded sections wrapped as Invoke-Section wraps them ({value, error: null}), every
 * other section NOT_RECORDED; `failed` sections carry a recorded error instead. It is serialized and parsed back
 * through the probe contract, like a live run.
 */
export function composeProbe(
  recorded: { [K in keyof Sections]?: Sections[K]['value'] },
  failed: { [K in keyof Sections]?: SectionError } = {},
): Win32Posture {
  const keys = Object.keys(WIN32_POSTURE_PROBE.schema.shape).filter((k) => k !== 'probeVersion');
  const out: Record<string, unknown> = { probeVersion: 1 };
  const given: Readonly<Record<string, unknown>> = recorded;
  const errors: Readonly<Record<string, SectionError | undefined>> = failed;
  for (const k of keys) {
    const error = errors[k];
    // A failed section is what Invoke-Section's catch returns: no value, the error.
    out[k] = error ? { value: null, error } : Object.hasOwn(given, k) ? { value: given[k], error: null } : NOT_RECORDED;
  }
  return parseProbeOutput(WIN32_POSTURE_PROBE, JSON.stringify(out));
}
