import type { AccessLevel, Policy } from '../policy/schema.js';
import type { EvaluatedResult } from '../policy/evaluate.js';
import type { Platform } from '../posture/types.js';
import type { AccessLevelEvent, ApiTokenScope, CertInfo, DevicePosture, DeviceState } from '../protocol/admin.js';
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
  /**
   * Holds one use of a live secret for a device's enrollment until `expiresAt`, atomically: uses held by
   * live reservations count as spent, so concurrent enrollments cannot overspend it. A newer reservation for
   * the same device replaces an older one.
   */
  reserveEnrollment(r: NewReservation): Promise<ConsumeOutcome>;
  /**
   * The device's first contact with a certificate issued after its reservation: spends the reserved use and
   * registers (or re-registers) the device with that certificate, in one transaction. Null when no live
   * reservation matches; then nothing changes.
   */
  confirmEnrollment(deviceId: string, cert: CertInfo, certValidFrom: number, now: number): Promise<StoredDevice | null>;
  listSecrets(): Promise<StoredSecret[]>;
  revokeSecret(id: string): Promise<boolean>;

  /**
   * Registers (or re-registers) a device. Re-enrollment starts it afresh (no posture, sequence or certificate
   * until it reports), uses up an admin's permission to re-enroll, and refuses `refuseSerial` from then on.
   */
  enrollDevice(device: { id: string; facts: DeviceFacts; secretId: string; now: number; refuseSerial?: string | null }): Promise<void>;
  getDevice(id: string): Promise<StoredDevice | null>;
  listDevices(): Promise<StoredDevice[]>;
  /** Marks the device revoked and remembers its current certificate's serial, which stays refused. */
  revokeDevice(id: string, now: number, reason: string): Promise<boolean>;
  /** Lifts a revocation: the device is back to `enrolled`, allowed to enroll once more, with no posture. */
  readmitDevice(id: string): Promise<boolean>;
  /** Lets the next enrollment of this ID replace the device without proof of its key. */
  allowReenroll(id: string): Promise<boolean>;
  /** Removes the device and its report history. */
  deleteDevice(id: string): Promise<boolean>;
  /** The server's evaluation of the latest report, after the policy changed. */
  setDeviceLevel(id: string, level: AccessLevel): Promise<void>;
  /**
   * Records what the device's effective level, state and gateway attributes (`attrs`: an opaque digest of its
   * certificate, OS and managed flag) are announced as, so that changes are emitted once, and appends the
   * event in the same transaction. Returns the event's id, which is never reused.
   */
  announce(id: string, level: AccessLevel, state: string, attrs: string, event: AccessLevelEvent): Promise<number>;
  /** Events after `afterId`, oldest first, at most `limit`. */
  eventsSince(afterId: number, limit: number): Promise<StoredEvent[]>;
  /** The oldest event kept (null when none is) and the newest id ever handed out (0 when none). */
  eventBounds(): Promise<{ oldest: number | null; newest: number }>;
  /** Keeps the newest `keep` events and none older than `olderThan`; returns how many went. */
  pruneEvents(keep: number, olderThan: number): Promise<number>;
  setRecheck(id: string, recheck: { requestId: string; requestedAt: number } | null): Promise<void>;

  /**
   * Stores a report unless its reportId is known (then returns `inserted: false` and changes nothing). A new
   * report becomes the device's latest posture in the same transaction, whatever its seq.
   */
  ingestReport(report: NewReport): Promise<Ingested>;
  getLatestReport(deviceId: string): Promise<StoredReport | null>;
  listReports(deviceId: string, limit: number): Promise<StoredReportMeta[]>;
  /** Keeps the newest `keep` reports per device, newest by arrival. */
  pruneReports(keep: number): Promise<number>;

  getPolicy(): Promise<Policy | null>;
  setPolicy(policy: Policy, now: number): Promise<void>;

  /** Bearer tokens (schema 5). Only the SHA-256 of a token is stored; `id` is its public part. */
  createApiToken(token: NewApiToken): Promise<void>;
  getApiToken(id: string): Promise<StoredApiToken | null>;
  /** Newest first, revoked ones included. */
  listApiTokens(): Promise<StoredApiToken[]>;
  /** False when there is no such token or it was already revoked. */
  revokeApiToken(id: string, now: number): Promise<boolean>;

  // ---- admin console (schema 6): accounts, sessions, audit log, fleet overview ----
  // Plain CRUD and set-based queries, so that every backend implements them the same way.

  /** False when an account with this name exists. */
  createAdmin(admin: NewAdmin): Promise<boolean>;
  getAdmin(name: string): Promise<StoredAdmin | null>;
  /** By name. */
  listAdmins(): Promise<StoredAdmin[]>;
  /** Also ends the account's sessions. False when there is no such account. */
  setAdminPassword(name: string, passwordHash: string): Promise<boolean>;
  /** Also ends the account's sessions. */
  deleteAdmin(name: string): Promise<boolean>;

  /** Only the SHA-256 of the cookie value is stored (`idHash`). */
  createSession(session: NewSession): Promise<void>;
  getSession(idHash: Buffer): Promise<StoredSession | null>;
  touchSession(idHash: Buffer, now: number): Promise<void>;
  deleteSession(idHash: Buffer): Promise<boolean>;
  /** Deletes sessions idle since before `idleBefore` or created before `createdBefore`; returns how many. */
  pruneSessions(idleBefore: number, createdBefore: number): Promise<number>;

  /** Returns the entry's id, which orders entries (newest is highest). */
  appendAudit(entry: NewAuditEntry): Promise<number>;
  /** Newest first, with ids below `beforeId` when it is given. */
  listAudit(limit: number, beforeId: number | null): Promise<StoredAuditEntry[]>;

  /**
   * Devices counted set-based by effective state and level (see effectiveOf), with the last report older than
   * `staleBefore` meaning stale, and by OS name.
   */
  fleetCounts(staleBefore: number): Promise<FleetCounts>;
  /**
   * One page of devices in id order after `afterId` ('' for the first), each with the results of its latest
   * report (null before the first report): what re-evaluating the fleet against a policy reads.
   */
  latestResultsPage(afterId: string, limit: number): Promise<DeviceResults[]>;
  /** Replaces the snapshot taken at the same `at`. */
  putFleetSnapshot(snapshot: FleetSnapshot): Promise<void>;
  /** Oldest first, from `since` on. */
  listFleetSnapshots(since: number): Promise<FleetSnapshot[]>;
  pruneFleetSnapshots(olderThan: number): Promise<number>;
}

