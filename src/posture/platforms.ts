import type { CollectContext, PlatformChecks } from './collector.js';
import type { DeviceContext } from './remediation/types.js';
import type { Platform } from './types.js';
import type { DeviceFacts } from '../protocol/report.js';
import { linuxChecks } from './linux/index.js';
import { collectLinuxDeviceFacts, linuxDeviceContext } from './linux/device.js';
import { darwinChecks } from './darwin/index.js';
import { collectDarwinDeviceFacts } from './darwin/device-facts.js';
import { DARWIN_POSTURE_PROBE } from './darwin/probe.js';
import { win32Checks } from './win32/index.js';
import { collectWin32DeviceFacts } from './win32/device-facts.js';
import { WIN32_POSTURE_PROBE } from './win32/probe.js';

export type FactsContext = Pick<CollectContext, 'facts' | 'readFile' | 'run' | 'env'>;

/** What one OS contributes: its collectors and remediation, its device facts, and how to pick instructions. */
export interface PlatformSupport {
  checks: PlatformChecks;
  deviceFacts(ctx: FactsContext): Promise<DeviceFacts>;
  deviceContext(ctx: FactsContext): Promise<DeviceContext>;
  /** Floor for the per-check timeout where one shared probe gathers everything (a cold PowerShell start is slow). */
  minCheckTimeoutMs?: number;
}

const linux: PlatformSupport = {
  checks: linuxChecks,
  deviceFacts: collectLinuxDeviceFacts,
  deviceContext: linuxDeviceContext,
};

/** macOS and Windows guides differ by OS release, which their device facts carry. */
function contextFromFacts(platform: Platform, deviceFacts: PlatformSupport['deviceFacts']): PlatformSupport['deviceContext'] {
  return async (ctx) => {
    const facts = await deviceFacts(ctx);
    return facts.os.version === null ? { platform } : { platform, osVersion: facts.os.version };
  };
}

const darwin: PlatformSupport = {
  checks: darwinChecks,
  deviceFacts: collectDarwinDeviceFacts,
  deviceContext: contextFromFacts('darwin', collectDarwinDeviceFacts),
  minCheckTimeoutMs: DARWIN_POSTURE_PROBE.timeoutMs,
};

const win32: PlatformSupport = {
  checks: win32Checks,
  deviceFacts: collectWin32DeviceFacts,
  deviceContext: contextFromFacts('win32', collectWin32DeviceFacts),
  minCheckTimeoutMs: WIN32_POSTURE_PROBE.timeoutMs,
};

const SUPPORT: Record<Platform, PlatformSupport> = { linux, darwin, win32 };

export function platformSupport(platform: Platform): PlatformSupport {
  return SUPPORT[platform];
}

export function currentPlatform(): Platform {
  const p = process.platform;
  if (p === 'linux' || p === 'darwin' || p === 'win32') return p;
  throw new Error(`unsupported platform ${p}: Vigil runs on Linux, macOS and Windows`);
}
