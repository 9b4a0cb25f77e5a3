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

/**
 * lsblk's device tree, shared by every check of one scan (disks can be plugged in at any time, so it is not
 * static). util-linux before 2.37 rejects the MOUNTPOINTS column, so we ask again without it.
 */
export function readBlockDevices(ctx: Pick<CollectContext, 'facts' | 'run'>): Promise<BlockDevice[]> {
  return ctx.facts.scan('linux.lsblk', async () => {
    const attempt = (cols: readonly string[]) => ctx.run('lsblk', ['-J', '-b', '-o', cols.join(',')]);
    let res = await attempt(LSBLK_COLUMNS);
    if (res.code !== 0 && /unknown column/i.test(res.stderr)) {
      res = await attempt(LSBLK_COLUMNS.filter((c) => c !== 'MOUNTPOINTS'));
    }
    if (res.code !== 0) throw new Error(`lsblk exited ${String(res.code)}: ${res.stderr.trim()}`);
    return parseLsblk(res.stdout);
  });
}

/** The mount table, shared by every check of one scan. */
export function readMounts(ctx: Pick<CollectContext, 'facts' | 'readFile'>): Promise<MountEntry[]> {
  return ctx.facts.scan('linux.mountinfo', async () => parseMountinfo(await ctx.readFile('/proc/self/mountinfo')));
}
