import type { CollectContext, PlatformChecks } from './collector.js';
import type { DeviceContext } from './remediation/types.js';
import type { Platform } from './types.js';
import type { DeviceFacts } from '../protocol/report.js';

export type FactsContext = Pick<CollectContext, 'facts' | 'readFile' | 'run' | 'env'>;

/** What one OS contributes: its collectors and remediation, its device facts, and how to pick instructions. */
export interface PlatformSupport {
  checks: PlatformChecks;
  deviceFacts(ctx: FactsContext): Promise<DeviceFacts>;
  deviceContext(ctx: FactsContext): Promise<DeviceContext>;
  /** Floor for the per-check timeout where one shared probe gathers everything (a cold PowerShell start is slow). */
  minCheckTimeoutMs?: number;
}

/** macOS and Windows guides differ by OS release, which their device facts carry. */
export function contextFromFacts(platform: Platform, deviceFacts: PlatformSupport['deviceFacts']): PlatformSupport['deviceContext'] {
  return async (ctx) => {
    const facts = await deviceFacts(ctx);
    return facts.os.version === null ? { platform } : { platform, osVersion: facts.os.version };
  };
}

// Loaded on demand: the daemon only ever needs its own OS's checks, and each platform's
// modules cost resident memory for as long as the daemon runs.
const LOADERS: Record<Platform, () => Promise<PlatformSupport>> = {
  linux: async () => (await import('./linux/support.js')).linuxSupport,
  darwin: async () => (await import('./darwin/support.js')).darwinSupport,
  win32: async () => (await import('./win32/support.js')).win32Support,
};

export function loadPlatformSupport(platform: Platform): Promise<PlatformSupport> {
  return LOADERS[platform]();
}

export function currentPlatform(): Platform {
  const p = process.platform;
  if (p === 'linux' || p === 'darwin' || p === 'win32') return p;
  throw new Error(`unsupported platform ${p}: Vigil runs on Linux, macOS and Windows`);
}
