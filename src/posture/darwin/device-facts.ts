import type { CollectContext } from '../collector.js';
import type { DeviceFacts } from '../../protocol/report.js';
import { currentHost, type HostInfo } from '../host.js';
import { readDarwinDevice, type DarwinDevice } from './probe.js';

export function darwinDeviceFactsFrom(device: DarwinDevice | undefined, host: HostInfo): DeviceFacts {
  const hw = device?.hardware?.SPHardwareDataType[0];
  const version = device?.productVersion ?? null;
  return {
    hostname: host.hostname,
    platform: 'darwin',
    arch: host.arch,
    os: { name: version === null ? 'macOS' : `macOS ${version}`, id: 'macos', version, kernel: host.kernel },
    hardware: {
      vendor: 'Apple',
      model: hw?.machine_model ?? hw?.machine_name ?? null,
      serial: hw?.serial_number ?? null,
      uuid: hw?.platform_UUID ?? null,
    },
    user: host.user,
  };
}

/** Device facts from the device probe; a failed probe leaves the hardware fields null rather than failing. */
export async function collectDarwinDeviceFacts(ctx: Pick<CollectContext, 'facts' | 'run' | 'env'>, host: HostInfo = currentHost()): Promise<DeviceFacts> {
  const device = await readDarwinDevice(ctx).catch(() => undefined);
  return darwinDeviceFactsFrom(device, host);
}
