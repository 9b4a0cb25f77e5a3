import { describe, expect, it } from 'vitest';
import {
  chainsForSource,
  deviceChains,
  dmDevicesOfPartitions,
  mountContaining,
  parseLsblk,
  parseMountinfo,
  parseProcSwaps,
} from '../../../src/posture/linux/block-devices.js';
import { assessDiskEncryption, diskEncryption } from '../../../src/posture/linux/disk-encryption.js';
import { FactStore, type FactPersistence } from '../../../src/posture/facts.js';
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

describe('lsblk cache', () => {
  const partitions = fixture('disk/ci-container.partitions.txt');
  // Written here, not recorded: the row and dm uuid a LUKS mapping opened as dm-0 adds.
  const withMapping = `${partitions} 253        0  268419072 dm-0\n`;
  const luksUuid = 'CRYPT-LUKS2-0c6bd4b6a0f44c7b9a3b8f2b1c1d2e3f-luks-root';
  const base = {
    '/proc/self/mountinfo': fixture('disk/ci-container.mountinfo.txt'),
    '/proc/swaps': fixture('disk/ci-container.swaps.txt'),
    '/proc/partitions': partitions,
    '/proc/sys/kernel/random/boot_id': 'a3a9e3c2-5b7e-4d55-9b53-0f3b0a0c9d11\n',
  };

  /** Two scans by one agent: the files change between them as `change` says. */
  async function lsblkRuns(change: (files: Record<string, string>) => void): Promise<number> {
    const files: Record<string, string> = { ...base };
    const ctx = fakeContext({ files, commands: { [LSBLK]: ok(fixture('disk/ci-container.lsblk.json')) } });
    await diskEncryption.collect(ctx);
    change(files);
    ctx.facts.beginScan();
    await diskEncryption.collect(ctx);
    return ctx.ran.length;
  }

  it('reuses the device tree while nothing it depends on changed', async () => {
    expect(await lsblkRuns(() => undefined)).toBe(1);
  });

  it('runs lsblk again after a mount', async () => {
    const mount = '2000 29 254:0 /data /data rw,relatime - ext4 /dev/vda rw\n';
    expect(await lsblkRuns((f) => (f['/proc/self/mountinfo'] = base['/proc/self/mountinfo'] + mount))).toBe(2);
  });

  it('runs lsblk again after a swapon', async () => {
    expect(await lsblkRuns((f) => (f['/proc/swaps'] = base['/proc/swaps'] + '/dev/zram0                              partition\t8388604\t\t0\t\t100\n'))).toBe(2);
  });

  it('runs lsblk again when a disk or a device-mapper device appears', async () => {
    expect(await lsblkRuns((f) => (f['/proc/partitions'] = withMapping))).toBe(2);
  });

  it('runs lsblk again when a device-mapper device is replaced by one of another kind under the same name', async () => {
    const files: Record<string, string> = { ...base, '/proc/partitions': withMapping, '/sys/block/dm-0/dm/uuid': `${luksUuid}\n` };
    const ctx = fakeContext({ files, commands: { [LSBLK]: ok(fixture('disk/ci-container.lsblk.json')) } });
    await diskEncryption.collect(ctx);
    files['/sys/block/dm-0/dm/uuid'] = 'LVM-Xb3Yc0Gq0aN2x2c8Zr1u8m0aQw3x4y5z6a7b8c9d0e1f2g3h4i5j6k7l8m9n0o1p\n';
    ctx.facts.beginScan();
    await diskEncryption.collect(ctx);
    expect(ctx.ran).toHaveLength(2);
  });

  it('keeps the answer across a restart with the same layout, but not across a reboot', async () => {
    let stored: Record<string, { version: string; value: unknown }> = {};
    const persistence: FactPersistence = {
      read: () => Promise.resolve(stored),
      write: (entries) => {
        stored = structuredClone(entries);
        return Promise.resolve();
      },
    };
    const scan = async (files: Record<string, string>): Promise<string[]> => {
      const ctx = { ...fakeContext({ files, commands: { [LSBLK]: ok(fixture('disk/ci-container.lsblk.json')) } }) };
      ctx.facts = new FactStore(60_000, Date.now, persistence);
      await diskEncryption.collect(ctx);
      return ctx.ran;
    };
    expect(await scan({ ...base })).toEqual([LSBLK]);
    expect(await scan({ ...base })).toEqual([]);
    expect(await scan({ ...base, '/proc/sys/kernel/random/boot_id': 'f0e1d2c3-b4a5-4968-8776-655443322110\n' })).toEqual([LSBLK]);
  });

  it('finds the device-mapper devices in /proc/partitions', () => {
    expect(dmDevicesOfPartitions(partitions)).toEqual([]);
    expect(dmDevicesOfPartitions(withMapping)).toEqual(['dm-0']);
  });
});
