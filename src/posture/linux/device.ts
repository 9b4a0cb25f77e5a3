import { arch, hostname, release, userInfo } from 'node:os';
import type { CollectContext } from '../collector.js';
import type { DeviceContext, Desktop } from '../remediation/types.js';
import type { DeviceFacts } from '../../protocol/report.js';
import { distroFamily, readOsRelease } from './os-release.js';

type DeviceCtx = Pick<CollectContext, 'facts' | 'readFile' | 'run' | 'env'>;

/** Firmware fill-ins that identify nothing; reported as unknown rather than as a model called "Default string". */
const PLACEHOLDERS = new Set(['', 'to be filled by o.e.m.', 'default string', 'system product name', 'system manufacturer', 'not specified', 'none', 'n/a', '0']);

export function cleanDmi(value: string | null): string | null {
  if (value === null) return null;
  const v = value.trim();
  return PLACEHOLDERS.has(v.toLowerCase()) ? null : v;
}

/** The user of a graphical (seat) session from `loginctl list-sessions --no-legend`: SESSION UID USER SEAT ... */
export function parseLoginctlSessions(out: string): string | null {
  for (const line of out.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 4 && /^seat\d+$/.test(f[3] ?? '')) return f[2] ?? null;
  }
  return null;
}

/** "ubuntu:GNOME" -> gnome, "KDE" -> kde; XDG_CURRENT_DESKTOP is a colon-separated list. */
export function desktopFromXdg(value: string | undefined): Desktop | undefined {
  const names = (value ?? '').toLowerCase().split(':');
  if (names.includes('gnome')) return 'gnome';
  if (names.includes('kde')) return 'kde';
  return undefined;
}

async function readOptional(ctx: Pick<CollectContext, 'readFile'>, path: string): Promise<string | null> {
  try {
    return await ctx.readFile(path);
  } catch {
    return null;
  }
}

async function loggedInUser(ctx: DeviceCtx): Promise<string | null> {
  const envUser = ctx.env.USER ?? ctx.env.LOGNAME;
  if (envUser && envUser !== 'root') return envUser;
  try {
    const res = await ctx.run('loginctl', ['list-sessions', '--no-legend']);
    const seatUser = res.code === 0 ? parseLoginctlSessions(res.stdout) : null;
    if (seatUser) return seatUser;
  } catch {
    // No systemd-logind (containers, some minimal distros): fall back to who we run as.
  }
  const self = userInfo().username;
  return self === 'root' ? null : self;
}

/**
 * Hardware identity comes from /sys/class/dmi/id rather than systeminformation: si.system() falls back to
 * running `dmidecode` (root-only, and slow where it does run) and took 34 ms on our 2-core CI VM even without
 * DMI tables, where this is four small sysfs reads. product_serial and product_uuid are 0400 root on most distributions, so
 * they are null without root. Static facts: none of this changes while the agent runs.
 */
export function collectLinuxDeviceFacts(ctx: DeviceCtx): Promise<DeviceFacts> {
  return ctx.facts.static('linux.device-facts', async () => {
    const dmi = (name: string): Promise<string | null> => readOptional(ctx, `/sys/class/dmi/id/${name}`).then(cleanDmi);
    const [rel, vendor, model, serial, uuid, user] = await Promise.all([
      readOsRelease(ctx),
      dmi('sys_vendor'),
      dmi('product_name'),
      dmi('product_serial'),
      dmi('product_uuid'),
      loggedInUser(ctx),
    ]);
    return {
      hostname: hostname(),
      platform: 'linux',
      arch: arch(),
      os: { name: rel.prettyName, id: rel.id, version: rel.versionId ?? null, kernel: release() },
      hardware: { vendor, model, serial, uuid },
      user,
    };
  });
}

/** What remediation content is chosen by: desktop from XDG_CURRENT_DESKTOP, distro family from os-release. */
export async function linuxDeviceContext(ctx: Pick<CollectContext, 'facts' | 'readFile' | 'env'>): Promise<DeviceContext> {
  const rel = await readOsRelease(ctx);
  const out: DeviceContext = { platform: 'linux' };
  const desktop = desktopFromXdg(ctx.env.XDG_CURRENT_DESKTOP);
  if (desktop) out.desktop = desktop;
  const family = distroFamily(rel);
  if (family) out.distroFamily = family;
  if (rel.versionId) out.osVersion = rel.versionId;
  return out;
}
