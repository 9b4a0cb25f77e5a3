import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers.js';
import { coerceRegistryValues, parseRegQuery, readManagedSettings as readWin32 } from '../../src/config/managed-win32.js';
import { readManagedSettings as readDarwin } from '../../src/config/managed-darwin.js';
import { configSchema } from '../../src/config/schema.js';
import type { ExecResult } from '../../src/posture/exec.js';

const reg = (name: string): string => readFileSync(join(ROOT, 'test', 'fixtures', 'win32', 'reg', name), 'utf8');

describe('parseRegQuery', () => {
  it('parses real `reg query /s` output into nested keys with typed values', () => {
    const tree = parseRegQuery(reg('windowsupdate-policy.txt'), 'HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Windows\\WindowsUpdate');
    expect(tree).toEqual({
      WUServer: 'https://wsus.logging.htb:8531',
      AcceptTrustedPublisherCerts: 1,
      SetProxyBehaviorForUpdateDetection: 0,
      WUStatusServer: 'https://wsus.logging.htb:8531',
      UpdateServiceUrlAlternate: 'https://wsus.logging.htb:8531',
      AU: {
        AUOptions: 4,
        NoAutoUpdate: 0,
        AutomaticMaintenanceEnabled: 1,
        ScheduledInstallDay: 0,
        ScheduledInstallEveryWeek: 1,
        ScheduledInstallTime: 3,
        UseWUServer: 1,
      },
    });
  });

  it('handles CRLF, zero-padded DWORDs, a localized default value and REG_MULTI_SZ', () => {
    const root = 'HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Vigil';
    expect(parseRegQuery(reg('vigil-policy-de.txt'), root)).toEqual({ logLevel: 'debug', scan: { intervalSeconds: 600, concurrency: 2 } });
    expect(parseRegQuery(`${root}\r\n    list    REG_MULTI_SZ    a\\0b\r\n    empty    REG_SZ    \r\n`, root)).toEqual({ list: ['a', 'b'], empty: '' });
  });

  it('keeps values the config schema accepts', () => {
    const values = coerceRegistryValues(parseRegQuery(reg('vigil-policy-de.txt'), 'HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Vigil'));
    expect(configSchema.parse(values).scan).toMatchObject({ intervalSeconds: 600, concurrency: 2 });
  });
});

describe('readManagedSettings (Windows)', () => {
  it('reads HKCU then HKLM so machine policy wins, and skips missing keys', async () => {
    const calls: string[] = [];
    const exec = (cmd: string, args: readonly string[]): Promise<ExecResult> => {
      calls.push(`${cmd} ${args.join(' ')}`);
      if (args[1]?.startsWith('HKEY_CURRENT_USER')) return Promise.resolve({ code: 1, stdout: '', stderr: 'FEHLER: Der angegebene Registrierungsschlüssel wurde nicht gefunden.' });
      return Promise.resolve({ code: 0, stdout: reg('vigil-policy-de.txt'), stderr: '' });
    };
    const layers = await readWin32({ exec });
    expect(calls).toEqual([
      'reg.exe query HKEY_CURRENT_USER\\SOFTWARE\\Policies\\Vigil /s',
      'reg.exe query HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Vigil /s',
    ]);
    expect(layers).toEqual([
      { source: 'HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Vigil (Group Policy / MDM)', values: { logLevel: 'debug', scan: { intervalSeconds: 600, concurrency: 2 } } },
    ]);
  });
});

describe('readManagedSettings (macOS)', () => {
  it('reads the per-user then the machine plist through plutil, dropping Payload keys', async () => {
    const calls: string[][] = [];
    const exec = (cmd: string, args: readonly string[]): Promise<ExecResult> => {
      calls.push([cmd, ...args]);
      if (args[4]?.includes('/jdoe/')) return Promise.resolve({ code: 1, stdout: '', stderr: 'file does not exist' });
      const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0">\n<dict>\n\t<key>PayloadUUID</key>\n\t<string>X</string>\n\t<key>logLevel</key>\n\t<string>warn</string>\n\t<key>scan</key>\n\t<dict>\n\t\t<key>intervalSeconds</key>\n\t\t<integer>120</integer>\n\t</dict>\n</dict>\n</plist>\n`;
      return Promise.resolve({ code: 0, stdout: xml, stderr: '' });
    };
    const layers = await readDarwin({ user: 'jdoe', exec });
    expect(calls.map((c) => c[5])).toEqual([
      '/Library/Managed Preferences/jdoe/com.vigil.agent.plist',
      '/Library/Managed Preferences/com.vigil.agent.plist',
    ]);
    expect(calls[0]?.slice(0, 4)).toEqual(['/usr/bin/plutil', '-convert', 'xml1', '-o']);
    expect(layers).toEqual([
      { source: '/Library/Managed Preferences/com.vigil.agent.plist (configuration profile)', values: { logLevel: 'warn', scan: { intervalSeconds: 120 } } },
    ]);
  });

  it('returns nothing where plutil does not exist (this Linux machine)', async () => {
    expect(await readDarwin({ user: 'nobody' })).toEqual([]);
  });
});
