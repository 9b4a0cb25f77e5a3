/**
 * Shared bits of the macOS remediation content. Ventura (13) renamed System Preferences to System Settings and
 * moved every pane, so most checks carry two guides: the first matching one is shown (see RemediationGuide).
 */
export const VENTURA = { minOsVersion: '13' } as const;
