import { describe, expect, it } from 'vitest';
import { FactStore } from '../../../src/posture/facts.js';
import type { CollectContext } from '../../../src/posture/collector.js';
import { thresholdsSchema } from '../../../src/policy/schema.js';
import { darwinChecks } from '../../../src/posture/darwin/index.js';
import { judgeFileVault } from '../../../src/posture/darwin/disk-encryption.js';
import { judgeSip } from '../../../src/posture/darwin/not-rooted.js';
import { judgeDarwinFirewall } from '../../../src/posture/darwin/firewall.js';
import { judgeGatekeeper } from '../../../src/posture/darwin/gatekeeper.js';
import { judgeDarwinMdm } from '../../../src/posture/darwin/mdm-enrolled.js';
import { judgeDarwinScreenLock } from '../../../src/posture/darwin/screen-lock.js';
import { judgeDarwinPatches, isMacosUpdate, isMajorUpgrade, plistUpdates } from '../../../src/posture/darwin/os-patched.js';
import { judgeMacosVersion } from '../../../src/posture/darwin/os-version.js';
import { judgeDarwinAutoUpdates } from '../../../src/posture/darwin/auto-updates.js';
import { judgeRemoteLogin } from '../../../src/posture/darwin/ssh-server.js';
import { judgeDarwinGuest } from '../../../src/posture/darwin/guest-account.js';
import { judgeXprotect } from '../../../src/posture/darwin/xprotect.js';
import { judgeDarwinEdr } from '../../../src/posture/darwin/edr-running.js';
import { darwinDeviceFactsFrom } from '../../../src/posture/darwin/device-facts.js';
import { darwinDeviceSchema } from '../../../src/posture/darwin/probe.js';
import { fixture, plist, posture } from './helpers.js';

const thresholds = thresholdsSchema.parse({ minimumOsVersions: { macos: '14' } });

describe('disk-encryption (FileVault)', () => {
  it('passes when on, fails while encrypting, paused, decrypting or off', () => {
    expect(judgeFileVault(fixture('fdesetup/on.txt')).status).toBe('pass');
    const encrypting = judgeFileVault(fixture('fdesetup/encrypting.txt'));
    expect(encrypting).toMatchObject({ status: 'fail', evidence: { state: 'encrypting', percent: 42 } });
    expect(encrypting.reason).toContain('42%');
    expect(judgeFileVault(fixture('fdesetup/encrypting-pending.txt')).reason).toContain('paused');
    expect(judgeFileVault(fixture('fdesetup/decrypting.txt')).status).toBe('fail');
    expect(judgeFileVault(fixture('fdesetup/deferred.txt')).reason).toContain('next login');
    expect(judgeFileVault(null).status).toBe('unknown');
  });
});

describe('not-rooted (SIP)', () => {
  it('passes only a fully enabled SIP', () => {
    expect(judgeSip(fixture('csrutil/enabled.txt')).status).toBe('pass');
    expect(judgeSip(fixture('csrutil/custom-enabled-10.11.txt')).status).toBe('fail');
    expect(judgeSip(fixture('csrutil/custom-unknown-partial.txt')).reason).toContain('Kext Signing, Filesystem Protections');
    expect(judgeSip(fixture('csrutil/custom-unknown-apple-silicon-12.5.txt'))).toMatchObject({
      status: 'fail',
      reason:
        'System Integrity Protection is partly off: Filesystem Protections, Debugging Restrictions, NVRAM Protections, Boot-arg Restrictions, Kernel Integrity Protections',
    });
    expect(judgeSip(null).status).toBe('unknown');
  });
});

