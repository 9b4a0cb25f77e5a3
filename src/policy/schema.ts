import { z } from 'zod';

export const ACCESS_LEVELS = ['full', 'limited', 'blocked'] as const;
export type AccessLevel = (typeof ACCESS_LEVELS)[number];

export const POLICY_SEVERITIES = ['critical', 'recommended', 'info', 'off'] as const;
export type PolicySeverity = (typeof POLICY_SEVERITIES)[number];

const versionString = z.string().regex(/^\d+(\.\d+){0,3}$/, 'a dotted version such as "22.04"');

export const thresholdsSchema = z.strictObject({
  /** A device is unpatched when security updates have been pending longer than this. */
  maxPatchAgeDays: z.number().int().min(0).max(365).default(30),
  maxScreenLockIdleSeconds: z.number().int().min(1).max(86_400).default(300),
  /**
   * Minimum OS release per OS id: os-release ID on Linux ("ubuntu", "debian", "fedora", ...),
   * "macos" and "windows" (Windows compares the build number: 10.0.22000 is Windows 11).
   */
  minimumOsVersions: z.record(z.string().regex(/^[a-z0-9._-]+$/, 'a lower-case OS id'), versionString).default({}),
  /** Maximum age of antivirus signatures, where the product reports it. */
  maxSignatureAgeDays: z.number().int().min(0).max(365).default(7),
});
export type Thresholds = z.infer<typeof thresholdsSchema>;

export const policySchema = z.strictObject({
  schemaVersion: z.literal(1),
  name: z.string().min(1),
  /** Changes whenever the policy does; reports name it so a server knows what the agent applied. */
  version: z.string().min(1),
  description: z.string().optional(),
  /** What `unknown` (or `error`) on a critical check means. Unknown never counts as a pass. */
  unknownOnCritical: z.enum(['limited', 'blocked']).default('limited'),
  thresholds: thresholdsSchema.prefault({}),
  /** Severity per check id; a check not listed is reported but does not affect the access level. */
  checks: z.record(z.string(), z.enum(POLICY_SEVERITIES)),
});
export type Policy = z.infer<typeof policySchema>;
