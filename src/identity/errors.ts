export type IdentityErrorCode =
  | 'config'
  | 'fingerprint-mismatch'
  | 'unreachable'
  | 'token-expired'
  | 'token-not-yet-valid'
  | 'token-used'
  | 'token-audience'
  | 'token-provisioner'
  | 'token-root'
  | 'token-malformed'
  | 'ca-rejected'
  | 'verify-failed'
  | 'corrupt-state'
  | 'not-enrolled'
  | 'expired'
  | 'revoked'
  | 'keychain';

/** An error whose message is one line that tells the user what to do; the CLI prints it as is. */
export class IdentityError extends Error {
  constructor(
    readonly code: IdentityErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'IdentityError';
  }
}
