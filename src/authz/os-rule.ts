import type { DeviceOs } from '../protocol/admin.js';
import { compareVersions } from '../util/version.js';

/**
 * ZTNA-style OS rules as admins write them: `macOS 13+`, `Windows 11`, `Ubuntu 22.04+`, `Debian 12`. A name
 * maps to the OS id the agent reports (os-release ID on Linux, `macos`, `windows`); `+` means that version
 * or newer, without it that version only (`13` is any 13.x).
 */
export interface OsRule {
  text: string;
  id: string;
  /** Inclusive lower bound. */
  min: string;
  /** Exclusive upper bound; null for "or newer". */
  below: string | null;
}

const ALIASES: Record<string, string> = { macos: 'macos', osx: 'macos', 'mac os': 'macos', windows: 'windows', win: 'windows' };

/**
 * Windows reports "10.0.<build>" for both 10 and 11; 11 starts at build 22000. Marketing names map to builds
 * so that "Windows 11" means what an admin expects.
 */
const WINDOWS: Record<string, { min: string; below: string }> = {
  '10': { min: '10.0.0', below: '10.0.22000' },
  '11': { min: '10.0.22000', below: '11' },
};

function nextMajor(v: string): string {
  const parts = v.split('.').map((p) => Number.parseInt(p, 10));
  // "22.04" only: the next version after the last given part ("22.05"); "13": "14".
  const last = parts.length - 1;
  parts[last] = (parts[last] ?? 0) + 1;
  return parts.join('.');
}

export function parseOsRule(text: string): OsRule | null {
  const m = /^\s*([A-Za-z][A-Za-z ]*?)\s+(\d+(?:\.\d+)*)(\+?)\s*$/.exec(text);
  if (!m) return null;
  const [, rawName = '', version = '', plus = ''] = m;
  const name = rawName.toLowerCase();
  const id = ALIASES[name] ?? name.replaceAll(' ', '');
  if (!/^[a-z0-9._-]+$/.test(id)) return null;
  if (id === 'windows') {
    const w = WINDOWS[version];
    if (!w) return null;
    return { text, id, min: w.min, below: plus === '+' ? null : w.below };
  }
  return { text, id, min: version, below: plus === '+' ? null : nextMajor(version) };
}

export function osMatches(rule: OsRule, os: DeviceOs | null): boolean {
  if (os?.version == null || os.id.toLowerCase() !== rule.id) return false;
  if (!/^\d+(\.\d+)*/.test(os.version)) return false;
  if (compareVersions(os.version, rule.min) < 0) return false;
  return rule.below === null || compareVersions(os.version, rule.below) < 0;
}
