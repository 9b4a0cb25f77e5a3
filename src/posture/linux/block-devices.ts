import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { CollectContext } from '../collector.js';

/** One node of lsblk's device tree. */
export interface BlockDevice {
  name: string;
  kname: string;
  path: string;
  type: string;
  fstype: string | null;
  /** Every mount point lsblk knows; `[SWAP]` marks active swap. */
  mountpoints: string[];
  children: BlockDevice[];
}

interface RawDevice {
  name: string;
  kname?: string | null | undefined;
  path?: string | null | undefined;
  type?: string | null | undefined;
  fstype?: string | null | undefined;
  mountpoint?: string | null | undefined;
  mountpoints?: (string | null)[] | null | undefined;
  children?: RawDevice[] | undefined;
}

const rawDevice: z.ZodType<RawDevice> = z.lazy(() =>
  z.object({
    name: z.string(),
    kname: z.string().nullish(),
    path: z.string().nullish(),
    type: z.string().nullish(),
    fstype: z.string().nullish(),
    mountpoint: z.string().nullish(),
    mountpoints: z.array(z.string().nullable()).nullish(),
    children: z.array(rawDevice).optional(),
  }),
);
const lsblkSchema = z.object({ blockdevices: z.array(rawDevice) });

function toDevice(raw: RawDevice): BlockDevice {
  // util-linux < 2.37 has only MOUNTPOINT (one value); newer ones add MOUNTPOINTS (all, e.g. btrfs subvolumes).
  const mountpoints = new Set<string>();
  if (raw.mountpoint) mountpoints.add(raw.mountpoint);
  for (const m of raw.mountpoints ?? []) if (m) mountpoints.add(m);
  const kname = raw.kname ?? raw.name;
  return {
    name: raw.name,
    kname,
    // Before util-linux 2.33 there is no PATH column; NAME is then the kernel name under /dev.
    path: raw.path ?? `/dev/${raw.name}`,
    type: raw.type ?? 'unknown',
    fstype: raw.fstype ?? null,
    mountpoints: [...mountpoints],
    children: (raw.children ?? []).map(toDevice),
  };
}

/** Parses `lsblk -J` output (tree form, any subset of columns that includes NAME). */
export function parseLsblk(json: string): BlockDevice[] {
  return lsblkSchema.parse(JSON.parse(json)).blockdevices.map(toDevice);
}

/** A device together with its ancestors, outermost (the disk) first and the device itself last. */
export type DeviceChain = readonly BlockDevice[];

/**
 * Every root-to-node path in the tree. A device with several parents (RAID, multipath) appears once per
 * parent, which is what we want: it is only as protected as its least protected path.
 */
export function deviceChains(roots: readonly BlockDevice[]): DeviceChain[] {
  const out: DeviceChain[] = [];
  const walk = (dev: BlockDevice, above: readonly BlockDevice[]): void => {
    const chain = [...above, dev];
    out.push(chain);
    for (const child of dev.children) walk(child, chain);
  };
  for (const root of roots) walk(root, []);
  return out;
}

function devicePathsOf(dev: BlockDevice): string[] {
  return [dev.path, `/dev/${dev.kname}`, `/dev/${dev.name}`, `/dev/mapper/${dev.name}`];
}

/** The chains ending in the device a mount table or /proc/swaps names (by /dev path, kernel name or mapper name). */
export function chainsForSource(chains: readonly DeviceChain[], source: string): DeviceChain[] {
  return chains.filter((c) => {
    const dev = c[c.length - 1];
    return dev !== undefined && devicePathsOf(dev).includes(source);
  });
}

/** The chains ending in a device lsblk reports mounted at `target`. */
export function chainsForMountpoint(chains: readonly DeviceChain[], target: string): DeviceChain[] {
  return chains.filter((c) => c[c.length - 1]?.mountpoints.includes(target) === true);
}

/** dm-crypt (LUKS or plain) shows as TYPE crypt; a LUKS container whose mapping is open shows FSTYPE crypto_LUKS. */
export function chainIsEncrypted(chain: DeviceChain): boolean {
  return chain.some((d) => d.type === 'crypt' || d.fstype === 'crypto_LUKS');
}

export interface MountEntry {
  target: string;
  source: string;
  fstype: string;
}

/** Undoes the octal escapes the kernel uses for space, tab, newline and backslash in /proc paths. */
export function unescapeProcPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Parses /proc/self/mountinfo (proc(5)): fields up to the "-" separator, then fstype and source. */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(' ');
    const sep = fields.indexOf('-');
    const target = fields[4];
    const fstype = fields[sep + 1];
    const source = fields[sep + 2];
    if (sep < 6 || target === undefined || fstype === undefined || source === undefined) continue;
    out.push({ target: unescapeProcPath(target), source: unescapeProcPath(source), fstype });
  }
  return out;
}

/** The mount visible at `target`: the last one listed, since later mounts stack on top of earlier ones. */
export function mountAt(mounts: readonly MountEntry[], target: string): MountEntry | undefined {
  return mounts.findLast((m) => m.target === target);
}