describe('firewall, gatekeeper, mdm-enrolled', () => {
  it('judges the application firewall, with a profile as fallback', () => {
    expect(judgeDarwinFirewall(posture({ firewallGlobalState: fixture('socketfilterfw/global-on.txt') })).status).toBe('pass');
    expect(judgeDarwinFirewall(posture({ firewallGlobalState: fixture('socketfilterfw/global-block-all-15.txt') })).status).toBe('pass');
    expect(judgeDarwinFirewall(posture({ firewallGlobalState: fixture('socketfilterfw/global-off.txt') })).status).toBe('fail');
    expect(judgeDarwinFirewall(posture({ firewallManaged: plist({ EnableFirewall: true }) })).status).toBe('pass');
    expect(judgeDarwinFirewall(posture()).status).toBe('unknown');
  });

  it('judges Gatekeeper', () => {
    expect(judgeGatekeeper(fixture('spctl/enabled.txt')).status).toBe('pass');
    expect(judgeGatekeeper(fixture('spctl/disabled.txt')).status).toBe('fail');
  });

  it('judges MDM enrollment, requiring user approval for manual enrollment', () => {
    expect(judgeDarwinMdm(fixture('profiles/dep-user-approved-11.txt')).status).toBe('pass');
    expect(judgeDarwinMdm('Enrolled via DEP: No\nMDM enrollment: Yes\n').status).toBe('fail');
    expect(judgeDarwinMdm('Enrolled via DEP: No\nMDM enrollment: No\n').status).toBe('fail');
    expect(judgeDarwinMdm(null).status).toBe('unknown');
  });
});

describe('screen-lock', () => {
  const byHost = (idle: number): string => plist({ idleTime: idle, CleanExit: 'YES' });

  it('passes with a password required immediately and a short idle time', () => {
    const obs = judgeDarwinScreenLock(posture({ screenLockStatus: fixture('sysadminctl/immediate.txt'), screensaverByHost: byHost(300) }), 300);
    expect(obs).toMatchObject({ status: 'pass', evidence: { idleTimeSeconds: 300, passwordDelaySeconds: 0, idleSource: 'user' } });
  });

  it('reads the password setting recorded on macOS 14.8.7', () => {
    const obs = judgeDarwinScreenLock(posture({ screenLockStatus: fixture('sysadminctl/immediate-14.8.7.txt'), screensaverByHost: byHost(300) }), 300);
    expect(obs).toMatchObject({ status: 'pass', reason: 'the screen locks after 300 s idle', evidence: { passwordSource: 'user', passwordDelaySeconds: 0 } });
  });

  it('adds the password delay and uses the 20-minute default when idleTime was never set', () => {
    expect(judgeDarwinScreenLock(posture({ screenLockStatus: fixture('sysadminctl/300.txt'), screensaverByHost: byHost(120) }), 300).status).toBe('fail');
    expect(judgeDarwinScreenLock(posture({ screenLockStatus: fixture('sysadminctl/immediate.txt') }), 300)).toMatchObject({
      status: 'fail',
      evidence: { idleSource: 'default', idleTimeSeconds: 1200 },
    });
  });

  it('fails when no password is required or the screen saver never starts', () => {
    expect(judgeDarwinScreenLock(posture({ screenLockStatus: fixture('sysadminctl/off.txt'), screensaverByHost: byHost(60) }), 300).status).toBe('fail');
    expect(judgeDarwinScreenLock(posture({ screenLockStatus: fixture('sysadminctl/immediate.txt'), screensaverByHost: byHost(0) }), 300).status).toBe('fail');
  });

  it('lets a configuration profile win over the user, per-user profile first', () => {
    const obs = judgeDarwinScreenLock(
      posture({
        screenLockStatus: fixture('sysadminctl/off.txt'),
        screensaverByHost: byHost(1200),
        screensaverManaged: plist({ askForPassword: 1, askForPasswordDelay: 5, idleTime: 600 }),
        screensaverManagedUser: plist({ idleTime: 240 }),
      }),
      300,
    );
    expect(obs).toMatchObject({ status: 'pass', evidence: { passwordSource: 'profile', idleSource: 'profile', idleTimeSeconds: 240, passwordDelaySeconds: 5 } });
  });

  it('is unknown when the password setting cannot be read', () => {
    expect(judgeDarwinScreenLock(posture({ screensaverByHost: byHost(60) }), 300).status).toBe('unknown');
  });
});

