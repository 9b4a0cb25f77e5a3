import type { AccessLevel, Policy } from '../policy/schema.js';
import type { CertInfo } from '../protocol/admin.js';
import type { DeviceFacts, PostureReport } from '../protocol/report.js';

/**
 * The one storage seam of the control plane. SQLite implements it today; a Postgres backend implements the
 * same methods (docs/control-plane.md). Every method is async so a networked backend fits without changing
 * callers. Times are epoch milliseconds.
 */
export interface Storage {
  close(): Promise<void>;

  createSecret(secret: NewSecret): Promise<void>;
  getSecret(id: string): Promise<StoredSecret | null>;
  /** Atomically takes one use if the secret is live; concurrent enrollments cannot overspend it. */
  consumeSecret(id: string, now: number): Promise<ConsumeOutcome>;
  listSecrets(): Promise<StoredSecret[]>;
  revokeSecret(id: string): Promise<boolean>;

  /** Registers (or re-registers) a device; re-enrollment resets its report sequence. */
  enrollDevice(device: { id: string; facts: DeviceFacts; secretId: string; now: number }): Promise<void>;
  getDevice(id: string): Promise<StoredDevice | null>;
  listDevices(): Promise<StoredDevice[]>;
  revokeDevice(id: string, now: number): Promise<boolean>;
  /** The server's evaluation of the latest report, after the policy changed. */
  setDeviceLevel(id: string, level: AccessLevel): Promise<void>;
  /** Records what the device's effective level was last announced as, so changes are emitted once. */
  setAnnouncedLevel(id: string, level: AccessLevel, state: string): Promise<void>;
  setRecheck(id: string, recheck: { requestId: string; requestedAt: number } | null): Promise<void>;

  /**
   * Stores a report unless its reportId is known (then returns `inserted: false` and changes nothing). When
   * the report is the device's newest by seq it becomes the device's latest posture, in the same transaction.
   */
  ingestReport(report: NewReport): Promise<{ inserted: boolean; becameLatest: boolean }>;
  getLatestReport(deviceId: string): Promise<StoredReport | null>;
  listReports(deviceId: string, limit: number): Promise<StoredReportMeta[]>;
  /** Keeps the newest `keep` reports per device. */
  pruneReports(keep: number): Promise<number>;

  getPolicy(): Promise<Policy | null>;
  setPolicy(policy: Policy, now: number): Promise<void>;
}

export interface NewSecret {
  id: string;
  hash: Buffer;
  label: string | null;
  createdAt: number;
  expiresAt: number;
  usesTotal: number;
}

export interface StoredSecret extends NewSecret {
  usesLeft: number;
  revoked: boolean;
}

export type ConsumeOutcome = 'ok' | 'unknown' | 'expired' | 'used-up' | 'revoked';

export interface StoredDevice {
  id: string;
  facts: DeviceFacts;
  enrolledAt: number;
  secretId: string | null;
  revokedAt: number | null;
  lastSeen: number | null;
  lastSeq: number | null;
  /** The server's evaluation of the latest report (null before the first report). */
  accessLevel: AccessLevel | null;
  cert: CertInfo | null;
  droppedReports: number;
  announcedLevel: AccessLevel | null;
  announcedState: string | null;
  recheck: { requestId: string; requestedAt: number } | null;
}

export interface NewReport {
  reportId: string;
  deviceId: string;
  seq: number;
  receivedAt: number;
  accessLevel: AccessLevel;
  dropped: number;
  cert: CertInfo;
  /** Clears the pending recheck when the report answers it. */
  answersRecheck: string | null;
  /** The report's own timestamp, from the agent's clock. */
  generatedAt: string;
  /**
   * The envelope exactly as the agent sent it (gzip bytes, or JSON text), kept as the stored copy so the
   * server does not re-serialise what it just parsed.
   */
  body: Buffer | string;
}

export interface StoredReportMeta {
  reportId: string;
  seq: number;
  generatedAt: string;
  receivedAt: number;
  accessLevel: AccessLevel;
}

export interface StoredReport extends StoredReportMeta {
  report: PostureReport;
}
