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
  // macOS: x-apple.systempreferences URLs. The pane ids of System Settings (13+) differ from those of System
  // Preferences (12 and earlier); the com.apple.preference.security anchors work in both.
  'macos-filevault': { platform: 'darwin', target: { kind: 'url', url: 'x-apple.systempreferences:com.apple.preference.security?FileVault' } },
  'macos-firewall': { platform: 'darwin', target: { kind: 'url', url: 'x-apple.systempreferences:com.apple.Network-Settings.extension?Firewall' } },
  'macos-firewall-legacy': { platform: 'darwin', target: { kind: 'url', url: 'x-apple.systempreferences:com.apple.preference.security?Firewall' } },
  'macos-security-general': { platform: 'darwin', target: { kind: 'url', url: 'x-apple.systempreferences:com.apple.preference.security?General' } },
  'macos-lock-screen': { platform: 'darwin', target: { kind: 'url', url: 'x-apple.systempreferences:com.apple.Lock-Screen-Settings.extension' } },
  'macos-software-update': { platform: 'darwin', target: { kind: 'url', url: 'x-apple.systempreferences:com.apple.Software-Update-Settings.extension' } },
  'macos-software-update-legacy': { platform: 'darwin', target: { kind: 'url', url: 'x-apple.systempreferences:com.apple.preferences.softwareupdate' } },
  'macos-sharing': { platform: 'darwin', target: { kind: 'url', url: 'x-apple.systempreferences:com.apple.Sharing-Settings.extension' } },
  'macos-sharing-legacy': { platform: 'darwin', target: { kind: 'url', url: 'x-apple.systempreferences:com.apple.preferences.sharing?Services_RemoteLogin' } },
  'macos-users': { platform: 'darwin', target: { kind: 'url', url: 'x-apple.systempreferences:com.apple.Users-Groups-Settings.extension' } },
  'macos-users-legacy': { platform: 'darwin', target: { kind: 'url', url: 'x-apple.systempreferences:com.apple.preferences.users' } },
  'macos-profiles': { platform: 'darwin', target: { kind: 'url', url: 'x-apple.systempreferences:com.apple.preferences.configurationprofiles' } },
  // Windows: ms-settings: and windowsdefender: URIs, plus two Control Panel applets that have no URI.
  'windows-update': { platform: 'win32', target: { kind: 'url', url: 'ms-settings:windowsupdate' } },
  'windows-update-options': { platform: 'win32', target: { kind: 'url', url: 'ms-settings:windowsupdate-options' } },
  'windows-virus-protection': { platform: 'win32', target: { kind: 'url', url: 'windowsdefender://threat' } },
  'windows-firewall': { platform: 'win32', target: { kind: 'url', url: 'windowsdefender://network' } },
  'windows-device-security': { platform: 'win32', target: { kind: 'url', url: 'windowsdefender://devicesecurity' } },
  'windows-lock-screen': { platform: 'win32', target: { kind: 'url', url: 'ms-settings:lockscreen' } },
  'windows-signin-options': { platform: 'win32', target: { kind: 'url', url: 'ms-settings:signinoptions' } },
  'windows-work-access': { platform: 'win32', target: { kind: 'url', url: 'ms-settings:workplace' } },
  'windows-other-users': { platform: 'win32', target: { kind: 'url', url: 'ms-settings:otherusers' } },
  'windows-recovery': { platform: 'win32', target: { kind: 'url', url: 'ms-settings:recovery' } },
  'windows-device-encryption': { platform: 'win32', target: { kind: 'url', url: 'ms-settings:deviceencryption' } },
  'windows-bitlocker': { platform: 'win32', target: { kind: 'command', argv: ['control.exe', '/name', 'Microsoft.BitLockerDriveEncryption'] } },
  'windows-uac': { platform: 'win32', target: { kind: 'command', argv: ['UserAccountControlSettings.exe'] } },
} as const satisfies Record<string, DeepLink>;

export type DeepLinkKey = keyof typeof DEEP_LINKS;

export function resolveDeepLink(key: string): DeepLink | undefined {
  return Object.hasOwn(DEEP_LINKS, key) ? DEEP_LINKS[key as DeepLinkKey] : undefined;
}
