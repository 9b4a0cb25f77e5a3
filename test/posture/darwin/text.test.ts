import { describe, expect, it } from 'vitest';
import {
  parseCsrutilStatus,
  parseFdesetupStatus,
  parseFirewallGlobalState,
  parseNetstatListeningPorts,
  parseProfilesEnrollment,
  parseSoftwareUpdateList,
  parseSpctlStatus,
  parseSshdLaunchd,
  parseStealthMode,
  parseSysadminctlScreenLock,
} from '../../../src/posture/darwin/text.js';
import { fixture } from './helpers.js';

describe('parseFdesetupStatus', () => {
  it.each([
    ['on.txt', { state: 'on', percent: null, deferred: false }],
    ['off.txt', { state: 'off', percent: null, deferred: false }],
    ['deferred.txt', { state: 'off', percent: null, deferred: true }],
    ['encrypting.txt', { state: 'encrypting', percent: 42, deferred: false }],
    ['encrypting-pending.txt', { state: 'encrypting', percent: null, deferred: false }],
    ['decrypting.txt', { state: 'decrypting', percent: 73, deferred: false }],
  ])('%s', (file, expected) => {
    expect(parseFdesetupStatus(fixture(`fdesetup/${file}`))).toEqual(expected);
  });

  it('is unknown for an error message', () => {
    expect(parseFdesetupStatus('Error: unable to get status').state).toBe('unknown');
  });
});

describe('parseCsrutilStatus', () => {
  it('reads a fully enabled SIP', () => {
    expect(parseCsrutilStatus(fixture('csrutil/enabled.txt'))).toEqual({ status: 'enabled', custom: false, disabledProtections: [] });
  });

  it('sees through "enabled (Custom Configuration)" with every protection off (10.11)', () => {
    const sip = parseCsrutilStatus(fixture('csrutil/custom-enabled-10.11.txt'));
    expect(sip?.status).toBe('enabled');
    expect(sip?.custom).toBe(true);
    expect(sip?.disabledProtections).toEqual([
      'Kext Signing',
      'Filesystem Protections',
      'Debugging Restrictions',
      'DTrace Restrictions',
      'NVRAM Protections',
    ]);
  });

  it('lists only the protections that are off in a partial configuration', () => {
    expect(parseCsrutilStatus(fixture('csrutil/custom-unknown-partial.txt'))?.disabledProtections).toEqual([
      'Kext Signing',
      'Filesystem Protections',
    ]);
    expect(parseCsrutilStatus(fixture('csrutil/custom-unknown-10.15.txt'))?.status).toBe('unknown');
  });

  it('reads the ten-protection layout of Apple silicon Macs, including hyphenated names', () => {
    expect(parseCsrutilStatus(fixture('csrutil/custom-unknown-apple-silicon-12.5.txt'))).toEqual({
      status: 'unknown',
      custom: true,
      disabledProtections: [
        'Filesystem Protections',
        'Debugging Restrictions',
        'NVRAM Protections',
        'Boot-arg Restrictions',
        'Kernel Integrity Protections',
      ],
    });
  });

  it('returns undefined for unrelated text', () => {
    expect(parseCsrutilStatus('csrutil: command not found')).toBeUndefined();
  });
});

describe('firewall, Gatekeeper, MDM, screen lock', () => {
  it('reads socketfilterfw global states 0, 1 and 2 (macOS 15 wording)', () => {
    expect(parseFirewallGlobalState(fixture('socketfilterfw/global-off.txt'))).toBe(0);
    expect(parseFirewallGlobalState(fixture('socketfilterfw/global-on.txt'))).toBe(1);
    expect(parseFirewallGlobalState(fixture('socketfilterfw/global-block-all-15.txt'))).toBe(2);
    expect(parseFirewallGlobalState('Firewall is enabled.')).toBe(1);
  });

  it('reads both stealth-mode wordings', () => {
    expect(parseStealthMode('Stealth mode enabled')).toBe(true);
    expect(parseStealthMode('Firewall stealth mode is off')).toBe(false);
  });

  it('reads spctl --status', () => {
    expect(parseSpctlStatus(fixture('spctl/enabled.txt'))).toBe(true);
    expect(parseSpctlStatus(fixture('spctl/disabled.txt'))).toBe(false);
  });

  it('reads profiles status -type enrollment', () => {
    expect(parseProfilesEnrollment(fixture('profiles/dep-user-approved-11.txt'))).toEqual({
      dep: true,
      enrolled: true,
      userApproved: true,
      server: 'https://MDMSERVER:8443/mdm/ServerURL',
    });
    expect(parseProfilesEnrollment('Enrolled via DEP: No\nMDM enrollment: No\n')).toMatchObject({ dep: false, enrolled: false });
  });

  it('reads sysadminctl -screenLock status', () => {
    expect(parseSysadminctlScreenLock(fixture('sysadminctl/immediate.txt'))).toEqual({ passwordRequired: true, delaySeconds: 0 });
    expect(parseSysadminctlScreenLock(fixture('sysadminctl/300.txt'))).toEqual({ passwordRequired: true, delaySeconds: 300 });
    expect(parseSysadminctlScreenLock(fixture('sysadminctl/off.txt'))).toEqual({ passwordRequired: false });
    expect(parseSysadminctlScreenLock('screenLock delay is -1.000000 seconds')).toEqual({ passwordRequired: false });
    // The full NSLog prefix (date, time, process[pid:thread]) as macOS 14.8.7 prints it.
    expect(parseSysadminctlScreenLock(fixture('sysadminctl/immediate-14.8.7.txt'))).toEqual({ passwordRequired: true, delaySeconds: 0 });
  });
});