/** The mount holding `path`: the longest mount target that is a prefix of it. */
export function mountContaining(mounts: readonly MountEntry[], path: string): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const m of mounts) {
    const prefix = m.target.endsWith('/') ? m.target : `${m.target}/`;
    if (m.target !== path && !path.startsWith(prefix)) continue;
    if (!best || m.target.length >= best.target.length) best = m;
  }
  return best;
}

export interface SwapEntry {
  filename: string;
  type: string;
}

/** Parses /proc/swaps: a header line, then filename, type, size, used, priority. */
export function parseProcSwaps(text: string): SwapEntry[] {
  return text
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f): f is [string, string, ...string[]] => f.length >= 2 && f[0] !== '')
    .map(([filename, type]) => ({ filename: unescapeProcPath(filename), type }));
}

const LSBLK_COLUMNS = ['NAME', 'KNAME', 'PATH', 'TYPE', 'FSTYPE', 'MOUNTPOINT', 'MOUNTPOINTS', 'PKNAME'];

/** Names of the device-mapper devices in /proc/partitions ("major minor #blocks name" rows). */
export function dmDevicesOfPartitions(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[3] ?? '')
    .filter((name) => /^dm-\d+$/.test(name));
}

async function readOptional(ctx: Pick<CollectContext, 'readFile'>, path: string): Promise<string> {
  try {
    return await ctx.readFile(path);
  } catch {
    return '';
  }
}

/**
 * Everything lsblk's answer for this check depends on, from a few reads of kernel tables: the disks and
 * partitions with their sizes (/proc/partitions, which also lists device-mapper devices), what each
 * device-mapper device is (its dm uuid starts "CRYPT-" for dm-crypt, "LVM-" for LVM), what is mounted where
 * (mountinfo; every mount gets a new id) and which swap areas are on. The boot id makes a persisted answer
 * die with the boot that produced it.
 */
export async function blockLayoutFingerprint(ctx: Pick<CollectContext, 'facts' | 'readFile'>): Promise<string> {
  const [bootId, partitions, mountinfo, swaps] = await Promise.all([
    // A new boot id needs a reboot, and the agent does not outlive one.
    ctx.facts.static('linux.boot-id', () => readOptional(ctx, '/proc/sys/kernel/random/boot_id')),
    readOptional(ctx, '/proc/partitions'),
    readMountinfoText(ctx).catch(() => ''),
    readSwapsText(ctx).catch(() => ''),
  ]);
  const dmUuids = await Promise.all(
    dmDevicesOfPartitions(partitions).map(async (dm) => `${dm}=${(await readOptional(ctx, `/sys/block/${dm}/dm/uuid`)).trim()}`),
  );
  return createHash('sha256').update([bootId, partitions, dmUuids.join(','), mountinfo, swaps].join('\0')).digest('hex');
}

/**
 * lsblk's device tree. Spawning it costs more than the rest of the check, so its answer is reused, across
 * restarts too, for as long as blockLayoutFingerprint is unchanged: a disk plugged in, a partition table
 * rewritten, a LUKS mapping opened or closed, a mount or a swapon all change it. util-linux before 2.37
 * rejects the MOUNTPOINTS column, so we ask again without it.
 */
export async function readBlockDevices(ctx: Pick<CollectContext, 'facts' | 'run' | 'readFile'>): Promise<BlockDevice[]> {
  const version = await blockLayoutFingerprint(ctx);
  return ctx.facts.persistent('linux.lsblk', version, async () => {
    const attempt = (cols: readonly string[]) => ctx.run('lsblk', ['-J', '-b', '-o', cols.join(',')]);
    let res = await attempt(LSBLK_COLUMNS);
    if (res.code !== 0 && /unknown column/i.test(res.stderr)) {
      res = await attempt(LSBLK_COLUMNS.filter((c) => c !== 'MOUNTPOINTS'));
    }
    if (res.code !== 0) throw new Error(`lsblk exited ${String(res.code)}: ${res.stderr.trim()}`);
    return parseLsblk(res.stdout);
  });
}

/** Raw /proc/self/mountinfo, read once per scan by whichever check needs it first. */
function readMountinfoText(ctx: Pick<CollectContext, 'facts' | 'readFile'>): Promise<string> {
  return ctx.facts.scan('linux.mountinfo-text', () => ctx.readFile('/proc/self/mountinfo'));
}

/** Raw /proc/swaps, shared within a scan; empty when the kernel has no swap support. */
export function readSwapsText(ctx: Pick<CollectContext, 'facts' | 'readFile'>): Promise<string> {
  return ctx.facts.scan('linux.swaps-text', () => ctx.readFile('/proc/swaps'));
}

/** The mount table, shared by every check of one scan. */
export function readMounts(ctx: Pick<CollectContext, 'facts' | 'readFile'>): Promise<MountEntry[]> {
  return ctx.facts.scan('linux.mountinfo', async () => parseMountinfo(await readMountinfoText(ctx)));
}
