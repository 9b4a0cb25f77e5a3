import { describe, expect, it } from 'vitest';
import { cleanDmi, desktopFromXdg, linuxDeviceContext, parseLoginctlSessions } from '../../../src/posture/linux/device.js';
import { FactStore } from '../../../src/posture/facts.js';

describe('device facts helpers', () => {
  it('drops firmware placeholders', () => {
    expect(cleanDmi('To Be Filled By O.E.M.\n')).toBeNull();
    expect(cleanDmi('ThinkPad X1 Carbon Gen 11\n')).toBe('ThinkPad X1 Carbon Gen 11');
    expect(cleanDmi(null)).toBeNull();
  });

  it('picks the seat session user from loginctl', () => {
    const out = '      3 1000 alice seat0 tty2\n      c1  120 gdm   seat0 tty1\n     12 1001 bob          pts/0\n';
    expect(parseLoginctlSessions(out)).toBe('alice');
    expect(parseLoginctlSessions('     12 1001 bob\n')).toBeNull();
  });

  it('reads XDG_CURRENT_DESKTOP lists', () => {
    expect(desktopFromXdg('ubuntu:GNOME')).toBe('gnome');
    expect(desktopFromXdg('KDE')).toBe('kde');
    expect(desktopFromXdg('XFCE')).toBeUndefined();
    expect(desktopFromXdg(undefined)).toBeUndefined();
  });

  it('builds the remediation context from os-release and the desktop', async () => {
    const dc = await linuxDeviceContext({
      facts: new FactStore(1000),
      readFile: () => Promise.resolve('NAME="Fedora Linux"\nID=fedora\nVERSION_ID=41\n'),
      env: { XDG_CURRENT_DESKTOP: 'KDE' },
    });
    expect(dc).toEqual({ platform: 'linux', desktop: 'kde', distroFamily: 'fedora', osVersion: '41' });
  });
});