describe('os-version and os-patched', () => {
  it('compares the product version with the policy', () => {
    expect(judgeMacosVersion('15.1', '24B83', thresholds).status).toBe('pass');
    expect(judgeMacosVersion('13.6.1', '22G313', thresholds).status).toBe('fail');
    expect(judgeMacosVersion('15.1', null, thresholdsSchema.parse({})).status).toBe('unknown');
  });

  const now = new Date('2023-05-10T00:00:00Z');
  const list = (text: string) => ({ probeVersion: 1 as const, exitCode: 0, stdout: text, stderr: '' });

  it('fails on a pending macOS update but not on an offered major upgrade', () => {
    expect(judgeDarwinPatches(list(fixture('softwareupdate/ventura-pre-13.6-pending.txt')), null, '13.5.2', now, 30)).toMatchObject({
      status: 'fail',
      reason: 'macOS updates are waiting to be installed: macOS Ventura 13.6',
      evidence: { pending: ['macOS Ventura 13.6'], majorUpgrades: ['macOS Sonoma 14.0'], otherUpdates: ['Safari'] },
    });
    expect(judgeDarwinPatches(list(fixture('softwareupdate/ventura-13.6-major-only.txt')), null, '13.6', now, 30)).toMatchObject({
      status: 'pass',
      reason: 'no macOS update is pending (not counted: macOS Sonoma 14.0)',
    });
    expect(judgeDarwinPatches(list(fixture('softwareupdate/none.txt')), null, '13.6', now, 30).status).toBe('pass');
    // A Sonoma Mac offered its own patch and Sequoia: only the Sonoma patch counts; Safari and the CLT are evidence.
    expect(judgeDarwinPatches(list(fixture('softwareupdate/sonoma-14.7.2-and-sequoia-15.2-pending.txt')), null, '14.7.1', now, 30)).toMatchObject({
      status: 'fail',
      reason: 'macOS updates are waiting to be installed: macOS Sonoma 14.7.2',
      evidence: {
        pending: ['macOS Sonoma 14.7.2'],
        majorUpgrades: ['macOS Sequoia 15.2'],
        otherUpdates: ['Safari', 'Command Line Tools for Xcode'],
      },
    });
    // A Ventura VM offered 13.7.4 and Sequoia 15.3.1 (the Sequoia label format of macOS 15).
    expect(judgeDarwinPatches(list(fixture('softwareupdate/ventura-13.7-pending.txt')), null, '13.7.3', now, 30).reason).toBe(
      'macOS updates are waiting to be installed: macOS Ventura 13.7.4',
    );
    expect(isMajorUpgrade('macOS Sequoia 15.3.1', '13.7.3')).toBe(true);
    expect(isMajorUpgrade('macOS Ventura 13.7.4', '13.7.3')).toBe(false);
    expect(isMajorUpgrade('macOS Security Response 13.2 (a)', '13.2')).toBe(false);
  });

  it('does not fail a current macOS on pending Command Line Tools or Safari updates', () => {
    expect(judgeDarwinPatches(list(fixture('softwareupdate/catalina-clt-only.txt')), null, '10.15.2', now, 30)).toMatchObject({
      status: 'pass',
      reason: 'no macOS update is pending (not counted: Command Line Tools for Xcode, Command Line Tools for Xcode)',
      evidence: { pending: [], majorUpgrades: [], otherUpdates: ['Command Line Tools for Xcode', 'Command Line Tools for Xcode'] },
    });
    expect(judgeDarwinPatches(list(fixture('softwareupdate/ventura-safari-only.txt')), null, '13.6.4', now, 30)).toMatchObject({
      status: 'pass',
      evidence: { pending: [], otherUpdates: ['Safari'] },
    });
  });

  it('fails on a pending Rapid Security Response', () => {
    expect(judgeDarwinPatches(list(fixture('softwareupdate/ventura-13.2-rsr-pending.txt')), null, '13.2', now, 30)).toMatchObject({
      status: 'fail',
      reason: 'macOS updates are waiting to be installed: macOS Security Response 13.2 (a)',
      evidence: { pending: ['macOS Security Response 13.2 (a)'], otherUpdates: [] },
    });
  });

  it('tells macOS updates from other updates by their names', () => {
    // Titles and labels as softwareupdate printed them (see the fixture README for each source).
    for (const os of [
      'macOS Sonoma 14.7.2',
      'macOS Ventura 13.7.4-22H420',
      'macOS Security Response 13.3.1 (a)-22E772610a',
      // Mojave's pre-10.15 list title (MagerValp/AutoDMGUpdateProfiles#91); no "* Label:" list of one was found.
      'Security Update 2020-005 (10.14.6)',
    ]) {
      expect(isMacosUpdate(os), os).toBe(true);
    }
    // Apple's names for the feature (eclecticlight.co; Apple Platform Deployment), not a recorded list line.
    expect(isMacosUpdate('Rapid Security Response'), 'RSR').toBe(true);
    expect(isMacosUpdate('Background Security Improvement'), 'BSI').toBe(true);
    for (const other of [
      'Safari',
      'Safari18.2SonomaAuto-18.2',
      'Command Line Tools for Xcode',
      'Command Line Tools (macOS Sierra version 10.12) for Xcode-8.1',
      'XProtectPlistConfigData_10_15-5346',
      'StuffIt Expander Security Update',
    ]) {
      expect(isMacosUpdate(other), other).toBe(false);
    }
  });

  it('falls back to com.apple.SoftwareUpdate when the list is not ready or offline', () => {
    const none = fixture('plists/SoftwareUpdate-13.3.1-no-updates.plist');
    expect(plistUpdates(none)).toEqual({ lastSuccessfulCheck: '2023-05-04T21:40:12Z', pending: [], recommendedCount: 0 });
    expect(judgeDarwinPatches(undefined, none, '13.3.1', now, 30)).toMatchObject({ status: 'pass', evidence: { lastCheckAgeDays: 5 } });
    expect(judgeDarwinPatches(list('Software Update Tool\n'), none, '13.3.1', now, 30).status).toBe('pass');
    expect(judgeDarwinPatches(undefined, none, '13.3.1', new Date('2023-08-01T00:00:00Z'), 30).status).toBe('unknown');
    expect(judgeDarwinPatches(undefined, null, '13.3.1', now, 30).status).toBe('unknown');
  });

  it('is unknown when the plist counts updates without naming them', () => {
    // The real plist counts one recommended update and lists none: it may be Safari or the CLT as well as macOS.
    const one = judgeDarwinPatches(undefined, fixture('plists/SoftwareUpdate-13.3.1-one-update.plist'), '13.3.1', now, 30);
    expect(one).toMatchObject({ status: 'unknown', evidence: { recommendedCount: 1, pending: [] } });
    expect(one.reason).toContain('1 recommended update(s) without naming them');
  });

  it('judges the updates the plist names like the list', () => {
    // Assembled in the layout of the recorded 13.3.1 plists with RecommendedUpdates entries filled in; the MSU_UPDATE
    // identifier is the one Macjutsu/super#151 logged for 13.6 (see the fixture README).
    const su = (entries: Record<string, string>[]) => {
      const dicts = entries.map((e) => `<dict>${Object.entries(e).map(([k, v]) => `<key>${k}</key><string>${v}</string>`).join('')}</dict>`);
      return [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<plist version="1.0">',
        '<dict>',
        '\t<key>LastSuccessfulDate</key>',
        '\t<date>2023-05-08T00:00:00Z</date>',
        '\t<key>LastRecommendedUpdatesAvailable</key>',
        `\t<integer>${String(entries.length)}</integer>`,
        '\t<key>RecommendedUpdates</key>',
        `\t<array>${dicts.join('')}</array>`,
        '</dict>',
        '</plist>',
      ].join('\n');
    };
    const clt = { 'Display Name': 'Command Line Tools for Xcode', 'Display Version': '14.3' };
    expect(judgeDarwinPatches(undefined, su([clt]), '13.5.2', now, 30)).toMatchObject({
      status: 'pass',
      evidence: { pending: [], otherUpdates: ['Command Line Tools for Xcode 14.3'] },
    });
    const msu = 'MSU_UPDATE_22G120_patch_13.6_minor';
    const ventura = { 'Display Name': 'macOS Ventura 13.6', 'Display Version': '13.6', Identifier: msu };
    expect(judgeDarwinPatches(undefined, su([clt, ventura]), '13.5.2', now, 30)).toMatchObject({
      status: 'fail',
      evidence: { pending: ['macOS Ventura 13.6 13.6'], otherUpdates: ['Command Line Tools for Xcode 14.3'] },
    });
    // Without a Display Name the Identifier alone is not judged: counted, not named.
    expect(judgeDarwinPatches(undefined, su([{ Identifier: msu }]), '13.5.2', now, 30).status).toBe('unknown');
  });
});

