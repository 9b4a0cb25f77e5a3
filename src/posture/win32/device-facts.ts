import type { CollectContext } from '../collector.js';
import type { DeviceFacts } from '../../protocol/report.js';
import { currentHost, type HostInfo } from '../host.js';
import { readWin32Device, type Win32Device } from './probe.js';

/** OEMs leave placeholders in SMBIOS instead of a serial; they identify nothing. */
const PLACEHOLDER = /^(to be filled by o\.?e\.?m\.?|default string|system serial number|none|0+|)$/i;

function clean(v: string | null | undefined): string | null {
  const t = v?.trim() ?? '';
  return PLACEHOLDER.test(t) ? null : t;
}

export function win32DeviceFactsFrom(device: Win32Device | undefined, host: HostInfo): DeviceFacts {
  const uuid = clean(device?.UUID);
  return {
    hostname: host.hostname,
    platform: 'win32',
    arch: host.arch,
    os: {
      name: device?.Caption?.trim() ?? 'Windows',
      id: 'windows',
      version: device?.Version ?? null,
      kernel: host.kernel,
    },
    hardware: {
      vendor: clean(device?.Manufacturer),
      model: clean(device?.Model),
      serial: clean(device?.SerialNumber),
      // An all-F UUID is SMBIOS for "not set".
      uuid: uuid !== null && /^[F-]+$/i.test(uuid) ? null : uuid,
    },
    user: host.user,
  };
}

/** Device facts from the device probe; a failed probe leaves the hardware fields null rather than failing. */
export async function collectWin32DeviceFacts(ctx: Pick<CollectContext, 'facts' | 'run' | 'env'>, host: HostInfo = currentHost()): Promise<DeviceFacts> {
  const device = await readWin32Device(ctx).catch(() => undefined);
  return win32DeviceFactsFrom(device, host);
}
