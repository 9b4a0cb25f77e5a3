import { z } from 'zod';
import type { CollectContext } from '../collector.js';
import { runProbe, type ProbeSpec } from '../probes.js';

/** What Invoke-Section records when a section throws: the non-localized ErrorCategory and the HRESULT. */
const sectionError = z.object({ category: z.string(), hresult: z.number().nullable() });
export type SectionError = z.infer<typeof sectionError>;

/** A probe section: its value, or null plus the error that stopped it. */
function section<T extends z.ZodType>(value: T) {
  return z.object({ value: value.nullable(), error: sectionError.nullable() });
}

/** PowerShell unrolls one-element pipelines into a scalar and empty ones into null; accept all three shapes. */
function list<T extends z.ZodType>(item: T) {
  return z.preprocess((v) => (v === null || v === undefined ? [] : Array.isArray(v) ? (v as unknown[]) : [v]), z.array(item));
}

/** A section whose value is a pipeline: always a list, empty when the pipeline was empty or the section failed. */
function listSection<T extends z.ZodType>(item: T) {
  return z.object({ value: list(item), error: sectionError.nullable() });
}

/** A registry value as Get-ItemProperty returns it: REG_DWORD as a number, REG_SZ as a string, absent as null. */
const reg = z.union([z.number(), z.string()]).nullable();
const str = z.string().nullable();
const bool = z.boolean().nullable();
const num = z.number().nullable();

const product = z.object({ displayName: str, productState: num, pathToSignedProductExe: str });
const desktop = z.object({ ScreenSaveActive: reg, ScreenSaverIsSecure: reg, ScreenSaveTimeOut: reg });

/** native-scripts/windows/posture.ps1. Field names are the CIM/registry names, so the script reads 1:1. */
export const win32PostureSchema = z.strictObject({
  probeVersion: z.literal(1),
  os: section(
    z.object({
      Caption: str,
      Version: str,
      BuildNumber: str,
      ProductType: num,
      DisplayVersion: reg,
      UBR: reg,
      EditionID: reg,
      InstallationType: reg,
    }),
  ),
  bitlocker: listSection(
      z.object({
        DeviceID: str,
        DriveLetter: str,
        VolumeType: num,
        ProtectionStatus: num,
        ConversionStatus: num,
        EncryptionPercentage: num,
      }),
  ),
  bitlockerShell: listSection(z.object({ DriveLetter: z.string(), BitLockerProtection: num })),
  defender: section(
    z.object({
      AMServiceEnabled: bool,
      AntivirusEnabled: bool,
      RealTimeProtectionEnabled: bool,
      AMRunningMode: str,
      AntivirusSignatureAge: num,
      AntivirusSignatureLastUpdated: str,
      IsTamperProtected: bool,
    }),
  ),
  antivirusProducts: listSection(product),
  firewallProducts: listSection(product),
  firewallProfiles: listSection(z.object({ Name: z.string(), Enabled: z.number() })),
  secureBoot: section(z.object({ UEFISecureBootEnabled: reg, confirmSecureBootUEFI: bool, confirmError: sectionError.nullable() })),
  tpm: section(
    z.object({
      win32Tpm: list(z.object({ IsEnabled_InitialValue: bool, IsActivated_InitialValue: bool, SpecVersion: str })),
      win32TpmError: sectionError.nullable(),
      securityDevices: list(z.object({ DeviceID: str, Status: str })),
    }),
  ),
  screenLock: section(z.object({ machinePolicy: z.object({ InactivityTimeoutSecs: reg }), userPolicy: desktop, user: desktop })),
  windowsUpdate: section(z.object({ policy: z.object({ NoAutoUpdate: reg, AUOptions: reg }), serviceStartMode: str })),
  hotfixes: listSection(z.object({ HotFixID: str, Description: str, InstalledOn: str })),
  uac: section(z.object({ EnableLUA: reg, ConsentPromptBehaviorAdmin: reg, PromptOnSecureDesktop: reg })),
  bootOptions: section(z.string()),
  join: section(z.object({ PartOfDomain: bool, dsregcmd: str })),
  guest: listSection(z.object({ SID: z.string(), Disabled: z.boolean() })),
  processes: listSection(z.string()),
});
export type Win32Posture = z.infer<typeof win32PostureSchema>;

/** native-scripts/windows/device.ps1. */
export const win32DeviceSchema = z.strictObject({
  probeVersion: z.literal(1),
  SerialNumber: str,
  UUID: str,
  Manufacturer: str,
  Model: str,
  Caption: str,
  Version: str,
  BuildNumber: str,
});
export type Win32Device = z.infer<typeof win32DeviceSchema>;

export const WIN32_POSTURE_PROBE: ProbeSpec<typeof win32PostureSchema> = {
  script: 'windows/posture.ps1',
  schema: win32PostureSchema,
  // PowerShell's cold start plus a dozen CIM queries takes several seconds on a busy laptop.
  timeoutMs: 30_000,
};
export const WIN32_DEVICE_PROBE: ProbeSpec<typeof win32DeviceSchema> = {
  script: 'windows/device.ps1',
  schema: win32DeviceSchema,
  timeoutMs: 20_000,
};

type Ctx = Pick<CollectContext, 'facts' | 'run' | 'env'>;

/** The posture probe, run once per scan and shared by every Windows check. */
export function readWin32Posture(ctx: Ctx): Promise<Win32Posture> {
  return ctx.facts.scan('win32.posture', () => runProbe(ctx, WIN32_POSTURE_PROBE));
}

/** Hardware identity never changes while the agent runs. */
export function readWin32Device(ctx: Ctx): Promise<Win32Device> {
  return ctx.facts.static('win32.device', () => runProbe(ctx, WIN32_DEVICE_PROBE));
}

/** True when a section failed because the user is not an administrator. */
export function deniedForNonAdmin(err: SectionError | null | undefined): boolean {
  // 0x80070005 E_ACCESSDENIED, 0x80041003 WBEM_E_ACCESS_DENIED.
  return err?.category === 'PermissionDenied' || err?.hresult === -2147024891 || err?.hresult === -2147217405;
}