export interface NewAdmin {
  name: string;
  /** `scrypt$<log2 N>$<r>$<p>$<salt base64>$<key base64>` (see accounts.ts). */
  passwordHash: string;
  createdAt: number;
}

export interface StoredAdmin extends NewAdmin {
  disabled: boolean;
}

export interface NewSession {
  idHash: Buffer;
  admin: string;
  csrf: string;
  createdAt: number;
  ip: string;
  userAgent: string | null;
}

export interface StoredSession extends NewSession {
  lastSeen: number;
}

export interface NewAuditEntry {
  at: number;
  /** `admin:<name>`, `token:<name>`, or `cli:<user>`. */
  actor: string;
  action: string;
  target: string | null;
  ip: string | null;
  detail: Record<string, unknown> | null;
}

export interface StoredAuditEntry extends NewAuditEntry {
  id: number;
}

export interface FleetCounts {
  total: number;
  /** Effective levels: a stale, revoked or never-reported device is blocked. */
  byLevel: Record<AccessLevel, number>;
  byState: Record<DeviceState, number>;
  byOs: { os: string; count: number }[];
}

export interface DeviceResults {
  device: StoredDevice;
  /** The latest report's platform and results, or null before the first report. */
  latest: { platform: Platform; results: EvaluatedResult[] } | null;
}

export interface FleetSnapshot {
  /** Epoch ms at the start of the hour. */
  at: number;
  full: number;
  limited: number;
  blocked: number;
  stale: number;
}

export interface NewApiToken {
  id: string;
  hash: Buffer;
  scope: ApiTokenScope;
  name: string;
  createdAt: number;
}

export interface StoredApiToken extends NewApiToken {
  revokedAt: number | null;
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

export interface NewReservation {
  deviceId: string;
  secretId: string;
  facts: DeviceFacts;
  now: number;
  expiresAt: number;
  /** The certificate of the device being replaced, refused once the new one is confirmed. */
  refuseSerial: string | null;
}

export interface Ingested {
  inserted: boolean;
  /** False only when the device was removed under the report. */
  becameLatest: boolean;
  /** The seq of the report received from this device before this one. */
  previousSeq: number | null;
  /** The seq went back, or jumped further than the reports the agent says it dropped explain. */
  seqAnomaly: boolean;
}

export interface StoredEvent {
  id: number;
  event: AccessLevelEvent;
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
  /** Reports whose seq went back or jumped (state restored on the agent, or a forged report). */
  seqAnomalies: number;
  revokedReason: string | null;
  /** The certificate the device held when it was revoked; refused even after the device is re-admitted. */
  revokedSerial: string | null;
  reenrollAllowed: boolean;
  /** OS and managed flag from the latest report (null before the first one). */
  posture: DevicePosture | null;
  /** The `attrs` last announced (see announce). */
  announcedAttrs: string | null;
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
  /** What the report says of the device's OS and management, kept for gateways. */
  posture: DevicePosture;
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
