import type { Platform } from '../types.js';

export type Desktop = 'gnome' | 'kde';
export type DistroFamily = 'debian' | 'fedora' | 'suse' | 'arch';

/** What the agent knows about the device when it chooses which instructions to show. */
export interface DeviceContext {
  platform: Platform;
  desktop?: Desktop;
  distroFamily?: DistroFamily;
  /** macOS product version or Windows build, for guides that differ between releases. */
  osVersion?: string;
}

export interface RemediationGuide {
  /** When this guide applies; a field left out matches anything. The first matching guide is shown. */
  when?: { desktop?: Desktop; distroFamily?: DistroFamily; minOsVersion?: string; maxOsVersion?: string };
  /** Short label for the variant, e.g. "GNOME" or "Fedora / RHEL". */
  label: string;
  steps: readonly string[];
  /** Key of an entry in DEEP_LINKS that opens the right settings page. */
  deepLink?: string;
  /** The user cannot do this alone: it needs an administrator password or IT. */
  needsAdmin: boolean;
}

export interface Remediation {
  guides: readonly RemediationGuide[];
}

export type RemediationTable = Readonly<Record<string, Remediation>>;
