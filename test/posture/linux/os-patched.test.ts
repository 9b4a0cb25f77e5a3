import { appendFileSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { FactStore } from '../../../src/posture/facts.js';
import {
  aptHistory,
  isPatchRun,
  judgePatchState,
  lastPatchRun,
  parseAptHistory,
  parseAptSimulation,
  parseDnfSecurity,
  parseZypperPatches,
  type PatchState,
} from '../../../src/posture/linux/os-patched.js';
import { fixture } from './fixture.js';

describe('parseAptSimulation', () => {
  it('counts security updates in a real Debian 12 dist-upgrade simulation', () => {
    const p = parseAptSimulation(fixture('apt-get-s-dist-upgrade.debian12.txt'));
    expect(p.total).toBe(114);
    // Both "Debian-Security:12/oldstable-security" alone and after "Debian:12.15/oldstable, " count.
    expect(p.security).toBe(70);
    expect(p.securityPackages).toContain('libgcrypt20');
    expect(p.securityPackages).toContain('liblzma5');
    expect(p.securityPackages).not.toContain('base-files');
  });

  it('reads Ubuntu origins listing -updates before -security', () => {
    const p = parseAptSimulation(fixture('apt-get-s-install-vim.ubuntu2204.txt'));
    expect(p).toEqual({ total: 4, security: 4, securityPackages: ['vim', 'vim-tiny', 'vim-runtime', 'vim-common'] });
  });

  it('is zero for output without Inst lines', () => {
    expect(parseAptSimulation('Reading package lists...\n0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n').total).toBe(0);
  });
});

describe('parseDnfSecurity', () => {
  it('counts packages of dnf4/yum "ID Severity/Sec. NEVRA" lines', () => {
    const p = parseDnfSecurity(fixture('yum-updateinfo-list-security.rhel7.txt'));
    expect(p.security).toBe(13);
    expect(p.securityPackages[0]).toBe('389-ds-base-1.3.1.6-26.el7_0.x86_64');
  });

  it('ignores non-security rows of the dnf5 table', () => {
    expect(parseDnfSecurity(fixture('dnf5-updateinfo-list.fedora.txt')).security).toBe(0);
  });

  it('counts dnf5 rows whose Type is security (line written by us in the dnf5 column layout)', () => {
    const row = 'FEDORA-2026-0000000002 security    Low                                  charlie-1.2.3-2.fc43.x86_64 2026-01-03 00:00:00';
    expect(parseDnfSecurity(`${fixture('dnf5-updateinfo-list.fedora.txt')}${row}\n`).securityPackages).toEqual(['charlie-1.2.3-2.fc43.x86_64']);
  });
});

describe('parseZypperPatches', () => {
  it('counts needed patches by the Status column (table written by us in zypper\'s layout; no real fixture)', () => {
    const text = [
      'Repository | Name | Category | Severity | Interactive | Status | Summary',
      '-----------+------+----------+----------+-------------+--------+--------',
      'repo-update | openSUSE-2024-1 | security | important | --- | needed | curl fix',
      'repo-update | openSUSE-2024-2 | security | moderate | --- | applied | old fix',
    ].join('\n');
    expect(parseZypperPatches(text)).toEqual({ total: 1, security: 1, securityPackages: ['openSUSE-2024-1'] });
  });
});

describe('apt history', () => {
  const runs = parseAptHistory(fixture('apt-history.debian12.log'));

  it('parses every run of the real log', () => {
    expect(runs).toHaveLength(12);
    expect(runs[0]?.commandline).toBe('apt-get -qqy upgrade');
    expect(runs[0]?.upgraded).toBe(2);
  });

  it('treats only upgrade commands as patch runs, not installs that upgrade a dependency', () => {
    expect(runs.filter(isPatchRun).map((r) => r.commandline)).toEqual(['apt-get -qqy upgrade']);
    const h = lastPatchRun(runs);
    expect(h.lastUpgrade).toEqual(new Date(2025, 5, 24, 14, 36, 25));
    expect(h.coveredSince).toEqual(new Date(2025, 5, 24, 14, 36, 25));
  });

  it('counts unattended-upgrade and GUI runs', () => {
    const base = { start: new Date(0), end: new Date(1), upgraded: 1 };
    expect(isPatchRun({ ...base, commandline: '/usr/bin/unattended-upgrade' })).toBe(true);
    expect(isPatchRun({ ...base, commandline: 'apt full-upgrade -y' })).toBe(true);
    expect(isPatchRun({ ...base, commandline: null })).toBe(true);
    expect(isPatchRun({ ...base, commandline: 'apt install unattended-upgrades' })).toBe(false);
    expect(isPatchRun({ ...base, commandline: 'apt-get -o Foo=upgrade install x' })).toBe(false);
  });
});

describe('judgePatchState', () => {
  const now = new Date('2026-11-23T12:00:00Z');
  const days = (n: number): Date => new Date(now.getTime() - n * 86_400_000);
  const state = (over: Partial<PatchState>): PatchState => ({
    manager: 'apt',
    pending: { total: 3, security: 2, securityPackages: ['a', 'b'] },
    pendingTotal: 3,
    history: { lastUpgrade: days(60), coveredSince: days(400) },
    lastUpgradeSource: 'test',
    listsAgeDays: 1,
    ...over,
  });

  it('fails with pending security updates and an old last upgrade', () => {
    const o = judgePatchState(state({}), 30, now);
    expect(o.status).toBe('fail');
    expect(o.reason).toBe('2 security updates pending; last upgraded 60 days ago');
    expect(o.evidence).toMatchObject({ manager: 'apt', pendingSecurity: 2, pendingTotal: 3, listsAgeDays: 1 });
  });

  it('passes pending updates inside the grace window', () => {
    expect(judgePatchState(state({ history: { lastUpgrade: days(5), coveredSince: days(400) } }), 30, now).status).toBe('pass');
  });

  it('fails when logs covering longer than the threshold hold no upgrade', () => {
    expect(judgePatchState(state({ history: { lastUpgrade: null, coveredSince: days(90) } }), 30, now).status).toBe('fail');
  });

  it('is unknown when logs are too short to know', () => {
    expect(judgePatchState(state({ history: { lastUpgrade: null, coveredSince: days(3) } }), 30, now).status).toBe('unknown');
  });

  it('passes nothing pending with fresh lists, but not with stale ones', () => {
    const none = { total: 0, security: 0, securityPackages: [] };
    expect(judgePatchState(state({ pending: none }), 30, now).status).toBe('pass');
    const stale = judgePatchState(state({ pending: none, listsAgeDays: 45 }), 30, now);
    expect(stale.status).toBe('unknown');
    expect(stale.reason).toContain('45 days old');
  });

  it('is unknown with the probe error when pending could not be listed', () => {
    const o = judgePatchState(state({ pending: null, pendingError: 'dnf updateinfo exited 1: Cache-only enabled but no cache' }), 30, now);
    expect(o).toMatchObject({ status: 'unknown', reason: 'dnf updateinfo exited 1: Cache-only enabled but no cache' });
  });
});

describe('apt history cache', () => {
  it('parses the logs again only when apt appends or logrotate rotates', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-apt-log-'));
    const logs = { current: join(dir, 'history.log'), rotated: join(dir, 'history.log.1.gz') };
    const log = fixture('apt-history.debian12.log');
    writeFileSync(logs.current, log);
    let reads = 0;
    const ctx = {
      facts: new FactStore(60_000),
      readFile: (p: string) => {
        reads++;
        return readFile(p, 'utf8');
      },
    };
    const first = await aptHistory(ctx, logs);
    ctx.facts.beginScan();
    expect(await aptHistory(ctx, logs)).toEqual(first);
    expect(reads).toBe(1);

    appendFileSync(logs.current, '\nStart-Date: 2030-01-01  10:00:00\nCommandline: apt-get upgrade\nUpgrade: zlib1g:amd64 (1:1.2.13.dfsg-1, 1:1.2.13.dfsg-2)\nEnd-Date: 2030-01-01  10:00:05\n');
    ctx.facts.beginScan();
    expect((await aptHistory(ctx, logs)).lastUpgrade).toEqual(new Date(2030, 0, 1, 10, 0, 5));
    expect(reads).toBe(2);

    // logrotate: the log moves aside and an empty one takes its place.
    renameSync(logs.current, join(dir, 'history.log.1'));
    writeFileSync(logs.current, '');
    writeFileSync(logs.rotated, gzipSync(readFileSync(join(dir, 'history.log.1'))));
    ctx.facts.beginScan();
    expect((await aptHistory(ctx, logs)).lastUpgrade).toEqual(new Date(2030, 0, 1, 10, 0, 5));
    expect(reads).toBe(3);
    rmSync(dir, { recursive: true, force: true });
  });
});
