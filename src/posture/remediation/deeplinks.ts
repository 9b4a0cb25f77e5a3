import type { Platform } from '../types.js';

/** How to open a settings page: a URL for the OS's URL handler, or a program with fixed arguments. */
export type DeepLinkTarget = { kind: 'url'; url: string } | { kind: 'command'; argv: readonly string[] };

export interface DeepLink {
  platform: Platform;
  target: DeepLinkTarget;
}

/**
 * The allow-list: remediation content names a key, and only these targets can ever be opened. The tray
 * refuses anything else, so a compromised policy or server cannot make it launch arbitrary URLs.
 */
export const DEEP_LINKS = {
  'gnome-privacy': { platform: 'linux', target: { kind: 'command', argv: ['gnome-control-center', 'privacy'] } },
  'gnome-power': { platform: 'linux', target: { kind: 'command', argv: ['gnome-control-center', 'power'] } },
  'gnome-sharing': { platform: 'linux', target: { kind: 'command', argv: ['gnome-control-center', 'sharing'] } },
  'gnome-software-updates': { platform: 'linux', target: { kind: 'command', argv: ['gnome-software', '--mode=updates'] } },
  'kde-screenlocker': { platform: 'linux', target: { kind: 'command', argv: ['systemsettings', 'kcm_screenlocker'] } },
  'kde-firewall': { platform: 'linux', target: { kind: 'command', argv: ['systemsettings', 'kcm_firewall'] } },
  'kde-updates': { platform: 'linux', target: { kind: 'command', argv: ['plasma-discover', '--mode', 'update'] } },
  gufw: { platform: 'linux', target: { kind: 'command', argv: ['gufw'] } },
  'firewall-config': { platform: 'linux', target: { kind: 'command', argv: ['firewall-config'] } },
} as const satisfies Record<string, DeepLink>;

export type DeepLinkKey = keyof typeof DEEP_LINKS;

export function resolveDeepLink(key: string): DeepLink | undefined {
  return Object.hasOwn(DEEP_LINKS, key) ? DEEP_LINKS[key as DeepLinkKey] : undefined;
}
