import type { CollectContext, PlatformChecks } from './collector.js';
import type { DeviceContext } from './remediation/types.js';
import type { Platform } from './types.js';
import type { DeviceFacts } from '../protocol/report.js';
import { linuxChecks } from './linux/index.js';
import { collectLinuxDeviceFacts, linuxDeviceContext } from './linux/device.js';

export type FactsContext = Pick<CollectContext, 'facts' | 'readFile' | 'run' | 'env'>;

/** What one OS contributes: its collectors and remediation, its device facts, and how to pick instructions. */
export interface PlatformSupport {
  checks: PlatformChecks;
  deviceFacts(ctx: FactsContext): Promise<DeviceFacts>;
  deviceContext(ctx: FactsContext): Promise<DeviceContext>;
}

const linux: PlatformSupport = {
  checks: linuxChecks,
  deviceFacts: collectLinuxDeviceFacts,
  deviceContext: linuxDeviceContext,
};

const SUPPORT: Partial<Record<Platform, PlatformSupport>> = { linux };

export function platformSupport(platform: Platform): PlatformSupport {
  const support = SUPPORT[platform];
  if (!support) throw new Error(`Vigil has no posture collectors for ${platform} yet`);
  return support;
}

export function currentPlatform(): Platform {
  const p = process.platform;
  if (p === 'linux' || p === 'darwin' || p === 'win32') return p;
  throw new Error(`unsupported platform ${p}: Vigil runs on Linux, macOS and Windows`);
}