describe('auto-updates, xprotect, ssh-server, guest-account, edr-running', () => {
  const su = fixture('plists/SoftwareUpdate-13.3.1-no-updates.plist');

  it('treats absent keys as Apple defaults and lets a profile override', () => {
    expect(judgeDarwinAutoUpdates(posture({ softwareUpdate: su })).status).toBe('pass');
    const off = judgeDarwinAutoUpdates(posture({ softwareUpdate: su, softwareUpdateManaged: plist({ CriticalUpdateInstall: false }) }));
    expect(off).toMatchObject({ status: 'fail', evidence: { CriticalUpdateInstall: false, managedByProfile: true } });
    expect(judgeDarwinAutoUpdates(posture()).status).toBe('unknown');
  });

  it('needs XProtect present with definition updates on', () => {
    const xp = plist({ CFBundleShortVersionString: '2192', CFBundleIdentifier: 'com.apple.XProtectFramework.plugin-bundle' });
    expect(judgeXprotect(posture({ xprotect: xp, softwareUpdate: su })).status).toBe('pass');
    expect(judgeXprotect(posture({ xprotect: xp, softwareUpdate: su, softwareUpdateManaged: plist({ ConfigDataInstall: false }) })).status).toBe('fail');
    expect(judgeXprotect(posture({ softwareUpdate: su })).status).toBe('fail');
  });

  it('reports the XProtect that macOS 15 scans with, not the older CoreServices copy', () => {
    // Plists assembled with the helper; the two locations and versions 5273/5274 side by side on one Sequoia Mac
    // are as described by eclecticlight.co ("How XProtect has changed in macOS Sequoia") and seen in the
    // XprotectService log of osquery/osquery#8573 ("Using meta-plist from: /var/protected/xprotect/...").
    const bundle = (v: string): string => plist({ CFBundleShortVersionString: v });
    const sequoia = judgeXprotect(posture({ xprotect: bundle('5273'), xprotectProtected: bundle('5274'), softwareUpdate: su }));
    expect(sequoia).toMatchObject({
      status: 'pass',
      evidence: { xprotectVersion: '5274', xprotectSource: '/var/protected/xprotect', xprotectCoreServicesVersion: '5273' },
      reason: 'XProtect 5274 with automatic definition updates',
    });
    // A Sequoia Mac whose protected copy is missing still scans with the CoreServices copy.
    expect(judgeXprotect(posture({ xprotect: bundle('5273'), softwareUpdate: su })).evidence).toMatchObject({
      xprotectVersion: '5273',
      xprotectSource: 'CoreServices',
    });
    expect(judgeXprotect(posture({ xprotectProtected: bundle('5274'), softwareUpdate: su })).status).toBe('pass');
  });

  it('reads Remote Login from launchd and listeners', () => {
    expect(judgeRemoteLogin(posture({ sshdLaunchd: '"com.openssh.sshd" => disabled', tcpListeners: '' })).status).toBe('pass');
    expect(judgeRemoteLogin(posture({ sshdLaunchd: '"com.openssh.sshd" => enabled' })).status).toBe('fail');
    expect(judgeRemoteLogin(posture({ tcpListeners: 'tcp4 0 0 *.22 *.* LISTEN' })).status).toBe('fail');
    expect(judgeRemoteLogin(posture()).status).toBe('unknown');
  });

  it('reads GuestEnabled', () => {
    expect(judgeDarwinGuest(posture({ loginwindow: plist({ GuestEnabled: true }) })).status).toBe('fail');
    expect(judgeDarwinGuest(posture({ loginwindow: plist({ lastUserName: 'jdoe' }) })).status).toBe('pass');
    expect(judgeDarwinGuest(posture({ loginwindow: plist({ GuestEnabled: true }), loginwindowManaged: plist({ GuestEnabled: false }) })).status).toBe('pass');
  });

  it('finds known EDR agents by process name', () => {
    expect(judgeDarwinEdr('launchd\nfalcond\nFinder\n')).toMatchObject({ status: 'pass', evidence: { products: ['CrowdStrike Falcon'] } });
    expect(judgeDarwinEdr('launchd\nFinder\n').status).toBe('fail');
    expect(judgeDarwinEdr(null).status).toBe('unknown');
  });
});

