import { describe, expect, it } from 'vitest';
import { CHECKS } from '../../../src/posture/catalog.js';
import type { PlatformChecks } from '../../../src/posture/collector.js';
import { darwinChecks } from '../../../src/posture/darwin/index.js';
import { linuxChecks } from '../../../src/posture/linux/index.js';
import { win32Checks } from '../../../src/posture/win32/index.js';
import { DEEP_LINKS, resolveDeepLink } from '../../../src/posture/remediation/deeplinks.js';
import { englishMessages, localizeRemediation, remediationKey } from '../../../src/posture/remediation/i18n.js';
import { selectGuide } from '../../../src/posture/remediation/select.js';
import type { Platform } from '../../../src/posture/types.js';

const TABLES: Record<Platform, PlatformChecks> = { linux: linuxChecks, darwin: darwinChecks, win32: win32Checks };

const URL_SCHEMES = ['x-apple.systempreferences:', 'ms-settings:', 'windowsdefender:'];
const COMMANDS = ['gnome-control-center', 'gnome-software', 'systemsettings', 'plasma-discover', 'gufw', 'firewall-config', 'control.exe', 'UserAccountControlSettings.exe'];

describe('every check has a collector and remediation on every platform it runs on', () => {
  for (const platform of ['linux', 'darwin', 'win32'] as const) {
    it(platform, () => {
      const expected: string[] = CHECKS.filter((c) => (c.platforms as readonly string[]).includes(platform)).map((c) => c.id);
      const missing = expected.filter((id) => !TABLES[platform][id]);
      expect(missing).toEqual([]);
      // No collector for a check the catalog does not list on that platform.
      expect(Object.keys(TABLES[platform]).filter((id) => !expected.includes(id))).toEqual([]);
      for (const [id, check] of Object.entries(TABLES[platform])) {
        expect(check.remediation.guides.length, id).toBeGreaterThan(0);
        for (const g of check.remediation.guides) {
          expect(g.label, id).not.toBe('');
          expect(g.steps.length, `${id} / ${g.label}`).toBeGreaterThan(0);
          for (const step of g.steps) expect(step.trim(), id).not.toBe('');
        }
        // The last guide is the fallback: it must match any device.
        expect(check.remediation.guides.at(-1)?.when, `${platform} ${id}: last guide has no condition`).toBeUndefined();
      }
    });
  }

  it('every catalog entry has a one-sentence why', () => {
    for (const c of CHECKS) expect(c.why, c.id).toMatch(/^[A-Z].*\.$/);
  });
});

describe('deep links', () => {
  it('every deep link named in remediation is on the allow-list, for the same platform', () => {
    for (const [platform, table] of Object.entries(TABLES)) {
      for (const [id, check] of Object.entries(table)) {
        for (const g of check.remediation.guides) {
          if (g.deepLink === undefined) continue;
          const link = resolveDeepLink(g.deepLink);
          expect(link, `${platform} ${id}: ${g.deepLink}`).toBeDefined();
          expect(link?.platform, `${platform} ${id}: ${g.deepLink}`).toBe(platform);
        }
      }
    }
  });

  it('every allow-listed target uses an allowed URL scheme or program', () => {
    for (const [key, link] of Object.entries(DEEP_LINKS)) {
      const target = link.target;
      if (target.kind === 'url') expect(URL_SCHEMES.some((s) => target.url.startsWith(s)), key).toBe(true);
      else expect(COMMANDS, key).toContain(target.argv[0]);
    }
  });

  it('unknown keys and prototype names resolve to nothing', () => {
    expect(resolveDeepLink('constructor')).toBeUndefined();
    expect(resolveDeepLink('https://example.com')).toBeUndefined();
  });
});

describe('remediation i18n', () => {
  it('derives keys from position and extracts every English string', () => {
    const messages = englishMessages('darwin', darwinChecks);
    expect(messages[remediationKey('darwin', 'disk-encryption', 0, 'label')]).toBe('macOS 13 Ventura and later');
    expect(messages['remediation.darwin.disk-encryption.1.step.2']).toBe('Open Apple menu > System Preferences > Security & Privacy > FileVault.');
    const total = Object.values(darwinChecks).reduce((n, c) => n + c.remediation.guides.reduce((m, g) => m + 1 + g.steps.length, 0), 0);
    expect(Object.keys(messages)).toHaveLength(total);
  });

  it('translates what the catalog has and falls back to English for the rest', () => {
    const fw = win32Checks.firewall;
    if (!fw) throw new Error('win32 firewall check missing');
    const de = localizeRemediation('win32', 'firewall', fw.remediation, {
      'remediation.win32.firewall.0.step.1': 'Öffnen Sie Start > Windows-Sicherheit > Firewall- & Netzwerkschutz.',
    });
    expect(de.guides[0]?.steps[0]).toBe('Öffnen Sie Start > Windows-Sicherheit > Firewall- & Netzwerkschutz.');
    expect(de.guides[0]?.steps[1]).toBe(fw.remediation.guides[0]?.steps[1]);
    expect(de.guides[0]?.deepLink).toBe('windows-firewall');
  });

  it('picks the guide for the OS version: Ventura+ vs older macOS, Windows 11 vs 10', () => {
    const fv = darwinChecks['disk-encryption']?.remediation;
    const patch = win32Checks['os-patched']?.remediation;
    if (!fv || !patch) throw new Error('checks missing');
    expect(selectGuide(fv, { platform: 'darwin', osVersion: '14.5' })?.label).toBe('macOS 13 Ventura and later');
    expect(selectGuide(fv, { platform: 'darwin', osVersion: '12.7.4' })?.label).toBe('macOS 12 and earlier');
    expect(selectGuide(fv, { platform: 'darwin' })?.label).toBe('macOS 12 and earlier');
    expect(selectGuide(patch, { platform: 'win32', osVersion: '10.0.22631' })?.label).toBe('Windows 11');
    expect(selectGuide(patch, { platform: 'win32', osVersion: '10.0.19045' })?.label).toBe('Windows 10');
  });
});
