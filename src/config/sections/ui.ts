import { z } from 'zod';

/** The `ui` section of config.json. Every key needs a default: a fresh install runs with no config file. */
export const uiConfigSchema = z.strictObject({
  allowQuit: z.boolean().default(true).describe('Show "Quit" in the tray menu; MDM sets false so employees cannot switch posture reporting off.'),
  notifications: z.boolean().default(true).describe('Desktop notifications for access drops, failed critical checks and enrollment.'),
  notificationCooldownMinutes: z
    .number()
    .int()
    .min(0)
    .max(10_080)
    .default(240)
    .describe('The same check in the same state is not announced again within this window.'),
  startAtLogin: z.boolean().default(true).describe('Start the tray at login (login item on macOS and Windows, XDG autostart on Linux).'),
});
export type UiConfig = z.infer<typeof uiConfigSchema>;
