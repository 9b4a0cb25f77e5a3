import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { autostartPath, desktopEntry, quoteExecArg } from '../../src/ui/autostart.js';
import { tempDir } from '../helpers.js';

const VALIDATOR = '/usr/bin/desktop-file-validate';

describe('XDG autostart entry', () => {
  it('lives in $XDG_CONFIG_HOME/autostart, or ~/.config/autostart', () => {
    expect(autostartPath({ XDG_CONFIG_HOME: '/x/cfg' }, '/home/u')).toBe('/x/cfg/autostart/vigil.desktop');
    expect(autostartPath({}, '/home/u')).toBe('/home/u/.config/autostart/vigil.desktop');
    expect(autostartPath({ XDG_CONFIG_HOME: '' }, '/home/u')).toBe('/home/u/.config/autostart/vigil.desktop');
  });

  it('starts the tray hidden', () => {
    const text = desktopEntry({ exec: ['/opt/Vigil/vigil', '--hidden'], icon: 'vigil' });
    expect(text).toBe(
      [
        '[Desktop Entry]',
        'Type=Application',
        'Version=1.0',
        'Name=Vigil',
        'Comment=Device security status',
        'Exec=/opt/Vigil/vigil --hidden',
        'Icon=vigil',
        'Terminal=false',
        'Categories=Utility;',
        'X-GNOME-Autostart-enabled=true',
        'X-GNOME-Autostart-Delay=5',
        '',
      ].join('\n'),
    );
  });

  it('quotes Exec arguments as the Desktop Entry spec says', () => {
    expect(quoteExecArg('/usr/bin/vigil')).toBe('/usr/bin/vigil');
    expect(quoteExecArg('/home/a b/Vigil.AppImage')).toBe('"/home/a b/Vigil.AppImage"');
    expect(quoteExecArg('a"b$c`d\\e')).toBe('"a\\"b\\$c\\`d\\\\e"');
    expect(quoteExecArg('100%')).toBe('100%%');
    expect(quoteExecArg('')).toBe('""');
  });

  it('keeps values on one line', () => {
    expect(desktopEntry({ exec: ['x'], name: 'A\nB' })).toContain('Name=A\\nB\n');
  });

  it('refuses an entry with nothing to run', () => {
    expect(() => desktopEntry({ exec: [] })).toThrow(/needs a program/);
  });

  it.skipIf(!existsSync(VALIDATOR))('passes desktop-file-validate (needs Debian desktop-file-utils)', () => {
    const dir = tempDir('vigil-autostart-');
    const file = join(dir, 'vigil.desktop');
    writeFileSync(file, desktopEntry({ exec: ['/home/a b/Vigil "x".AppImage', '--hidden', '--config', '/etc/v$1.json'], icon: 'vigil' }));
    // Exit 0 and no output: no errors, no warnings.
    expect(execFileSync(VALIDATOR, [file], { encoding: 'utf8' })).toBe('');
  });
});
