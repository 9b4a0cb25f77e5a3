import { z } from 'zod';

/** The `reporting` section of config.json. Every key needs a default: a fresh install runs with no config file. */
export const reportingConfigSchema = z.strictObject({
  controlPlaneUrl: z
    .string()
    .regex(/^https:\/\/[^\s/]+/, 'must be an https:// URL')
    .optional()
    .describe('Control-plane base URL. Reporting is off until it is set and the device is enrolled.'),
  intervalSeconds: z.number().int().min(10).max(86_400).default(300).describe('Heartbeat: report at least this often, until the control plane sets another interval.'),
  debounceMs: z.number().int().min(0).max(600_000).default(2000).describe('Posture changes closer together than this are sent as one report.'),
  outbox: z
    .strictObject({
      maxEntries: z.number().int().min(1).default(500).describe('Reports kept on disk while the control plane is unreachable; superseded ones are dropped first.'),
      maxBytes: z.number().int().min(65_536).default(8 * 1024 * 1024).describe('Size cap of the on-disk outbox, in bytes.'),
    })
    .prefault({}),
  // A secret in config.json would be readable by every process of the user and copied into backups.
  enrollmentSecretFile: z
    .string()
    .min(1)
    .optional()
    .describe('File holding the enrollment secret for `vigil enroll --control-plane`, for silent MDM enrollment; the secret itself never goes in config.'),
  requestTimeoutSeconds: z.number().positive().default(15).describe('Timeout of each request to the control plane.'),
});

export type ReportingConfig = z.output<typeof reportingConfigSchema>;
