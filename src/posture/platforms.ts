import { arch, hostname, release, userInfo } from 'node:os';
import type { CollectContext, PlatformChecks } from './collector.js';
import type { DeviceContext } from './remediation/types.js';
import type { Platform } from './types.js';
import type { DeviceFacts } from '../protocol/report.js';
import { linuxChecks } from './linux/index.js';
import { distroFamily, readOsRelease } from './linux/os-release.js';

export type FactsContext = Pick<CollectContext, 'facts' | 'readFile' | 'run' | 'env'>;

/** What one OS contributes: its collectors and remediation, its device facts, and how to pick instructions. */
export interface PlatformSupport {
  checks: PlatformChecks;
  deviceFacts(ctx: FactsContext): Promise<DeviceFacts>;
  deviceContext(ctx: FactsContext): Promise<DeviceContext>;
}

function currentUser(env: NodeJS.ProcessEnv): string | null {
  try {
    return userInfo().username;
  } catch {
    return env.USER ?? env.USERNAME ?? null;
  }
}

function desktopOf(env: NodeJS.ProcessEnv): DeviceContext['desktop'] {
  const d = `${env.XDG_CURRENT_DESKTOP ?? ''}:${env.DESKTOP_SESSION ?? ''}`.toLowerCase();
  if (d.includes('gnome') || d.includes('unity') || d.includes('ubuntu')) return 'gnome';
  if (d.includes('kde') || d.includes('plasma')) return 'kde';
  return undefined;
}

const linux: PlatformSupport = {
  checks: linuxChecks,
  async deviceFacts(ctx) {
    const rel = await readOsRelease(ctx);
    const dmi = (name: string): Promise<string | null> =>
      ctx.facts.static(`linux.dmi.${name}`, () => ctx.readFile(`/sys/class/dmi/id/${name}`).then((s) => s.trim() || null, () => null));
    const [vendor, model, serial, uuid] = await Promise.all([dmi('sys_vendor'), dmi('product_name'), dmi('product_serial'), dmi('product_uuid')]);
    return {
      hostname: hostname(),
      platform: 'linux',
      arch: arch(),
      os: { name: rel.prettyName, id: rel.id, version: rel.versionId ?? null, kernel: release() },
      hardware: { vendor, model, serial, uuid },
      user: currentUser(ctx.env),
    };
  },
  async deviceContext(ctx) {
    const rel = await readOsRelease(ctx);
    const context: DeviceContext = { platform: 'linux' };
    const desktop = desktopOf(ctx.env);
    if (desktop) context.desktop = desktop;
    const family = distroFamily(rel);
    if (family) context.distroFamily = family;
    if (rel.versionId) context.osVersion = rel.versionId;
    return context;
  },
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
