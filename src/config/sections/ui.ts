import { z } from 'zod';

/** The `ui` section of config.json. Every key needs a default: a fresh install runs with no config file. */
export const uiConfigSchema = z.strictObject({
  /** MDM sets this to false so employees cannot switch posture reporting off from the tray. */
  allowQuit: z.boolean().default(true),
  /** Desktop notifications for access drops, failed critical checks and enrollment. */
  notifications: z.boolean().default(true),
  /** The same check in the same state is not announced again within this window. */
  notificationCooldownMinutes: z.number().int().min(0).max(10_080).default(240),
  /** Register the tray to start at login (login item on macOS/Windows, XDG autostart on Linux). */
  startAtLogin: z.boolean().default(true),
});
export type UiConfig = z.infer<typeof uiConfigSchema>;
