/**
 * Shared bits of the Windows remediation content. Guides compare DeviceContext.osVersion, which on Windows is
 * "10.0.<build>": build 22000 is the first Windows 11, whose Settings app is laid out differently from 10's.
 */
export const WINDOWS_11 = { minOsVersion: '10.0.22000' } as const;
