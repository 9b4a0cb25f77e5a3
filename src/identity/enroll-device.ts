import { readFile } from 'node:fs/promises';
import { UsageError } from '../config/errors.js';
import { saveEnrollment, type EnrollmentValues } from '../config/enrollment-file.js';
import type { VigilConfig } from '../config/schema.js';
import type { Logger } from '../logging/logger.js';
import type { IdentityManager, IdentityStatus } from './manager.js';
import type { TokenSource } from './token.js';

/**
 * What the daemon needs to enroll by itself, when the config (managed config, as MDM deploys it) names it
 * all: the control plane, the CA and its root fingerprint, and the file holding the enrollment secret.
 */
export function silentEnrollmentConfig(config: VigilConfig): { controlPlaneUrl: string; secretFile: string } | undefined {
  const { controlPlaneUrl, enrollmentSecretFile } = config.reporting;
  if (controlPlaneUrl === undefined || enrollmentSecretFile === undefined || config.identity.caUrl === undefined || config.identity.fingerprint === undefined) return undefined;
  return { controlPlaneUrl, secretFile: enrollmentSecretFile };
}

/**
 * Enrollment as `vigil enroll` and the daemon's silent enrollment both do it: get the certificate, remember
 * the values given (never the secret) only once that succeeded, then show the certificate to the control
 * plane, which counts the device as enrolled from then on.
 */
export async function enrollDevice(opts: {
  stateDir: string;
  manager: IdentityManager;
  token: TokenSource;
  /** What to save in enrollment.json; values that came from the config need not be. */
  given: EnrollmentValues;
  logger: Logger;
}): Promise<IdentityStatus> {
  const { caUrl, fingerprint } = opts.given;
  const status = await opts.manager.enroll({
    token: opts.token,
    ...(caUrl ? { caUrl } : {}),
    ...(fingerprint ? { fingerprint } : {}),
  });
  await saveEnrollment(opts.stateDir, opts.given);
  const warning = await opts.token.afterEnrollment?.();
  if (warning !== undefined) opts.logger.warn(warning);
  return status;
}

/** The enrollment secret from its file (reporting.enrollmentSecretFile or --enrollment-secret-file). */
export async function readEnrollmentSecret(path: string): Promise<string> {
  try {
    const secret = (await readFile(path, 'utf8')).trim();
    if (secret === '') throw new UsageError(`${path}: the enrollment secret file is empty`);
    return secret;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`${path}: cannot read the enrollment secret: ${(err as Error).message}`);
  }
}
