import type { AccessLevel, Policy } from '../policy/schema.js';
import type { EvaluatedResult } from '../policy/evaluate.js';
import type { Platform } from '../posture/types.js';
import type { AccessLevelEvent, ApiTokenScope, CertInfo, DevicePosture, DeviceState } from '../protocol/admin.js';
import type { DeviceFacts, PostureReport } from '../protocol/report.js';

/**
 * The one storage seam of the control plane: SqliteStorage (one instance, the default) and PgStorage (several
 * instances on one database; docs/control-plane.md). Every method is async so a networked backend fits without
 * changing callers. Times are epoch milliseconds.
 */
export interface Storage {
  close(): Promise<void>;
  /** Resolves when the store answers a query and can take writes; rejects with why not (readiness checks). */
  ping(): Promise<void>;

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
  /** Newest first (created_at, then id), a page at a time. */
  listSecrets(page: PageQuery): Promise<Page<StoredSecret>>;
  revokeSecret(id: string): Promise<boolean>;

  /**
   * Registers (or re-registers) a device. Re-enrollment starts it afresh (no posture, sequence or certificate
   * until it reports), uses up an admin's permission to re-enroll, and refuses `refuseSerial` from then on.
   */
  enrollDevice(device: { id: string; facts: DeviceFacts; secretId: string; now: number; refuseSerial?: string | null }): Promise<void>;
  getDevice(id: string): Promise<StoredDevice | null>;
  /**
   * Devices in id order after `q.after` (an id; null for the first page) that match every filter given, at
   * most `q.limit` of them. `next` is the last id returned when the page is full (there may be more), null
   * when the end was reached. A backend that must scan many rows to fill a sparse page does so in bounded
   * chunks that yield to the event loop.
   */
  listDevicesPage(q: DevicePageQuery): Promise<{ devices: StoredDevice[]; next: string | null }>;
  /** Marks the device revoked and remembers its current certificate's serial, which stays refused. */
  revokeDevice(id: string, now: number, reason: string): Promise<boolean>;
  /** Lifts a revocation: the device is back to `enrolled`, allowed to enroll once more, with no posture. */
  readmitDevice(id: string): Promise<boolean>;
  /** Lets the next enrollment of this ID replace the device without proof of its key. */
  allowReenroll(id: string): Promise<boolean>;
  /** Removes the device and its report history (in bounded batches, the device row last). */
  deleteDevice(id: string): Promise<boolean>;
  /**
   * The server's evaluations of the devices' latest reports after the policy changed, in one transaction. Each
   * applies only while `reportId` is still the device's latest report (a report that arrived meanwhile was
   * evaluated under the new policy itself); returns, per item, whether it applied.
   */
  setDeviceLevels(items: readonly { id: string; level: AccessLevel; reportId: string }[]): Promise<boolean[]>;
  /**
   * One step of the stale sweep: examines at most `q.limit` devices after `q.after` (id order) and returns
   * those whose announced state or level differs from their effective one (see effectiveOf: stale when
   * `last_seen < q.staleBefore`), or whose attrs were never announced; `next` continues the scan (null at the
   * end). Cheap enough per step to run on the event loop; the caller yields between steps.
   */
  devicesNeedingAnnouncement(q: { after: string | null; limit: number; staleBefore: number }): Promise<{ devices: StoredDevice[]; next: string | null }>;
  /**
   * Records what each device's effective level, state and gateway attributes (`attrs`: an opaque digest of its
   * certificate, OS and managed flag) are announced as, so that changes are emitted once, and appends their
   * events, all in one transaction (one flush for the batch). An item with `ifUnchanged` is skipped (its entry
   * is null, no event) when the device row no longer has those values: a report or revocation got there
   * first. Returns each item's event id, which is never reused.
   */
  announceMany(items: readonly Announcement[]): Promise<(number | null)[]>;
  /** Events after `afterId`, oldest first, at most `limit`. */
  eventsSince(afterId: number, limit: number): Promise<StoredEvent[]>;
  /** The oldest event kept (null when none is) and the newest id ever handed out (0 when none). */
  eventBounds(): Promise<{ oldest: number | null; newest: number }>;
  /**
   * Keeps the newest `keep` events and none older than `olderThan`, deleting from the oldest at most
   * `batchLimit` per transaction and yielding between them; returns how many went.
   */
  pruneEvents(keep: number, olderThan: number, batchLimit: number): Promise<number>;
  setRecheck(id: string, recheck: { requestId: string; requestedAt: number } | null): Promise<void>;

  /**
   * Stores a report unless its reportId is known (then returns `inserted: false` and changes nothing). A new
   * report becomes the device's latest posture in the same transaction, whatever its seq.
   */
  ingestReport(report: NewReport): Promise<Ingested>;
  getLatestReport(deviceId: string): Promise<StoredReport | null>;
  /** The device's reports, newest arrival first, a page at a time. */
  listReports(deviceId: string, page: PageQuery): Promise<Page<StoredReportMeta>>;
  /**
   * Applies the retention rules to every device's history, deleting at most `batchLimit` reports per
   * transaction and yielding to the event loop between transactions; returns how many went. A device's latest
   * report (its current posture) is never deleted, whatever the rules say.
   */
  pruneReports(rules: RetentionRules, batchLimit: number): Promise<number>;

