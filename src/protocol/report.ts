import { z } from 'zod';
import { ACCESS_LEVELS, POLICY_SEVERITIES } from '../policy/schema.js';
import { PLATFORMS, type JsonValue } from '../posture/types.js';

export const REPORT_SCHEMA_VERSION = 1;

const jsonValue: z.ZodType<JsonValue> = z.lazy(() =>
  z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(jsonValue), z.record(z.string(), jsonValue)]),
);

export const deviceFactsSchema = z.object({
  hostname: z.string(),
  platform: z.enum(PLATFORMS),
  arch: z.string(),
  os: z.object({
    name: z.string().describe('Human name, e.g. "Ubuntu 24.04.1 LTS" or "macOS 15.1"'),
    id: z.string().describe('os-release ID on Linux, "macos" or "windows"'),
    version: z.string().nullable(),
    kernel: z.string(),
  }),
  hardware: z.object({
    vendor: z.string().nullable(),
    model: z.string().nullable(),
    serial: z.string().nullable().describe('Null where unreadable without admin'),
    uuid: z.string().nullable(),
  }),
  user: z.string().nullable().describe('The logged-in user, where known'),
});
export type DeviceFacts = z.infer<typeof deviceFactsSchema>;

export const checkResultSchema = z.object({
  id: z.string(),
  title: z.string(),
  severity: z.enum(POLICY_SEVERITIES).describe('As the applied policy set it'),
  status: z.enum(['pass', 'fail', 'unknown', 'error']),
  evidence: z.record(z.string(), jsonValue),
  reason: z.string().optional(),
  checkedAt: z.iso.datetime(),
  durationMs: z.number().nonnegative(),
});

export const reasonSchema = z.object({
  checkId: z.string(),
  title: z.string(),
  severity: z.enum(['critical', 'recommended']),
  status: z.enum(['fail', 'unknown', 'error']),
  effect: z.enum(['limited', 'blocked']),
  message: z.string(),
});

export const postureReportSchema = z
  .object({
    schemaVersion: z.literal(REPORT_SCHEMA_VERSION),
    agentVersion: z.string(),
    generatedAt: z.iso.datetime(),
    device: deviceFactsSchema,
    policy: z.object({ name: z.string(), version: z.string() }),
    accessLevel: z.enum(ACCESS_LEVELS),
    reasons: z.array(reasonSchema),
    results: z.array(checkResultSchema),
  })
  .describe('Vigil posture report, as printed by `vigil check --json`');
export type PostureReport = z.infer<typeof postureReportSchema>;
