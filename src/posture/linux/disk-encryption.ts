import type { PlatformCheck } from '../collector.js';
import { CommandNotFoundError } from '../exec.js';
import type { Evidence, JsonValue, Observation } from '../types.js';
import {
  chainIsEncrypted,
  chainsForMountpoint,
  chainsForSource,
  deviceChains,
  mountAt,
  mountContaining,
  parseProcSwaps,
  readBlockDevices,
  readMounts,
  readSwapsText,
  type BlockDevice,
  type DeviceChain,
  type MountEntry,
  type SwapEntry,
} from './block-devices.js';

export interface DiskLayout {
  devices: readonly BlockDevice[];
  mounts: readonly MountEntry[];
  swaps: readonly SwapEntry[];
}

interface Finding {
  evidence: { [key: string]: JsonValue };
  /** null: we could not tell. */
  encrypted: boolean | null;
  problem?: string;
}

function chainNames(chain: DeviceChain): string[] {
  return chain.map((d) => d.name);
}

function judgeChains(chains: readonly DeviceChain[]): boolean | null {
  if (chains.length === 0) return null;
  return chains.every(chainIsEncrypted);
}

function assessMount(all: readonly DeviceChain[], mount: MountEntry): Finding {
  const evidence: Finding['evidence'] = { target: mount.target, source: mount.source, fstype: mount.fstype };
  if (!mount.source.startsWith('/dev/')) {
    return {
      evidence: { ...evidence, chain: null, encrypted: null },
      encrypted: null,
      problem: `no block device backs ${mount.target} (${mount.fstype} from "${mount.source}", as in a container or on a network or ZFS file system), so its encryption cannot be seen from here`,
    };
  }
  let chains = chainsForSource(all, mount.source);
  // btrfs and some device-mapper setups name a source lsblk spells differently; its mount points still match.
  if (chains.length === 0) chains = chainsForMountpoint(all, mount.target);
  const encrypted = judgeChains(chains);
  const chainEvidence = chains.map(chainNames);
  const finding: Finding = {
    evidence: { ...evidence, chain: chainEvidence.length === 1 ? (chainEvidence[0] ?? null) : chainEvidence, encrypted },
    encrypted,
  };
  if (encrypted === null) finding.problem = `lsblk does not list ${mount.source}, the device mounted at ${mount.target}`;
  else if (!encrypted) finding.problem = `${mount.target} is on ${chainNames(chains[0] ?? []).join(' > ')}, which is not encrypted`;
  return finding;
}

function assessSwap(all: readonly DeviceChain[], mounts: readonly MountEntry[], swap: SwapEntry): Finding {
  const evidence: Finding['evidence'] = { filename: swap.filename, type: swap.type };
  // zram swaps to compressed RAM: nothing reaches a disk, so there is nothing to encrypt.
  if (/^\/dev\/zram\d+$/.test(swap.filename)) return { evidence: { ...evidence, ram: true, encrypted: null }, encrypted: true };
  let chains: DeviceChain[];
  if (swap.type === 'file') {
    const holder = mountContaining(mounts, swap.filename);
    if (!holder?.source.startsWith('/dev/')) {
      return {
        evidence: { ...evidence, encrypted: null },
        encrypted: null,
        problem: `cannot tell which disk holds the swap file ${swap.filename}`,
      };
    }
    evidence.on = holder.target;
    chains = chainsForSource(all, holder.source);
    if (chains.length === 0) chains = chainsForMountpoint(all, holder.target);
  } else {
    chains = chainsForSource(all, swap.filename);
  }
  const encrypted = judgeChains(chains);
  const finding: Finding = { evidence: { ...evidence, chain: chains[0] ? chainNames(chains[0]) : null, encrypted }, encrypted };
  if (encrypted === null) finding.problem = `lsblk does not list the swap device ${swap.filename}`;
  else if (!encrypted) finding.problem = `swap ${swap.filename} is not encrypted, so memory contents reach the disk in the clear`;
  return finding;
}

/**
 * Whether / (and /home when it is a separate mount) and every swap area sit on dm-crypt. Swap counts
 * because it holds copies of memory: passwords and keys end up there.
 */
export function assessDiskEncryption(layout: DiskLayout): Observation {
  const all = deviceChains(layout.devices);
  const root = mountAt(layout.mounts, '/');
  if (!root) return { status: 'unknown', evidence: {}, reason: 'the mount table has no entry for /' };
  const home = mountAt(layout.mounts, '/home');
  const mounts = [root, ...(home ? [home] : [])].map((m) => assessMount(all, m));
  const swaps = layout.swaps.map((s) => assessSwap(all, layout.mounts, s));
  const evidence: Evidence = { mounts: mounts.map((f) => f.evidence), swaps: swaps.map((f) => f.evidence) };
  const findings = [...mounts, ...swaps];
  const failed = findings.find((f) => f.encrypted === false);
  if (failed) return { status: 'fail', evidence, reason: failed.problem ?? 'a disk is not encrypted' };
  const unclear = findings.find((f) => f.encrypted === null && f.problem !== undefined);
  if (unclear) return { status: 'unknown', evidence, reason: unclear.problem ?? 'could not tell' };
  const what = home ? '/ and /home' : '/';
  return {
    status: 'pass',
    evidence,
    reason: layout.swaps.length > 0 ? `${what} and swap are on encrypted devices` : `${what} is on an encrypted device and there is no disk swap`,
  };
}

export const diskEncryption: PlatformCheck = {
  collect: async (ctx) => {
    let devices: BlockDevice[];
    try {
      devices = await readBlockDevices(ctx);
    } catch (err) {
      if (err instanceof CommandNotFoundError) {
        return { status: 'unknown', evidence: {}, reason: 'lsblk (util-linux) is not installed' };
      }
      throw err;
    }
    const [mounts, swapsText] = await Promise.all([readMounts(ctx), readSwapsText(ctx)]);
    return assessDiskEncryption({ devices, mounts, swaps: parseProcSwaps(swapsText) });
  },
  remediation: {
    guides: [
      {
        label: 'Ubuntu / Debian',
        when: { distroFamily: 'debian' },
        steps: [
          'Contact IT: turning on disk encryption means reinstalling with encryption on, so IT will back up your files and book a time with you.',
          'Before the appointment, make sure all your work is saved to the company file share or cloud storage.',
          'IT reinstalls the system choosing "Advanced features" > "Use LVM and encryption" in the Ubuntu installer (Debian: "Guided - use entire disk and set up encrypted LVM").',
          'Choose a strong security key when asked; you will type it each time the laptop starts.',
          'After the reinstall, open Vigil and choose "Check again".',
        ],
        needsAdmin: true,
      },
      {
        label: 'Fedora / RHEL',
        when: { distroFamily: 'fedora' },
        steps: [
          'Contact IT: turning on disk encryption means reinstalling with encryption on, so IT will back up your files and book a time with you.',
          'Before the appointment, make sure all your work is saved to the company file share or cloud storage.',
          'IT reinstalls the system ticking "Encrypt my data" on the Installation Destination screen of the installer.',
          'Choose a strong passphrase when asked; you will type it each time the laptop starts.',
          'After the reinstall, open Vigil and choose "Check again".',
        ],
        needsAdmin: true,
      },
      {
        label: 'Other distributions',
        steps: [
          'Contact IT: turning on disk encryption means reinstalling with LUKS encryption for the system and swap, so IT will back up your files and book a time with you.',
          'Before the appointment, make sure all your work is saved to the company file share or cloud storage.',
          'After the reinstall, open Vigil and choose "Check again".',
        ],
        needsAdmin: true,
      },
    ],
  },
};
