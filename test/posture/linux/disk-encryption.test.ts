import { describe, expect, it } from 'vitest';
import {
  chainsForSource,
  deviceChains,
  mountContaining,
  parseLsblk,
  parseMountinfo,
  parseProcSwaps,
} from '../../../src/posture/linux/block-devices.js';
import { assessDiskEncryption, diskEncryption } from '../../../src/posture/linux/disk-encryption.js';
import { fakeContext, fixture, ok } from './fake-context.js';

const LSBLK = 'lsblk -J -b -o NAME,KNAME,PATH,TYPE,FSTYPE,MOUNTPOINT,MOUNTPOINTS,PKNAME';
const mount = (target: string, source: string, fstype: string) => ({ target, source, fstype });

describe('parsers', () => {
  it('reads this CI machine: / on the bare virtio disk, zram present but unused', () => {
    const devices = parseLsblk(fixture('disk/ci-container.lsblk.json'));
    expect(devices.map((d) => [d.name, d.type, d.mountpoints])).toEqual([
      ['zram0', 'disk', []],
      ['vda', 'disk', ['/']],
    ]);
    const mounts = parseMountinfo(fixture('disk/ci-container.mountinfo.txt'));
    expect(mounts.find((m) => m.target === '/')).toEqual({ target: '/', source: '/dev/vda', fstype: 'ext4' });
    expect(parseProcSwaps(fixture('disk/ci-container.swaps.txt'))).toEqual([]);
  });

  it('merges MOUNTPOINT and MOUNTPOINTS and defaults missing columns', () => {
    const [, , , nvme] = parseLsblk(fixture('disk/armbian-crypt-root.lsblk.json'));
    expect(nvme?.children[1]?.children[0]?.mountpoints).toEqual(['/var/log.hdd', '/']);
    const [loop] = parseLsblk(fixture('disk/quickshell-luks-on-lvm-btrfs.lsblk.json'));
    expect(loop).toMatchObject({ name: 'loop0', kname: 'loop0', path: '/dev/loop0', fstype: 'erofs', mountpoints: [] });
  });

  it('reads /proc/swaps with partitions and zram (Fedora, fwupd#3176)', () => {
    expect(parseProcSwaps(fixture('disk/fedora-fwupd-3176.swaps.txt'))).toEqual([
      { filename: '/dev/dm-2', type: 'partition' },
      { filename: '/dev/zram0', type: 'partition' },
    ]);
  });

  it('unescapes octal escapes in mountinfo paths', () => {
    const [m] = parseMountinfo('36 35 98:0 / /mnt/my\\040disk rw,noatime master:1 - ext3 /dev/root rw,errors=continue');
    expect(m).toEqual({ target: '/mnt/my disk', source: '/dev/root', fstype: 'ext3' });
  });

  it('finds the mount holding a swap file', () => {
    const mounts = [mount('/', '/dev/a', 'ext4'), mount('/var', '/dev/b', 'ext4'), mount('/var/lib', '/dev/c', 'ext4')];
    expect(mountContaining(mounts, '/var/swapfile')?.source).toBe('/dev/b');
    expect(mountContaining(mounts, '/swap.img')?.source).toBe('/dev/a');
  });

  it('matches /dev/dm-N and /dev/mapper/<name> to the same device', () => {
    const chains = deviceChains(parseLsblk(fixture('disk/manjaro-lvm-on-luks.lsblk.json')));
    expect(chainsForSource(chains, '/dev/dm-1').map((c) => c.map((d) => d.name))).toEqual([
      ['sda', 'sda2', 'manjaro-crypt', 'manjaro--vg0-manjaro--swap'],
    ]);
    expect(chainsForSource(chains, '/dev/mapper/manjaro--vg0-manjaro--root')).toHaveLength(1);
  });
});

