/**
 * The enrollment input an installer can carry, so that a device enrolls silently on first start:
 * `vigil-control-plane package --target msi|pkg --enrollment-secret S` bakes these in, and an MDM can also
 * pass them at install time (msiexec properties on Windows; a profile on macOS). These are the four keys
 * the daemon's silent enrollment needs (src/identity/enroll-device.ts): reporting.controlPlaneUrl,
 * identity.caUrl, identity.fingerprint and, through reporting.enrollmentSecretFile, the secret.
 */
export interface EnrollmentInput {
  controlPlaneUrl?: string;
  caUrl?: string;
  /** SHA-256 of the CA root's DER, 64 hex digits (what `vigil enroll --fingerprint` takes). */
  fingerprint?: string;
  /** The secret itself; installers write it to a file only root/SYSTEM and administrators can read. */
  enrollmentSecret?: string;
}

/**
 * The secret travels on an installer command line (a Windows custom action's) and in shell scripts, so it
 * is limited to characters that need no quoting anywhere: the control plane mints `<prefix>_<id>_<base64url>`.
 */
const SECRET_CHARS = /^[A-Za-z0-9._~+/=-]{8,512}$/;
const FINGERPRINT = /^[0-9a-f]{64}$/;

export class EnrollmentInputError extends Error {}

function checkUrl(name: string, value: string): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new EnrollmentInputError(`${name}: "${value}" is not a URL`);
  }
  // The agent only talks TLS to the CA and the control plane; an http URL would fail on the device, later and silently.
  if (url.protocol !== 'https:') throw new EnrollmentInputError(`${name}: "${value}" must be an https URL`);
  // These values end up in MSI formatted strings and XML, where quotes and brackets have meaning.
  if (/["<>[\]{}\s]/.test(value)) throw new EnrollmentInputError(`${name}: "${value}" contains a quote, bracket or space`);
}

/** Checks what would be baked into an installer, with one message naming the option; returns a normalized copy. */
export function validateEnrollmentInput(input: EnrollmentInput): EnrollmentInput {
  const out: EnrollmentInput = {};
  if (input.controlPlaneUrl !== undefined) {
    checkUrl('controlPlaneUrl', input.controlPlaneUrl);
    out.controlPlaneUrl = input.controlPlaneUrl;
  }
  if (input.caUrl !== undefined) {
    checkUrl('caUrl', input.caUrl);
    out.caUrl = input.caUrl;
  }
  if (input.fingerprint !== undefined) {
    const fp = input.fingerprint.toLowerCase().replace(/:/g, '');
    if (!FINGERPRINT.test(fp)) throw new EnrollmentInputError('fingerprint: expected the SHA-256 of the CA root (64 hex digits)');
    out.fingerprint = fp;
  }
  if (input.enrollmentSecret !== undefined) {
    if (!SECRET_CHARS.test(input.enrollmentSecret)) {
      throw new EnrollmentInputError('enrollmentSecret: expected 8 to 512 characters of A-Z a-z 0-9 . _ ~ + / = - (what `vigil-control-plane secret create` prints)');
    }
    out.enrollmentSecret = input.enrollmentSecret;
  }
  return out;
}
