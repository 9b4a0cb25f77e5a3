import { z } from 'zod';

/** Accepts what `step certificate fingerprint` prints and what people paste (colons, upper case). */
export function normalizeFingerprint(input: string): string | undefined {
  const fp = input.replace(/[:\s]/g, '').toLowerCase();
  return /^[0-9a-f]{64}$/.test(fp) ? fp : undefined;
}

// Plain strings (not transforms) so the config layer can set them from environment variables verbatim.
const fingerprintSchema = z
  .string()
  .refine((s) => normalizeFingerprint(s) !== undefined, 'must be the SHA-256 of the root certificate (64 hex digits)');

export const KEY_TYPES = ['ec-p256', 'rsa-3072'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

export const KEY_STORAGES = ['keychain', 'file'] as const;
export type KeyStorageKind = (typeof KEY_STORAGES)[number];

/** A SAN whose template names a variable with no value is left out, so the default works before a domain is set. */
export const subjectTemplateSchema = z.strictObject({
  commonName: z.string().min(1).default('device-{id}').describe('Certificate CN template; `{id}` is the device ID, `{domain}` is identity.domain.'),
  dnsNames: z.array(z.string().min(1)).default(['{id}.devices.{domain}']).describe('DNS SAN templates; one naming an unset variable is left out.'),
  uris: z.array(z.string().min(1)).default(['urn:vigil:device:{id}']).describe('URI SAN templates.'),
});

/** The `identity` section of config.json. Every key needs a default: a fresh install runs with no config file. */
export const identityConfigSchema = z.strictObject({
  caUrl: z.string().regex(/^https:\/\/[^\s/]+/, 'must be an https:// URL').optional().describe('step-ca base URL, as `step ca bootstrap --ca-url`.'),
  fingerprint: fingerprintSchema.optional().describe('SHA-256 of the CA root certificate (DER), as `step ca bootstrap --fingerprint`.'),
  // P-256 is step-ca's default and what TPMs and the Secure Enclave hold; RSA for legacy relying parties.
  keyType: z.enum(KEY_TYPES).default('ec-p256').describe('Device key algorithm.'),
  keyStorage: z
    .enum(KEY_STORAGES)
    .default('keychain')
    .describe('`keychain`: key file encrypted under a data key held in the OS keychain. `file`: unencrypted 0600 file, for hosts with no keychain; status says so.'),
  keychainService: z.string().min(1).default('Vigil').describe('Keychain service name under which the data key is stored.'),
  renewFraction: z.number().gt(0).lt(1).default(1 / 3).describe('Renew once less than this fraction of the certificate lifetime is left.'),
  // Spreading renewals after the window opens keeps a fleet enrolled together from renewing together.
  renewJitter: z.number().min(0).max(0.5).default(0.1).describe('Renewal is spread over this fraction of the renewal window, after its start.'),
  retryInitialSeconds: z.number().positive().default(30).describe('First retry delay after a failed renewal; doubles per failure, with jitter.'),
  retryMaxSeconds: z.number().positive().default(30 * 60).describe('Cap on the retry delay after failed renewals.'),
  domain: z.string().min(1).optional().describe('`{domain}` in the subject templates (DNS SAN `<id>.devices.<domain>`).'),
  subject: subjectTemplateSchema.prefault({}),
  revokeOnUnenroll: z.boolean().default(true).describe('`vigil unenroll` revokes the certificate at the CA before deleting it.'),
  requestTimeoutSeconds: z.number().positive().default(15).describe('Timeout of each request to the CA.'),
});

export type IdentityConfig = z.output<typeof identityConfigSchema>;
export type SubjectTemplate = z.output<typeof subjectTemplateSchema>;