  getPolicy(): Promise<Policy | null>;
  setPolicy(policy: Policy, now: number): Promise<void>;

  /** Bearer tokens (schema 5). Only the SHA-256 of a token is stored; `id` is its public part. */
  createApiToken(token: NewApiToken): Promise<void>;
  getApiToken(id: string): Promise<StoredApiToken | null>;
  /** Newest first (created_at, then id), revoked ones included, a page at a time. */
  listApiTokens(page: PageQuery): Promise<Page<StoredApiToken>>;
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
   * One page of devices in id order after `afterId` ('' for the first), counted set-based by effective state
   * and level (see effectiveOf; a last report older than `staleBefore` means stale) and OS name, with the
   * checks that failed in the latest report of those not revoked. Callers page so that no query holds the
   * event loop for long at 100,000 devices.
   */
  fleetCountsPage(staleBefore: number, afterId: string, limit: number): Promise<FleetCountsPage>;
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

export interface FleetCountsPage {
  /** The page's last device id; null when no device comes after `afterId`. */
  lastId: string | null;
  /** Effective levels: a stale, revoked or never-reported device is blocked. */
  groups: { state: DeviceState; level: AccessLevel; os: string; count: number }[];
  failing: { check: string; count: number }[];
}

export interface DeviceResults {
  device: StoredDevice;
  /**
   * The latest report (null before the first): its id, and a function that inflates and parses it for its
   * platform and results, called only when needed (it is the costly part: about a millisecond a report).
   */
  latest: { reportId: string; read: () => { platform: Platform; results: EvaluatedResult[] } } | null;
}

export interface FleetSnapshot {
  /** Epoch ms at the start of the hour. */
  at: number;
  full: number;
  limited: number;
  blocked: number;
  stale: number;
}

/**
 * A page request. `after` is the `next` of the previous page (null for the first); it is a backend-specific
 * string that the HTTP layer wraps into an opaque cursor.
 */
export interface PageQuery {
  after: string | null;
  limit: number;
}

/** A cursor that is not one the list handed out; the HTTP layer answers 400. */
export class InvalidCursorError extends Error {}

export interface Page<T> {
  items: T[];
  /** Null on the last page. */
  next: string | null;
}

/** Every filter given must match. Times are epoch ms. */
export interface DeviceFilter {
  /** Effective state, as effectiveOf computes it with the query's `staleBefore`. */
  state?: DeviceState;
  /** Effective level (blocked unless active). */
  level?: AccessLevel;
  /** The OS id (`ubuntu`, `macos`, `windows`) or platform (`linux`, `darwin`, `win32`) of the latest report, else of the enrollment. */
  os?: string;
  /** A check that failed in the device's latest report. */
  failingCheck?: string;
  /** Last report received before this time (devices that never reported do not match). */
  seenBefore?: number;
  /** Last report received at or after this time. */
  seenAfter?: number;
  /** Case-insensitive substring of the device id or hostname. */
  q?: string;
}

export interface DevicePageQuery extends PageQuery {
  /** now - maxReportAge: a device last seen before this is stale. */
  staleBefore: number;
  filter: DeviceFilter;
}

/** Report retention; every rule applies, and each device keeps its latest report regardless. */
export interface RetentionRules {
  /** The newest this many reports of a device (by arrival) are kept. */
  keep: number;
  /** Reports received before this time (epoch ms) go; null: no age limit. */
  olderThan: number | null;
  /** A device's newest reports are kept while their stored bodies add up to at most this; null: no limit. */
  maxBytesPerDevice: number | null;
}

export interface Announcement {
  id: string;
  level: AccessLevel;
  state: DeviceState;
  attrs: string;
  event: AccessLevelEvent;
  /** The device row as the caller saw it; the announcement is skipped when any of these changed since. */
  ifUnchanged?: { lastSeen: number | null; revokedAt: number | null; announcedLevel: AccessLevel | null; announcedState: string | null };
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
  /** Ids of the checks whose status is `fail` in this report, for the device list's `failingCheck` filter. */
  failingChecks: string[];
  /**
   * The envelope exactly as the agent sent it (gzip bytes, or JSON text), kept as the stored copy so the
   * server does not re-serialise what it just parsed.
   */
  body: Buffer | string;
}

export interface StoredReportMeta {
  reportId: string;
  /** The stored body's size in bytes (what the per-device size limit counts). */
  bodySize: number;
  seq: number;
  generatedAt: string;
  receivedAt: number;
  accessLevel: AccessLevel;
}

export interface StoredReport extends StoredReportMeta {
  report: PostureReport;
}
