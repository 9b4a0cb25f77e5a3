import { z } from 'zod';
import { ACCESS_LEVELS, POLICY_SEVERITIES, type AccessLevel, type Policy } from '../policy/schema.js';
import { PLATFORMS } from '../posture/types.js';
import { postureReportSchema } from './report.js';
import { deviceIdSchema, directivesSchema } from './wire.js';

/**
 * `enrolled`: has a secret-backed registration but never reported; `active`: reporting within the allowed
 * age; `stale`: silent longer than the server allows; `revoked`: refused by an admin.
 */
export const DEVICE_STATES = ['enrolled', 'active', 'stale', 'revoked'] as const;
export type DeviceState = (typeof DEVICE_STATES)[number];

export const certInfoSchema = z.object({
  serial: z.string(),
  subject: z.string(),
  issuer: z.string(),
  not_after: z.iso.datetime(),
  fingerprint_sha256: z.string(),
});
export type CertInfo = z.infer<typeof certInfoSchema>;

/**
 * The operating system a device last reported, for ZTNA rules such as `"os": ["macOS 13+", "Windows 11"]`:
 * `id` is os-release's ID on Linux (`ubuntu`, `debian`), `macos` or `windows`; `version` is the OS's own
 * (`13.6.1`, `10.0.22631`, `22.04`).
 */
export const deviceOsSchema = z.object({
  platform: z.enum(PLATFORMS),
  id: z.string(),
  name: z.string(),
  version: z.string().nullable(),
});
export type DeviceOs = z.infer<typeof deviceOsSchema>;

/** What a gateway needs of a device besides its level: the OS it runs and whether it is managed (MDM). */
export interface DevicePosture {
  os: DeviceOs;
  /** The latest report's `mdm-enrolled` check passed. Unknown or absent is not managed: unknown never passes. */
  managed: boolean;
}

/**
 * GET /v1/decision/:device: an OPA input document. snake_case and flat so a Rego rule reads naturally:
 * `allow { input.device.compliant == true }`.
 */
export const decisionDocumentSchema = z
  .object({
    device: z.object({
      id: deviceIdSchema,
      compliant: z.boolean().describe('access_level is full and the device is neither stale nor revoked'),
      access_level: z.enum(ACCESS_LEVELS).describe('Effective level: blocked when stale, revoked or never reported'),
      state: z.enum(DEVICE_STATES),
      checks: z.record(
        z.string(),
        z.object({
          status: z.enum(['pass', 'fail', 'unknown', 'error']),
          severity: z.enum(POLICY_SEVERITIES),
          reason: z.string().optional(),
        }),
      ),
      cert: certInfoSchema.nullable().describe('The client certificate the device last reported with: its current one'),
      os: deviceOsSchema.nullable().describe('As the latest report (or, before one, the enrollment) says'),
      managed: z.boolean().describe("The latest report's mdm-enrolled check passed"),
      last_seen: z.iso.datetime().nullable(),
      policy_version: z.string(),
    }),
  })
  .describe('GET /v1/decision/{device} response');
export type DecisionDocument = z.infer<typeof decisionDocumentSchema>;

export const accessLevelEventSchema = z
  .object({
    device: deviceIdSchema,
    previous: z.enum(ACCESS_LEVELS).nullable(),
    current: z.enum(ACCESS_LEVELS),
    compliant: z.boolean(),
    state: z.enum(DEVICE_STATES),
    cause: z.enum(['report', 'stale', 'revoked', 'policy']),
    at: z.iso.datetime(),
    // Optional only because events stored before schema 5 lack them; this server always sends them, and an
    // event is also sent when only they change (a renewed certificate, an OS upgrade).
    cert: certInfoSchema.nullable().optional().describe("The device's current certificate; a gateway accepts this one only"),
    os: deviceOsSchema.nullable().optional(),
    managed: z.boolean().optional(),
  })
  .describe('SSE `access-level` event on GET /v1/events');
export type AccessLevelEvent = z.infer<typeof accessLevelEventSchema>;

export const deviceSummarySchema = z.object({
  id: deviceIdSchema,
  state: z.enum(DEVICE_STATES),
  accessLevel: z.enum(ACCESS_LEVELS),
  compliant: z.boolean(),
  hostname: z.string(),
  platform: z.string(),
  enrolledAt: z.iso.datetime(),
  lastSeen: z.iso.datetime().nullable(),
  lastSeq: z.number().int().nullable(),
  droppedReports: z.number().int().nonnegative().describe('Total the agent reported dropping from its outbox'),
  seqAnomalies: z
    .number()
    .int()
    .nonnegative()
    .describe('Reports whose seq went back or jumped: restored agent state, or reports not made by this agent'),
  revokedReason: z.string().nullable().describe('Why the device was revoked, while it is'),
  cert: certInfoSchema.nullable().describe("The device's current certificate (the one it last reported or enrolled with)"),
  os: deviceOsSchema.nullable(),
  managed: z.boolean(),
});
export type DeviceSummary = z.infer<typeof deviceSummarySchema>;

