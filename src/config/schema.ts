import { z } from 'zod';
import { LOG_LEVELS } from '../logging/levels.js';
import { identityConfigSchema } from './sections/identity.js';
import { reportingConfigSchema } from './sections/reporting.js';
import { uiConfigSchema } from './sections/ui.js';
import { updatesConfigSchema } from './sections/updates.js';

export const scanConfigSchema = z.strictObject({
  intervalSeconds: z.number().int().min(10).max(86_400).default(300).describe('How often the daemon re-runs the checks.'),
  staticFactsTtlSeconds: z.number().int().min(0).max(604_800).default(3600).describe('How long slow-changing facts (hardware, OS release) are cached.'),
  concurrency: z.number().int().min(1).max(32).default(4).describe('Collectors running at once.'),
  timeoutMs: z.number().int().min(100).max(120_000).default(5000).describe('A collector taking longer yields `error` for its check alone (package-manager checks have their own, longer limit).'),
});

export const agentConfigSchema = z.strictObject({
  socket: z
    .string()
    .min(1)
    .optional()
    .describe('Where the service\'s local API listens and its clients connect: a Unix socket path, or a named pipe on Windows. Default: /run/vigil/agent.sock (Linux), /var/run/vigil/agent.sock (macOS), \\\\.\\pipe\\vigil-agent (Windows) for the machine-wide agent, else agent.sock in the state dir.'),
});

export const configSchema = z.strictObject({
  logLevel: z.enum(LOG_LEVELS).default('info').describe('Log verbosity.'),
  stateDir: z.string().min(1).optional().describe('Where state (status, identity, outbox) lives; the per-OS default when unset.'),
  logDir: z.string().min(1).optional().describe('Daemon log directory; the per-OS default, or <stateDir>/logs, when unset.'),
  policyFile: z.string().min(1).optional().describe('A policy JSON file to apply instead of the bundled default.'),
  scan: scanConfigSchema.prefault({}),
  agent: agentConfigSchema.prefault({}),
  identity: identityConfigSchema.prefault({}),
  reporting: reportingConfigSchema.prefault({}),
  ui: uiConfigSchema.prefault({}),
  updates: updatesConfigSchema.prefault({}),
});

export type VigilConfig = z.infer<typeof configSchema>;
