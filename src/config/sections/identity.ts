import { z } from 'zod';

/** Accepts what `step certificate fingerprint` prints and what people paste (colons, upper case). */
export const fingerprintSchema = z
  .string()
  .transform((s) => s.replace(/[:\s]/g, '').toLowerCase())
  .pipe(z.string().regex(/^[0-9a-f]{64}$/, 'must be the SHA-256 of the root certificate (64 hex digits)'));

export const KEY_TYPES = ['ec-p256', 'rsa-3072'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

export const KEY_STORAGES = ['keychain', 'file'] as const;
export type KeyStorageKind = (typeof KEY_STORAGES)[number];

/**
 * Templates expand `{id}` (the device ID) and `{domain}`. A SAN whose template names a variable that has
 * no value is left out, so the default works before a domain is configured.
 */
export const subjectTemplateSchema = z.strictObject({
  commonName: z.string().min(1).default('device-{id}'),
  dnsNames: z.array(z.string().min(1)).default(['{id}.devices.{domain}']),
  uris: z.array(z.string().min(1)).default(['urn:vigil:device:{id}']),
});

/** The `identity` section of config.json. Every key needs a default: a fresh install runs with no config file. */
export const identityConfigSchema = z.strictObject({
  /** step-ca base URL, as `step ca bootstrap --ca-url`. Unset until the device is enrolled. */
  caUrl: z.url({ protocol: /^https$/ }).optional(),
  /** SHA-256 of the root certificate's DER, as `step ca bootstrap --fingerprint`. */
  fingerprint: fingerprintSchema.optional(),
  /** P-256 is step-ca's default and what TPMs and the Secure Enclave hold; RSA for legacy relying parties. */
  keyType: z.enum(KEY_TYPES).default('ec-p256'),
  /** "file" keeps the key in a 0600 PEM; only for hosts without an OS keychain, and status says so. */
  keyStorage: z.enum(KEY_STORAGES).default('keychain'),
  /** Service name under which the data key is held in the OS keychain. */
  keychainService: z.string().min(1).default('Vigil'),
  /** Renew once less than this fraction of the certificate's lifetime is left. */
  renewFraction: z.number().gt(0).lt(1).default(1 / 3),
  /**
   * Renewal is spread over this fraction of the renewal window (after its start), so a fleet enrolled at
   * the same moment does not renew at the same moment.
   */
  renewJitter: z.number().min(0).max(0.5).default(0.1),
  /** Retry after a failed renewal: exponential from `retryInitialSeconds`, capped, with full jitter. */
  retryInitialSeconds: z.number().positive().default(30),
  retryMaxSeconds: z.number().positive().default(30 * 60),
  /** `{domain}` in the subject template. */
  domain: z.string().min(1).optional(),
  subject: subjectTemplateSchema.prefault({}),
  /** `vigil unenroll` asks the CA to revoke the certificate before deleting it. */
  revokeOnUnenroll: z.boolean().default(true),
  /** Per request to the CA. */
  requestTimeoutSeconds: z.number().positive().default(15),
});

export type IdentityConfig = z.output<typeof identityConfigSchema>;
export type SubjectTemplate = z.output<typeof subjectTemplateSchema>;