describe('collectors run the posture probe once per scan', () => {
  it('shares one probe run between all checks and validates its contract', async () => {
    let runs = 0;
    const out = JSON.stringify(
      posture({
        productVersion: '15.1',
        fdesetupStatus: fixture('fdesetup/on.txt'),
        csrutilStatus: fixture('csrutil/enabled.txt'),
        spctlStatus: fixture('spctl/enabled.txt'),
      }),
    );
    const ctx: CollectContext = {
      facts: new FactStore(60_000),
      thresholds,
      signal: new AbortController().signal,
      run: (cmd, args) => {
        expect(cmd).toBe('/bin/sh');
        if (args[0]?.endsWith('posture.sh')) runs++;
        return Promise.resolve({ code: 0, stdout: args[0]?.endsWith('posture.sh') ? out : '{}', stderr: '' });
      },
      readFile: () => Promise.reject(new Error('unused')),
      readdir: () => Promise.resolve([]),
      env: {},
      now: () => new Date(),
    };
    const results = await Promise.all(
      ['disk-encryption', 'not-rooted', 'gatekeeper', 'os-version'].map((id) => darwinChecks[id]?.collect(ctx) ?? Promise.reject(new Error(id))),
    );
    expect(results.map((r) => r.status)).toEqual(['pass', 'pass', 'pass', 'pass']);
    expect(runs).toBe(1);
  });
});

