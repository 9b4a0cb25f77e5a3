import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FactStore } from '../../../src/posture/facts.js';
import {
  dpkgInstalled,
  judgeAptAuto,
  judgeDnfAuto,
  parseAptPeriodic,
  parseDnfAutomaticApply,
  unattendedInstalled,
} from '../../../src/posture/linux/auto-updates.js';
import { fixture } from './fixture.js';

describe('parseAptPeriodic', () => {
  it('reads the files debconf installs', () => {
    expect(Object.fromEntries(parseAptPeriodic(fixture('20auto-upgrades.debian12')))).toEqual({
      'Update-Package-Lists': '1',
      'Unattended-Upgrade': '1',
    });
    expect(parseAptPeriodic(fixture('20auto-upgrades-disabled.debian12')).get('Unattended-Upgrade')).toBe('0');
  });

  it('finds nothing in an apt.conf file without periodic keys', () => {
    expect(parseAptPeriodic(fixture('20packagekit.debian12')).size).toBe(0);
  });

  it('skips commented-out settings', () => {
    expect(parseAptPeriodic('// APT::Periodic::Unattended-Upgrade "1";\n').size).toBe(0);
  });
});

describe('dpkgInstalled', () => {
  const status = fixture('dpkg-status-excerpt.debian12.txt');
  it('reads Status lines of a real status file', () => {
    expect(dpkgInstalled(status, 'apt')).toBe(true);
    expect(dpkgInstalled(status, 'passwd')).toBe(true);
    expect(dpkgInstalled(status, 'unattended-upgrades')).toBe(false);
    expect(dpkgInstalled(status, 'pt')).toBe(false);
  });

  it('treats removed-but-configured packages as not installed', () => {
    expect(dpkgInstalled('Package: unattended-upgrades\nStatus: deinstall ok config-files\n', 'unattended-upgrades')).toBe(false);
  });
});

describe('judgeAptAuto', () => {
  const on = { unattendedUpgrade: '1', periodicEnable: null, packageInstalled: true, timer: 'enabled' };
  it('passes when installed and switched on', () => {
    expect(judgeAptAuto(on).status).toBe('pass');
    expect(judgeAptAuto(on).evidence.note).toContain('GNOME Software');
  });
  it('fails when any link is missing', () => {
    expect(judgeAptAuto({ ...on, packageInstalled: false }).status).toBe('fail');
    expect(judgeAptAuto({ ...on, unattendedUpgrade: '0' }).status).toBe('fail');
    expect(judgeAptAuto({ ...on, periodicEnable: '0' }).status).toBe('fail');
    expect(judgeAptAuto({ ...on, timer: 'masked' }).status).toBe('fail');
  });
});

describe('dnf-automatic', () => {
  it('reads apply_updates from [commands] only', () => {
    expect(parseDnfAutomaticApply('[commands]\nupgrade_type = default\napply_updates = yes\n')).toBe(true);
    expect(parseDnfAutomaticApply('[commands]\napply_updates = no\n[emitters]\napply_updates = yes\n')).toBe(false);
    expect(parseDnfAutomaticApply('')).toBe(false);
  });

  it('judges timers and config together', () => {
    const timers = { 'dnf-automatic-install.timer': null, 'dnf-automatic.timer': 'enabled', 'dnf5-automatic.timer': null };
    expect(judgeDnfAuto({ applyUpdates: true, configFound: true, timers }).status).toBe('pass');
    expect(judgeDnfAuto({ applyUpdates: false, configFound: true, timers }).status).toBe('fail');
    expect(judgeDnfAuto({ applyUpdates: false, configFound: false, timers: { ...timers, 'dnf-automatic-install.timer': 'enabled' } }).status).toBe('pass');
    expect(judgeDnfAuto({ applyUpdates: true, configFound: true, timers: { ...timers, 'dnf-automatic.timer': 'disabled' } }).status).toBe('fail');
  });
});

describe('dpkg status cache', () => {
  it('reads the status file again only after dpkg rewrote it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-dpkg-'));
    const status = join(dir, 'status');
    writeFileSync(status, fixture('dpkg-status-excerpt.debian12.txt'));
    let reads = 0;
    const ctx = {
      facts: new FactStore(60_000),
      readFile: (p: string) => {
        reads++;
        return readFile(p, 'utf8');
      },
    };
    expect(await unattendedInstalled(ctx, status)).toBe(false);
    ctx.facts.beginScan();
    expect(await unattendedInstalled(ctx, status)).toBe(false);
    expect(reads).toBe(1);

    // dpkg writes status-new and renames it over status, so the inode changes.
    const next = join(dir, 'status-new');
    writeFileSync(next, `${fixture('dpkg-status-excerpt.debian12.txt')}\nPackage: unattended-upgrades\nStatus: install ok installed\n`);
    renameSync(next, status);
    ctx.facts.beginScan();
    expect(await unattendedInstalled(ctx, status)).toBe(true);
    expect(reads).toBe(2);
    rmSync(dir, { recursive: true, force: true });
  });
});