describe('parseSoftwareUpdateList', () => {
  it('lists updates with their recommended and restart flags', () => {
    const list = parseSoftwareUpdateList(fixture('softwareupdate/ventura-pre-13.6-pending.txt'), '');
    expect(list).toEqual({
      state: 'pending',
      updates: [
        { label: 'Safari17.0VenturaAuto-17.0', title: 'Safari', recommended: true, restart: false },
        { label: 'macOS Ventura 13.6-22G120', title: 'macOS Ventura 13.6', recommended: true, restart: true },
        { label: 'macOS Sonoma 14.0-23A344', title: 'macOS Sonoma 14.0', recommended: true, restart: true },
      ],
    });
    expect(parseSoftwareUpdateList(fixture('softwareupdate/ventura-13.7-pending.txt'), '').state).toBe('pending');
  });

  it('reads a Sonoma list whose detail lines are indented with spaces, not a tab', () => {
    expect(parseSoftwareUpdateList(fixture('softwareupdate/sonoma-14.7.2-and-sequoia-15.2-pending.txt'), '')).toEqual({
      state: 'pending',
      updates: [
        { label: 'Safari18.2SonomaAuto-18.2', title: 'Safari', recommended: true, restart: false },
        { label: 'Command Line Tools for Xcode-16.2', title: 'Command Line Tools for Xcode', recommended: true, restart: false },
        { label: 'macOS Sonoma 14.7.2-23H311', title: 'macOS Sonoma 14.7.2', recommended: true, restart: true },
        { label: 'macOS Sequoia 15.2-24C101', title: 'macOS Sequoia 15.2', recommended: true, restart: true },
      ],
    });
  });

  it('reads a Rapid Security Response entry, whose label and title carry a "(a)" suffix', () => {
    expect(parseSoftwareUpdateList(fixture('softwareupdate/ventura-13.2-rsr-pending.txt'), '')).toEqual({
      state: 'pending',
      updates: [
        {
          label: 'macOS Security Response 13.2 (a)-22D7750270d',
          title: 'macOS Security Response 13.2 (a)',
          recommended: true,
          restart: true,
        },
      ],
    });
  });

  it('says none only when softwareupdate says so, and unknown otherwise (offline)', () => {
    expect(parseSoftwareUpdateList(fixture('softwareupdate/none.txt'), '')).toEqual({ state: 'none' });
    expect(parseSoftwareUpdateList('Software Update Tool\n\nFinding available software\n', '')).toEqual({ state: 'unknown' });
  });
});

describe('Remote Login signals', () => {
  it('reads both launchd formats', () => {
    expect(parseSshdLaunchd('\t"com.openssh.sshd" => disabled')).toBe('disabled');
    expect(parseSshdLaunchd('\t"com.openssh.sshd" => enabled')).toBe('enabled');
    expect(parseSshdLaunchd('\t"com.openssh.sshd" => true')).toBe('disabled');
    expect(parseSshdLaunchd('\t"com.openssh.sshd" => false')).toBe('enabled');
  });

  it('finds listening ports in netstat -anv lines', () => {
    const text = [
      'tcp4       0      0  *.22                   *.*                    LISTEN      131072 131072    123      0 0x0100 0x00000006',
      'tcp6       0      0  *.5000                 *.*                    LISTEN      131072 131072    456      0 0x0100 0x00000006',
      'tcp4       0      0  192.168.1.5.52100      17.57.146.20.5223      ESTABLISHED 131072 131072    789      0 0x0102 0x00000000',
    ].join('\n');
    expect(parseNetstatListeningPorts(text)).toEqual([22, 5000]);
  });
});
