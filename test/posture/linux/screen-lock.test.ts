import { describe, expect, it } from 'vitest';
import {
  detectDesktop,
  judgeScreenLock,
  kdeLockSettings,
  parseGVariantBool,
  parseGVariantInt,
  screenLock,
} from '../../../src/posture/linux/screen-lock.js';
import { fakeContext, fixture, ok } from './fake-context.js';

const gs = (schema: string, key: string) => `gsettings get ${schema} ${key}`;
const gnomeCommands = (over: Partial<Record<'enabled' | 'idle' | 'delay', string>> = {}) => ({
  [gs('org.gnome.desktop.screensaver', 'lock-enabled')]: ok(fixture(`screen-lock/${over.enabled ?? 'gsettings-lock-enabled-default.txt'}`)),
  [gs('org.gnome.desktop.session', 'idle-delay')]: ok(fixture(`screen-lock/${over.idle ?? 'gsettings-idle-delay-default.txt'}`)),
  [gs('org.gnome.desktop.screensaver', 'lock-delay')]: ok(fixture(`screen-lock/${over.delay ?? 'gsettings-lock-delay-default.txt'}`)),
  [gs('org.gnome.desktop.lockdown', 'disable-lock-screen')]: ok(fixture('screen-lock/gsettings-disable-lock-screen-default.txt')),
});

describe('GVariant parsing', () => {
  it('reads recorded gsettings output', () => {
    expect(parseGVariantInt(fixture('screen-lock/gsettings-idle-delay-default.txt'))).toBe(300);
    expect(parseGVariantInt(fixture('screen-lock/gsettings-idle-delay-never.txt'))).toBe(0);
    expect(parseGVariantBool(fixture('screen-lock/gsettings-lock-enabled-default.txt'))).toBe(true);
    expect(parseGVariantBool(fixture('screen-lock/gsettings-lock-enabled-off.txt'))).toBe(false);
  });

  it('accepts bare int32 and @u forms and rejects other text', () => {
    expect(parseGVariantInt('42')).toBe(42);
    expect(parseGVariantInt('@u 60')).toBe(60);
    expect(parseGVariantInt("'300'")).toBeUndefined();
    expect(parseGVariantBool('yes')).toBeUndefined();
  });
});

describe('detectDesktop', () => {
  it('recognises GNOME, Ubuntu and KDE sessions and nothing at all', () => {
    expect(detectDesktop({ XDG_CURRENT_DESKTOP: 'ubuntu:GNOME' })?.desktop).toBe('gnome');
    expect(detectDesktop({ DESKTOP_SESSION: 'plasmawayland' })?.desktop).toBe('kde');
    expect(detectDesktop({ XDG_CURRENT_DESKTOP: 'KDE' })?.desktop).toBe('kde');
    expect(detectDesktop({ XDG_CURRENT_DESKTOP: 'XFCE' })).toEqual({ desktop: 'other', name: 'XFCE' });
    expect(detectDesktop({})).toBeUndefined();
  });
});

describe('KDE settings', () => {
  it('applies built-in defaults when there is no [Daemon] group', () => {
    expect(kdeLockSettings(fixture('screen-lock/kscreenlockerrc-airamek-defaults'), null)).toEqual({ desktop: 'kde', lockEnabled: true, idleSeconds: 300, lockDelaySeconds: 5 });
  });

  it('reads LockGrace, Timeout and Autolock', () => {
    expect(kdeLockSettings(fixture('screen-lock/kscreenlockerrc-richguk-lockgrace45'), null).lockDelaySeconds).toBe(45);
    expect(kdeLockSettings(fixture('screen-lock/kscreenlockerrc-kdefix-15min'), null)).toMatchObject({ idleSeconds: 900, lockDelaySeconds: 300 });
    expect(kdeLockSettings(fixture('screen-lock/kscreenlockerrc-chasinglogic-autolock-off'), null).lockEnabled).toBe(false);
  });

  it('lets a kiosk-locked system value win over the user file', () => {
    const system = '[Daemon]\nTimeout[$i]=2\n';
    expect(kdeLockSettings(fixture('screen-lock/kscreenlockerrc-kdefix-15min'), system).idleSeconds).toBe(120);
  });
});

describe('judgeScreenLock', () => {
  it('ignores a short grace period, as the desktops ship one (KDE: 5 min idle + 5 s grace passes 300 s)', () => {
    const kde = judgeScreenLock({ desktop: 'kde', lockEnabled: true, idleSeconds: 300, lockDelaySeconds: 5 }, 300);
    expect(kde).toMatchObject({ status: 'pass', evidence: { effectiveLockSeconds: 300 } });
    const gnome = judgeScreenLock({ desktop: 'gnome', lockEnabled: true, idleSeconds: 300, lockDelaySeconds: 30 }, 300);
    expect(gnome).toMatchObject({ status: 'pass', evidence: { effectiveLockSeconds: 300 } });
  });

  it('adds a longer grace period to the idle delay', () => {
    const obs = judgeScreenLock({ desktop: 'gnome', lockEnabled: true, idleSeconds: 300, lockDelaySeconds: 45 }, 300);
    expect(obs).toMatchObject({ status: 'fail', evidence: { effectiveLockSeconds: 345 } });
  });
});

describe('collector', () => {
  it('is unknown without a graphical session (this CI machine)', async () => {
    const ctx = fakeContext({ env: { HOME: '/root', PATH: '/usr/bin' } });
    expect(await screenLock.collect(ctx)).toEqual({ status: 'unknown', evidence: { desktop: null }, reason: 'no graphical session' });
    expect(ctx.ran).toEqual([]);
  });

  it('passes GNOME defaults (lock on, 300 s idle, no lock delay)', async () => {
    const obs = await screenLock.collect(fakeContext({ env: { XDG_CURRENT_DESKTOP: 'ubuntu:GNOME' }, commands: gnomeCommands() }));
    expect(obs).toMatchObject({ status: 'pass', evidence: { effectiveLockSeconds: 300 } });
  });

  it('fails GNOME when the screen never idles, when locking is off, or when 900 s exceeds the policy', async () => {
    const env = { XDG_CURRENT_DESKTOP: 'GNOME' };
    const never = await screenLock.collect(fakeContext({ env, commands: gnomeCommands({ idle: 'gsettings-idle-delay-never.txt' }) }));
    expect(never).toMatchObject({ status: 'fail', reason: 'the screen never goes idle, so it never locks' });
    const off = await screenLock.collect(fakeContext({ env, commands: gnomeCommands({ enabled: 'gsettings-lock-enabled-off.txt' }) }));
    expect(off).toMatchObject({ status: 'fail', reason: 'automatic screen lock is off' });
    const slow = await screenLock.collect(fakeContext({ env, commands: gnomeCommands({ idle: 'gsettings-idle-delay-900.txt', delay: 'gsettings-lock-delay-30.txt' }) }));
    expect(slow).toMatchObject({ status: 'fail', evidence: { effectiveLockSeconds: 900, maxSeconds: 300 } });
  });

  it('reads KDE settings from XDG_CONFIG_HOME', async () => {
    const ctx = fakeContext({
      env: { XDG_CURRENT_DESKTOP: 'KDE', HOME: '/home/u', XDG_CONFIG_HOME: '/cfg' },
      files: { '/cfg/kscreenlockerrc': fixture('screen-lock/kscreenlockerrc-chasinglogic-autolock-off') },
    });
    expect(await screenLock.collect(ctx)).toMatchObject({ status: 'fail', evidence: { desktop: 'kde', lockEnabled: false } });
  });
});
