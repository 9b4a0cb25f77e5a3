/**
 * Inputs the tray views take from parts of the agent that live elsewhere. Identity (device certificate)
 * and reporting (control plane) are optional so the tray renders before those parts exist.
 */
export interface IdentityStatus {
  /** `revoked`: the CA refused to renew a certificate still within its validity; only re-enrollment helps. */
  state: 'not-enrolled' | 'valid' | 'renewing' | 'needs-enrollment' | 'revoked';
  /** ISO-8601 expiry of the current certificate. */
  notAfter?: string;
}

export interface ReportingStatus {
  online: boolean;
  /** ISO-8601 time the last report reached the control plane. */
  lastDeliveredAt?: string;
}

/** Times are shown in the user's zone and language; tests pin both. */
export interface DisplayOptions {
  now: Date;
  locale?: string;
  timeZone?: string;
}

/** A revoked certificate needs enrollment too: the fix for the user is the same (ask IT to enroll again). */
export function needsEnrollment(identity: IdentityStatus | undefined): boolean {
  return identity?.state === 'needs-enrollment' || identity?.state === 'not-enrolled' || identity?.state === 'revoked';
}
