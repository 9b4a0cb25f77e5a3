import { z } from 'zod';
import { KEY_STORAGES } from '../config/sections/identity.js';
import { ACCESS_LEVELS, policySchema } from '../policy/schema.js';
import { PLATFORMS } from '../posture/types.js';
import { LOCAL_API_ERROR_CODES, LOCAL_API_METHODS, LOCAL_API_VERSION } from './local-api-constants.js';
import { postureReportSchema } from './report.js';

/*
 * The local API between `vigil daemon` (the device's one agent) and its clients: the tray and the CLI.
 * One JSON object per line (UTF-8, `\n`-terminated) in each direction over a Unix socket or a named pipe.
 * Everything a client may see is here, and nothing in it is secret: any local user may connect. Changing
 * the device's identity is not offered at all; those commands act on the root-only state dir.
 * docs/local-api.md describes it for people; docs/local-api.schema.json is generated from these schemas.
 */

export const agentModeSchema = z.enum(['service', 'user']).describe('`service`: the machine-wide agent run by the OS; `user`: a local-only agent of one user');
export type AgentMode = z.infer<typeof agentModeSchema>;

const isoTime = z.iso.datetime();

export const identitySummarySchema = z.strictObject({
  state: z.enum(['not-enrolled', 'valid', 'renewing', 'needs-enrollment', 'revoked']),
  reason: z.string().optional(),
  fix: z.string().optional().describe('The command an administrator runs to get back to `valid`'),
  deviceId: z.string().optional(),
  subject: z.string().optional(),
  serial: z.string().optional(),
  notBefore: isoTime.optional(),
  notAfter: isoTime.optional(),
  renewAt: isoTime.optional().describe('When renewal is due'),
  keyStorage: z.enum(KEY_STORAGES),
  keyStorageNote: z.string().optional().describe('Where and how the private key is kept, in words'),
  consecutiveFailures: z.number().int().min(0).describe('Renewal failures in a row'),
  lastError: z.string().optional(),
  nextAttemptAt: isoTime.optional(),
  caUrl: z.string().optional().describe('The CA the device enrolled with, or is configured to; absent when identity is not set up at all'),
});
export type IdentitySummary = z.infer<typeof identitySummarySchema>;

export const reportingSummarySchema = z.strictObject({
  state: z
    .enum(['off', 'waiting-for-enrollment', 'connecting', 'online', 'offline', 'refused'])
    .describe('`off`: no control plane configured; `connecting`: no answer yet; `offline`: it cannot be reached; `refused`: it answers but refuses this device'),
  controlPlaneUrl: z.string().optional(),
  lastDeliveredAt: isoTime.optional(),
  lastError: z.string().optional(),
  queued: z.number().int().min(0).describe('Reports in the outbox, waiting to be delivered'),
  dropped: z.number().int().min(0).describe('Reports dropped since the daemon started (outbox full, or refused by the server)'),
});
export type ReportingSummary = z.infer<typeof reportingSummarySchema>;

export const agentStateSchema = z.strictObject({
  mode: agentModeSchema,
  agentVersion: z.string(),
  pid: z.number().int().positive(),
  startedAt: isoTime,
  platform: z.enum(PLATFORMS),
  scanning: z.boolean().describe('A scan is running now'),
  posture: postureReportSchema.nullable().describe('The last scan; null until the first one finishes'),
  accessLevel: z.enum(ACCESS_LEVELS).nullable(),
  identity: identitySummarySchema,
  reporting: reportingSummarySchema,
  policy: z.strictObject({
    name: z.string(),
    version: z.string(),
    source: z.string().describe('The file, "bundled", or "control plane"'),
    document: policySchema,
  }),
});
export type AgentState = z.infer<typeof agentStateSchema>;

export const deviceContextSchema = z.strictObject({
  platform: z.enum(PLATFORMS),
  desktop: z.enum(['gnome', 'kde']).optional(),
  distroFamily: z.enum(['debian', 'fedora', 'suse', 'arch']).optional(),
  osVersion: z.string().optional(),
});

const checkIdSchema = z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'a check id');

/** Params per method; a method not listed takes none. */
export const METHOD_PARAMS = {
  ping: z.strictObject({}),
  state: z.strictObject({}),
  subscribe: z.strictObject({}),
  unsubscribe: z.strictObject({}),
  recheck: z.strictObject({ checks: z.array(checkIdSchema).min(1).max(64).optional().describe('Only these checks; all when absent') }),
  'device-context': z.strictObject({}),
} as const satisfies Record<(typeof LOCAL_API_METHODS)[number], z.ZodType>;

/** What a client passes as `params` of each method. */
export type MethodParams<M extends keyof typeof METHOD_PARAMS> = z.input<(typeof METHOD_PARAMS)[M]>;

export const requestSchema = z.strictObject({
  v: z.number().int().describe(`The protocol version the client speaks (${LOCAL_API_VERSION})`),
  id: z.number().int().min(0).max(2 ** 31 - 1).describe('Echoed in the answer'),
  method: z.string().min(1).max(64),
  params: z.record(z.string(), z.unknown()).optional(),
});
export type LocalApiRequest = z.infer<typeof requestSchema>;

/** What each method answers with. */
export const METHOD_RESULTS = {
  ping: z.strictObject({ pong: z.literal(true) }),
  state: agentStateSchema,
  subscribe: agentStateSchema.describe('The state now; then an `event` frame on every change'),
  unsubscribe: z.strictObject({}),
  recheck: z.strictObject({ report: postureReportSchema }),
  'device-context': deviceContextSchema,
} as const satisfies Record<(typeof LOCAL_API_METHODS)[number], z.ZodType>;

export type MethodResult<M extends keyof typeof METHOD_RESULTS> = z.infer<(typeof METHOD_RESULTS)[M]>;

export const helloFrameSchema = z.strictObject({
  type: z.literal('hello'),
  protocol: z.literal(LOCAL_API_VERSION),
  agentVersion: z.string(),
  mode: agentModeSchema,
  pid: z.number().int().positive(),
});

export const resultFrameSchema = z.strictObject({ type: z.literal('result'), id: z.number().int(), result: z.unknown() });

export const errorFrameSchema = z.strictObject({
  type: z.literal('error'),
  id: z.number().int().nullable().describe('Null when the frame could not be read far enough to know its id'),
  error: z.strictObject({
    code: z.enum(LOCAL_API_ERROR_CODES),
    message: z.string(),
    retryAfterMs: z.number().int().min(0).optional(),
  }),
});

export const eventFrameSchema = z.strictObject({ type: z.literal('event'), event: z.literal('state'), state: agentStateSchema });

export const serverFrameSchema = z.discriminatedUnion('type', [helloFrameSchema, resultFrameSchema, errorFrameSchema, eventFrameSchema]);
export type HelloFrame = z.infer<typeof helloFrameSchema>;
export type ErrorFrame = z.infer<typeof errorFrameSchema>;
export type EventFrame = z.infer<typeof eventFrameSchema>;
export type ServerFrame = z.infer<typeof serverFrameSchema>;