describe('assessDiskEncryption', () => {
  it('passes LVM on LUKS with swap inside the encrypted volume group (manjaro-architect#252)', () => {
    const obs = assessDiskEncryption({
      devices: parseLsblk(fixture('disk/manjaro-lvm-on-luks.lsblk.json')),
      mounts: [mount('/', '/dev/mapper/manjaro--vg0-manjaro--root', 'ext4'), mount('/boot', '/dev/sda1', 'ext4')],
      swaps: [{ filename: '/dev/dm-1', type: 'partition' }],
    });
    expect(obs.status).toBe('pass');
    expect(obs.evidence.mounts).toEqual([
      { target: '/', source: '/dev/mapper/manjaro--vg0-manjaro--root', fstype: 'ext4', chain: ['sda', 'sda2', 'manjaro-crypt', 'manjaro--vg0-manjaro--root'], encrypted: true },
    ]);
    expect(obs.evidence.swaps).toEqual([
      { filename: '/dev/dm-1', type: 'partition', chain: ['sda', 'sda2', 'manjaro-crypt', 'manjaro--vg0-manjaro--swap'], encrypted: true },
    ]);
  });

  it('passes btrfs on LUKS on LVM, where lsblk shows a subvolume mount point rather than /', () => {
    const obs = assessDiskEncryption({
      devices: parseLsblk(fixture('disk/quickshell-luks-on-lvm-btrfs.lsblk.json')),
      mounts: [mount('/', '/dev/mapper/cryptroot', 'btrfs'), mount('/home', '/dev/mapper/cryptroot', 'btrfs')],
      swaps: [{ filename: '/dev/mapper/dev-tokyonightvg-swap', type: 'partition' }],
    });
    expect(obs.status).toBe('pass');
    expect(obs.reason).toBe('/ and /home and swap are on encrypted devices');
  });

  it('passes a crypt root found by its MOUNTPOINTS list, with zram swap (armbian#8805)', () => {
    const obs = assessDiskEncryption({
      devices: parseLsblk(fixture('disk/armbian-crypt-root.lsblk.json')),
      // A source lsblk names differently (as dm-0 shows in some initramfs setups) falls back to mount points.
      mounts: [mount('/', '/dev/root', 'ext4')],
      swaps: [{ filename: '/dev/zram0', type: 'partition' }],
    });
    expect(obs.status).toBe('pass');
    expect(obs.evidence.swaps).toEqual([{ filename: '/dev/zram0', type: 'partition', ram: true, encrypted: null }]);
  });

  it('fails a server whose root and swap are plain partitions even though data disks are LUKS (omv#443)', () => {
    const obs = assessDiskEncryption({
      devices: parseLsblk(fixture('disk/omv-server-plain.lsblk.json')),
      mounts: [mount('/', '/dev/vda1', 'ext4'), mount('/srv/dev-disk-by-label-vdd', '/dev/mapper/vdd-crypt', 'ext4')],
      swaps: [{ filename: '/dev/vda5', type: 'partition' }],
    });
    expect(obs.status).toBe('fail');
    expect(obs.reason).toBe('/ is on vda > vda1, which is not encrypted');
    expect(obs.evidence.swaps).toEqual([{ filename: '/dev/vda5', type: 'partition', chain: ['vda', 'vda5'], encrypted: false }]);
  });

  it('fails when / is encrypted but swap is a plain partition', () => {
    const obs = assessDiskEncryption({
      devices: parseLsblk(fixture('disk/omv-server-plain.lsblk.json')),
      mounts: [mount('/', '/dev/mapper/vdd-crypt', 'ext4')],
      swaps: [{ filename: '/dev/vda5', type: 'partition' }],
    });
    expect(obs.status).toBe('fail');
    expect(obs.reason).toMatch(/^swap \/dev\/vda5 is not encrypted/);
  });

  it('judges a swap file by the file system that holds it', () => {
    const devices = parseLsblk(fixture('disk/manjaro-lvm-on-luks.lsblk.json'));
    const mounts = [mount('/', '/dev/mapper/manjaro--vg0-manjaro--root', 'ext4'), mount('/boot', '/dev/sda1', 'ext4')];
    expect(assessDiskEncryption({ devices, mounts, swaps: [{ filename: '/swapfile', type: 'file' }] }).status).toBe('pass');
    expect(assessDiskEncryption({ devices, mounts, swaps: [{ filename: '/boot/swapfile', type: 'file' }] }).status).toBe('fail');
  });

  it('fails this CI machine: / sits directly on /dev/vda', () => {
    const obs = assessDiskEncryption({
      devices: parseLsblk(fixture('disk/ci-container.lsblk.json')),
      mounts: parseMountinfo(fixture('disk/ci-container.mountinfo.txt')),
      swaps: parseProcSwaps(fixture('disk/ci-container.swaps.txt')),
    });
    expect(obs).toMatchObject({ status: 'fail', reason: '/ is on vda, which is not encrypted' });
    expect(obs.evidence).toEqual({ mounts: [{ target: '/', source: '/dev/vda', fstype: 'ext4', chain: ['vda'], encrypted: false }], swaps: [] });
  });

  it('is unknown for an overlay root, as in a Docker container', () => {
    const obs = assessDiskEncryption({
      devices: parseLsblk(fixture('disk/ci-container.lsblk.json')),
      mounts: parseMountinfo('1000 900 0:120 / / rw,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w'),
      swaps: [],
    });
    expect(obs.status).toBe('unknown');
    expect(obs.reason).toMatch(/^no block device backs \/ \(overlay from "overlay"/);
  });
});

describe('collector', () => {
  const files = {
    '/proc/self/mountinfo': fixture('disk/ci-container.mountinfo.txt'),
    '/proc/swaps': fixture('disk/ci-container.swaps.txt'),
  };

  it('retries without MOUNTPOINTS on util-linux older than 2.37', async () => {
    const old = 'lsblk -J -b -o NAME,KNAME,PATH,TYPE,FSTYPE,MOUNTPOINT,PKNAME';
    const ctx = fakeContext({
      commands: {
        [LSBLK]: { code: 1, stdout: '', stderr: 'lsblk: unknown column: MOUNTPOINTS' },
        [old]: ok(fixture('disk/ci-container.lsblk.json')),
      },
      files,
    });
    expect((await diskEncryption.collect(ctx)).status).toBe('fail');
    expect(ctx.ran).toEqual([LSBLK, old]);
  });

  it('is unknown without lsblk', async () => {
    const obs = await diskEncryption.collect(fakeContext({ files }));
    expect(obs).toMatchObject({ status: 'unknown', reason: 'lsblk (util-linux) is not installed' });
  });
});
