import type { PlatformSupport } from '../platforms.js';
import { linuxChecks } from './index.js';
import { collectLinuxDeviceFacts, linuxDeviceContext } from './device.js';

export const linuxSupport: PlatformSupport = {
  checks: linuxChecks,
  deviceFacts: collectLinuxDeviceFacts,
  deviceContext: linuxDeviceContext,
};
