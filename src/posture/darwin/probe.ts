import { z } from 'zod';
import type { CollectContext } from '../collector.js';
import { runProbe, type ProbeSpec } from '../probes.js';

const text = z.string().nullable();

/** native-scripts/macos/posture.sh: everything a scan needs, in one process. Plist fields hold XML plist text. */
export const darwinPostureSchema = z.strictObject({
  probeVersion: z.literal(1),
  productVersion: text,
  buildVersion: text,
  fdesetupStatus: text,
  firewallGlobalState: text,
  firewallStealthMode: text,
  firewallManaged: text,
  spctlStatus: text,
  csrutilStatus: text,
  screenLockStatus: text,
  screensaverByHost: text,
  screensaverManaged: text,
  screensaverManagedUser: text,
  softwareUpdate: text,
  softwareUpdateManaged: text,
  xprotect: text,
  xprotectProtected: text,
  xprotectRemediator: text,
  mrt: text,
  processes: text,
  profilesEnrollment: text,
  sshdLaunchd: text,
  tcpListeners: text,
  loginwindow: text,
  loginwindowManaged: text,
});
export type DarwinPosture = z.infer<typeof darwinPostureSchema>;

/** native-scripts/macos/updates.sh: `softwareupdate --list`, slow because it asks Apple's catalog. */
export const darwinUpdatesSchema = z.strictObject({
  probeVersion: z.literal(1),
  exitCode: z.number().int().nullable(),
  stdout: text,
  stderr: text,
});
export type DarwinUpdates = z.infer<typeof darwinUpdatesSchema>;

/** native-scripts/macos/device.sh: `system_profiler -json SPHardwareDataType` plus sw_vers. */
export const darwinDeviceSchema = z.strictObject({
  probeVersion: z.literal(1),
  productVersion: text,
  buildVersion: text,
  hardware: z
    .object({
      SPHardwareDataType: z.array(
        z.looseObject({
          machine_model: z.string().optional(),
          machine_name: z.string().optional(),
          serial_number: z.string().optional(),
          platform_UUID: z.string().optional(),
        }),
      ),
    })
    .nullable(),
});
export type DarwinDevice = z.infer<typeof darwinDeviceSchema>;

export const DARWIN_POSTURE_PROBE: ProbeSpec<typeof darwinPostureSchema> = {
  script: 'macos/posture.sh',
  schema: darwinPostureSchema,
  timeoutMs: 15_000,
};
export const DARWIN_UPDATES_PROBE: ProbeSpec<typeof darwinUpdatesSchema> = {
  script: 'macos/updates.sh',
  schema: darwinUpdatesSchema,
  timeoutMs: 180_000,
};
export const DARWIN_DEVICE_PROBE: ProbeSpec<typeof darwinDeviceSchema> = {
  script: 'macos/device.sh',
  schema: darwinDeviceSchema,
  timeoutMs: 20_000,
};

type Ctx = Pick<CollectContext, 'facts' | 'run' | 'env'>;

/** The posture probe, run once per scan and shared by every macOS check. */
export function readDarwinPosture(ctx: Ctx): Promise<DarwinPosture> {
  return ctx.facts.scan('darwin.posture', () => runProbe(ctx, DARWIN_POSTURE_PROBE));
}

/** Pending updates change at most daily and take long to list: a static fact. */
export function readDarwinUpdates(ctx: Ctx): Promise<DarwinUpdates> {
  return ctx.facts.static('darwin.updates', () => runProbe(ctx, DARWIN_UPDATES_PROBE));
}

/** Hardware identity never changes while the agent runs. */
export function readDarwinDevice(ctx: Ctx): Promise<DarwinDevice> {
  return ctx.facts.static('darwin.device', () => runProbe(ctx, DARWIN_DEVICE_PROBE));
}
