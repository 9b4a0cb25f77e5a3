import { z } from 'zod';
import { LOG_LEVELS } from '../logging/logger.js';
import { identityConfigSchema } from './sections/identity.js';
import { reportingConfigSchema } from './sections/reporting.js';
import { uiConfigSchema } from './sections/ui.js';

export const scanConfigSchema = z.strictObject({
  /** Fast-changing checks are re-run this often by the daemon. */
  intervalSeconds: z.number().int().min(10).max(86_400).default(300),
  /** Slow-changing facts (hardware, OS release, package state) are re-read at most this often. */
  staticFactsTtlSeconds: z.number().int().min(0).max(604_800).default(3600),
  /** Collectors running at once. */
  concurrency: z.number().int().min(1).max(32).default(4),
  /** A collector that takes longer yields `error` for its check alone. */
  timeoutMs: z.number().int().min(100).max(120_000).default(5000),
});

export const configSchema = z.strictObject({
  logLevel: z.enum(LOG_LEVELS).default('info'),
  /** Where state (status, identity, outbox) lives; the per-OS default when unset. */
  stateDir: z.string().min(1).optional(),
  /** Daemon log directory; the per-OS default (or <stateDir>/logs) when unset. */
  logDir: z.string().min(1).optional(),
  /** A policy JSON file to apply instead of the bundled default (a control plane can push one too). */
  policyFile: z.string().min(1).optional(),
  scan: scanConfigSchema.prefault({}),
  identity: identityConfigSchema.prefault({}),
  reporting: reportingConfigSchema.prefault({}),
  ui: uiConfigSchema.prefault({}),
});

export type VigilConfig = z.infer<typeof configSchema>;