describe('device facts', () => {
  it('maps system_profiler JSON', () => {
    const hardware: unknown = JSON.parse(fixture('system_profiler/hardware-m2-macbookpro.json'));
    const device = darwinDeviceSchema.parse({ probeVersion: 1, productVersion: '14.4.1', buildVersion: '23E224', hardware });
    const facts = darwinDeviceFactsFrom(device, { hostname: 'mbp', arch: 'arm64', kernel: '23.4.0', user: 'jdoe' });
    expect(facts).toEqual({
      hostname: 'mbp',
      platform: 'darwin',
      arch: 'arm64',
      os: { name: 'macOS 14.4.1', id: 'macos', version: '14.4.1', kernel: '23.4.0' },
      hardware: { vendor: 'Apple', model: 'Mac14,7', serial: 'D5XQV1FMFJ', uuid: 'D26E7BC6-425E-51C2-87C5-0B902782B60D' },
      user: 'jdoe',
    });
    const vm: unknown = JSON.parse(fixture('system_profiler/hardware-vm-15.json'));
    expect(darwinDeviceFactsFrom(darwinDeviceSchema.parse({ probeVersion: 1, productVersion: null, buildVersion: null, hardware: vm }), {
      hostname: 'vm', arch: 'arm64', kernel: '24.0.0', user: null,
    }).hardware.serial).toBe('ZNNF3941VQ');
  });

  it('leaves hardware null when the probe failed', () => {
    expect(darwinDeviceFactsFrom(undefined, { hostname: 'h', arch: 'x64', kernel: 'k', user: null }).hardware).toEqual({
      vendor: 'Apple', model: null, serial: null, uuid: null,
    });
  });
});
