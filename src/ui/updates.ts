import type { LoadedConfig } from '../config/load.js';

/** Whether the tray updates itself, and why: the About box and the log say which. */
export type UpdatePlan = { enabled: true; feedUrl: string; checkIntervalMs: number } | { enabled: false; reason: string };

/**
 * An MDM-managed device gets its updates from the MDM, which must stay the one to decide what runs: a
 * tray that replaced itself would race it and could run a version the admin never approved. So updates
 * are off wherever managed settings exist unless they themselves turn updates on, and off without a feed.
 */
export function updatePlan(loaded: Pick<LoadedConfig, 'config' | 'managed'>): UpdatePlan {
  const u = loaded.config.updates;
  if (u.enabled === false) return { enabled: false, reason: loaded.managed.has('updates.enabled') ? 'turned off by managed settings' : 'turned off (updates.enabled)' };
  if (u.enabled === undefined && loaded.managed.size > 0) return { enabled: false, reason: 'the device is managed: its MDM updates Vigil' };
  if (u.feedUrl === undefined) return { enabled: false, reason: 'no update feed configured (updates.feedUrl)' };
  return { enabled: true, feedUrl: u.feedUrl.endsWith('/') ? u.feedUrl : `${u.feedUrl}/`, checkIntervalMs: u.checkIntervalHours * 3_600_000 };
}

/** The part of electron-updater's AppUpdater the tray sets; typed here so the settings are tested without Electron. */
export interface UpdaterSettings {
  autoDownload: boolean;
  autoInstallOnAppQuit: boolean;
  allowDowngrade: boolean;
  allowPrerelease: boolean;
  setFeedURL(options: { provider: 'generic'; url: string; useMultipleRangeRequest?: boolean }): void;
}

/**
 * Background download of what the feed offers, installed on the next restart (or "Restart to update").
 * Every download is checked against the sha512 the feed's latest*.yml names before it is used (electron-updater
 * always does this); on Windows the installer's Authenticode signer must also match build.win.publisherName
 * in package.json, so an unsigned or foreign installer is refused. Never a downgrade or a prerelease.
 */
export function configureUpdater(updater: UpdaterSettings, plan: Extract<UpdatePlan, { enabled: true }>): void {
  updater.autoDownload = true;
  updater.autoInstallOnAppQuit = true;
  updater.allowDowngrade = false;
  updater.allowPrerelease = false;
  updater.setFeedURL({ provider: 'generic', url: plan.feedUrl });
}
