import { z } from 'zod';
import { ACCESS_LEVELS, policySchema } from '../policy/schema.js';
import { deviceFactsSchema, postureReportSchema } from './report.js';

/**
 * The agent <-> control-plane wire protocol. Bumped only for breaking changes; the URL prefix (/v1) moves
 * with it. Adding optional fields is not breaking: both ends ignore keys they do not know.
 */
export const PROTOCOL_VERSION = 1;

/** Device IDs end up in certificate SANs and URLs, so they are restricted to a URL- and DNS-safe alphabet. */
export const deviceIdSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{2,62}$/, 'lower-case letters, digits and dashes, 3 to 63 characters');
export type DeviceId = z.infer<typeof deviceIdSchema>;

/** The URI SAN a device certificate carries; CN `device-<id>` is the fallback. */
export const DEVICE_URI_PREFIX = 'urn:vigil:device:';
export const DEVICE_CN_PREFIX = 'device-';

// ---- Enrollment -------------------------------------------------------------------------------------

export const enrollRequestSchema = z
  .object({
    protocolVersion: z.literal(PROTOCOL_VERSION),
    enrollmentSecret: z.string().min(1).max(512),
    deviceId: deviceIdSchema.describe('Chosen by the agent (a random UUID on first run) and kept for life'),
    facts: deviceFactsSchema,
    dnsNames: z
      .array(z.string().max(253))
      .max(4)
      .optional()
      .describe('DNS SANs the agent puts in its CSR (identity.domain); each must be `<deviceId>.<domain>`, and the server may require its own domain'),
  })
  .describe('POST /v1/enroll request');
export type EnrollRequest = z.infer<typeof enrollRequestSchema>;

export const enrollResponseSchema = z
  .object({
    protocolVersion: z.literal(PROTOCOL_VERSION),
    deviceId: deviceIdSchema,
    ott: z.string().describe('step-ca one-time token (JWK provisioner); single use, valid for 5 minutes'),
    caUrl: z.url().describe('step-ca base URL the agent sends its CSR to'),
    rootFingerprint: z
      .string()
      .regex(/^[0-9a-f]{64}$/)
      .describe('SHA-256 of the step-ca root certificate (DER), lower-case hex, as `step ca bootstrap --fingerprint`'),
    subject: z.string().describe('The CSR common name step-ca will accept: `device-<id>`'),
    sans: z.array(z.string()).describe('The CSR SANs step-ca will accept: [`urn:vigil:device:<id>`]'),
    expiresAt: z.iso.datetime().describe('When the OTT stops being accepted'),
    notAfter: z
      .string()
      .regex(/^(?=\d)(\d+h)?(\d+m)?(\d+s)?$/)
      .optional()
      .describe('The certificate lifetime the administrator set (a Go duration such as `720h`); the agent passes it as `notAfter` in its step-ca sign request'),
  })
  .describe('POST /v1/enroll response');
export type EnrollResponse = z.infer<typeof enrollResponseSchema>;

// ---- Directives ------------------------------------------------------------------------------------

export const recheckSchema = z.object({
  requestId: z.string().min(1).max(64),
  requestedAt: z.iso.datetime(),
});

export const directivesSchema = z
  .object({
    reportIntervalSeconds: z.number().int().min(10).max(86_400).describe('Heartbeat: report at least this often'),
    policyVersion: z.string().min(1).describe('The server policy version; fetch GET /v1/policy when it differs'),
    recheck: recheckSchema.nullable().describe('A pending "re-check now" request, answered by a report naming it'),
  })
  .describe('What the server asks of the agent; sent with every report ack and on the directive stream');
export type Directives = z.infer<typeof directivesSchema>;

// ---- Reports ---------------------------------------------------------------------------------------

export const reportEnvelopeSchema = z
  .object({
    protocolVersion: z.literal(PROTOCOL_VERSION),
    reportId: z.uuid().describe('Idempotency key: a retry carries the same ID and is stored once'),
    seq: z
      .number()
      .int()
      .nonnegative()
      .describe('Agent sequence number, increasing across restarts; the server logs gaps and reversals but never orders posture by it'),
    dropped: z
      .number()
      .int()
      .nonnegative()
      .describe('Reports the agent dropped from its full outbox since the previous envelope'),
    inResponseTo: z.string().max(64).optional().describe('The recheck requestId this report answers'),
    report: postureReportSchema,
  })
  .describe('POST /v1/reports request');
export type ReportEnvelope = z.infer<typeof reportEnvelopeSchema>;

export const reportAckSchema = z
  .object({
    protocolVersion: z.literal(PROTOCOL_VERSION),
    reportId: z.uuid(),
    duplicate: z.boolean().describe('True when this reportId had already been stored'),
    previousSeq: z.number().int().nonnegative().nullable().optional().describe('The seq of the report the server received from this device before this one'),
    accessLevel: z.enum(ACCESS_LEVELS).describe("The server's evaluation with the server policy"),
    directives: directivesSchema,
  })
  .describe('POST /v1/reports response');
export type ReportAck = z.infer<typeof reportAckSchema>;

export const identityRevokedSchema = z
  .object({
    protocolVersion: z.literal(PROTOCOL_VERSION),
    serial: z.string().regex(/^[0-9a-fA-F]{1,64}$/).describe('The serial of the certificate on this connection, hex'),
    reason: z
      .enum(['ca-refused-renewal', 'unenrolled'])
      .describe('ca-refused-renewal: the CA refused to renew it (revoked); unenrolled: `vigil unenroll` gave it up'),
  })
  .describe('POST /v1/identity/revoked request: this certificate no longer speaks for the device; answered 204');
export type IdentityRevoked = z.infer<typeof identityRevokedSchema>;

// ---- Policy ----------------------------------------------------------------------------------------

/** GET /v1/policy returns the policy document itself; its `version` is also the ETag. */
export const policyDocumentSchema = policySchema;

// ---- Errors ----------------------------------------------------------------------------------------

export const ERROR_CODES = [
  'bad-request',
  'unauthorized',
  'client-certificate-required',
  'client-certificate-rejected',
  'device-not-enrolled',
  'device-revoked',
  'forbidden',
  'not-found',
  'conflict',
  'rate-limited',
  'payload-too-large',
  'enrollment-secret-invalid',
  'enrollment-secret-expired',
  'enrollment-secret-used-up',
  'enrollment-secret-revoked',
  'not-ready',
  'internal',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export const errorBodySchema = z
  .object({
    error: z.enum(ERROR_CODES),
    message: z.string(),
  })
  .describe('Every non-2xx response body');
export type ErrorBody = z.infer<typeof errorBodySchema>;
