import { EventEmitter } from 'node:events';
import type { IdentityStatus } from '../identity/manager.js';
import type { IdentitySummary, ReportingSummary } from '../protocol/local-api.js';

/**
 * What the daemon's parts tell its clients about themselves. Reporting lives in an extension the daemon
 * does not know; it posts its status here, and every post is a change the local API pushes to subscribers.
 */
export class StatusBoard extends EventEmitter<{ change: [] }> {
  private reportingNow: () => ReportingSummary = () => ({ state: 'off', queued: 0, dropped: 0 });

  setReporting(source: () => ReportingSummary): void {
    this.reportingNow = source;
    this.changed();
  }

  reporting(): ReportingSummary {
    return this.reportingNow();
  }

  /** Something clients see may have changed (identity renewed, a report delivered). */
  changed(): void {
    this.emit('change');
  }
}

/**
 * The identity as any local user may see it: no file paths, nothing from which a secret could be read.
 * `configuredCa` fills in the CA before enrollment, so clients can tell "not set up" from "not enrolled yet".
 */
export function identitySummary(s: IdentityStatus, configuredCa: string | undefined): IdentitySummary {
  const out: IdentitySummary = { state: s.state, keyStorage: s.keyStorage, consecutiveFailures: s.consecutiveFailures };
  for (const k of ['reason', 'fix', 'deviceId', 'subject', 'serial', 'notBefore', 'notAfter', 'renewAt', 'lastError', 'nextAttemptAt', 'caUrl'] as const) {
    const v = s[k];
    if (v !== undefined) out[k] = v;
  }
  const note = s.keyStorageNote ?? s.keyStorageWarning;
  if (note !== undefined) out.keyStorageNote = note;
  if (out.caUrl === undefined && configuredCa !== undefined) out.caUrl = configuredCa;
  return out;
}