/**
 * Where the next page starts: pass it back as `?cursor=`. Opaque; null on the last page. A full page of the
 * device list has one even when nothing follows (the next page is then empty).
 */
const nextCursorSchema = z.string().nullable().default(null).describe('Cursor of the next page (?cursor=), null at the end');

/** GET /v1/admin/devices: a page in device-id order. */
export const deviceListSchema = z.object({ devices: z.array(deviceSummarySchema), next: nextCursorSchema });

export const deviceDetailSchema = z.object({
  device: deviceSummarySchema,
  decision: decisionDocumentSchema,
  latestReport: postureReportSchema.nullable(),
  directives: directivesSchema,
});

export const reportHistorySchema = z.object({
  reports: z.array(
    z.object({
      reportId: z.uuid(),
      seq: z.number().int(),
      generatedAt: z.iso.datetime(),
      receivedAt: z.iso.datetime(),
      accessLevel: z.enum(ACCESS_LEVELS),
      bodySize: z.number().int().nonnegative().optional().describe('Bytes stored for the report (what history.maxBytesPerDevice counts)'),
    }),
  ),
  next: nextCursorSchema,
});

export const secretCreateRequestSchema = z.strictObject({
  uses: z.number().int().min(1).max(100_000).default(1),
  expiresInSeconds: z.number().int().min(60).max(366 * 86_400).default(7 * 86_400),
  label: z.string().max(200).optional(),
});
export type SecretCreateRequest = z.infer<typeof secretCreateRequestSchema>;

export const secretInfoSchema = z.object({
  id: z.string(),
  label: z.string().nullable(),
  createdAt: z.iso.datetime(),
  expiresAt: z.iso.datetime(),
  usesTotal: z.number().int(),
  usesLeft: z.number().int(),
  revoked: z.boolean(),
});
export type SecretInfo = z.infer<typeof secretInfoSchema>;

export const secretCreateResponseSchema = secretInfoSchema.extend({
  secret: z.string().describe('Shown once; only its hash is stored'),
});

export const secretListSchema = z.object({ secrets: z.array(secretInfoSchema), next: nextCursorSchema });

export const recheckResponseSchema = z.object({ requestId: z.string() });

/**
 * Bearer tokens besides the configured admin token. `admin` may do everything the admin token does;
 * `gateway` may only read what an authorizer beside a gateway needs: the event stream, the device list
 * and decisions.
 */
export const API_TOKEN_SCOPES = ['admin', 'gateway'] as const;
export type ApiTokenScope = (typeof API_TOKEN_SCOPES)[number];

export const apiTokenCreateRequestSchema = z.strictObject({
  scope: z.enum(API_TOKEN_SCOPES),
  name: z.string().min(1).max(200),
});
export type ApiTokenCreateRequest = z.infer<typeof apiTokenCreateRequestSchema>;

export const apiTokenInfoSchema = z.object({
  id: z.string(),
  name: z.string(),
  scope: z.enum(API_TOKEN_SCOPES),
  createdAt: z.iso.datetime(),
  revokedAt: z.iso.datetime().nullable(),
});
export type ApiTokenInfo = z.infer<typeof apiTokenInfoSchema>;

export const apiTokenCreateResponseSchema = apiTokenInfoSchema.extend({
  token: z.string().describe('Shown once; only its SHA-256 is stored'),
});

export const apiTokenListSchema = z.object({ tokens: z.array(apiTokenInfoSchema), next: nextCursorSchema });

// ---- admin console (issue #20): what its own routes answer; types only, shared with the browser app ----

/** What the console is told of its session (`POST`/`GET /console/api/session`). */
export interface SessionInfo {
  name: string;
  csrf: string;
  idleTimeoutSeconds: number;
}

/** `GET /v1/admin/overview`. `history` holds the hourly snapshots, oldest first (epoch ms). */
export interface FleetOverview {
  total: number;
  byLevel: Record<AccessLevel, number>;
  stale: number;
  needsEnrollment: number;
  revoked: number;
  byOs: { os: string; count: number }[];
  topFailing: { check: string; title: string; count: number }[];
  history: { at: number; full: number; limited: number; blocked: number; stale: number }[];
}

/** `POST /v1/admin/policy/preview` of a valid draft. */
export interface PolicyPreviewResult {
  valid: true;
  current: Policy;
  changes: { total: number; unchanged: number; toFull: number; toLimited: number; toBlocked: number };
  examples: { id: string; hostname: string; from: AccessLevel; to: AccessLevel }[];
}

/** ... and of a draft the policy parser refuses (400). */
export interface PolicyPreviewErrors {
  valid: false;
  errors: { path: string; message: string }[];
}

