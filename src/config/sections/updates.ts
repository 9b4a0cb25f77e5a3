import { z } from 'zod';

/**
 * The `updates` section: the tray's own updates (electron-updater), for installs no MDM manages. Whether
 * they run when `enabled` is unset depends on how the device is managed (src/ui/updates.ts).
 */
export const updatesConfigSchema = z.strictObject({
  enabled: z
    .boolean()
    .optional()
    .describe('Let the tray download and offer updates. Unset: on for an unmanaged install with a feed, off wherever MDM manages the device (managed settings exist).'),
  feedUrl: z
    .string()
    .regex(/^https:\/\/[^\s/]+/, 'must be an https:// URL')
    .optional()
    .describe('A generic update feed (the directory holding latest.yml, latest-mac.yml or latest-linux.yml); the control plane may serve it.'),
  checkIntervalHours: z.number().min(1).max(168).default(6).describe('How often the tray looks for an update.'),
});
export type UpdatesConfig = z.infer<typeof updatesConfigSchema>;
