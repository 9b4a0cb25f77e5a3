import { ACCESS_LEVELS, type AccessLevel } from '../policy/schema.js';
import type { ApiTokenScope, CertInfo, DevicePosture } from '../protocol/admin.js';
import type { DeviceFacts } from '../protocol/report.js';
import type { StoredAdmin, StoredApiToken, StoredAuditEntry, StoredDevice, StoredReportMeta, StoredSecret, StoredSession } from './storage.js';

/**
 * The rows both backends read, with the same column names, and their conversion to the storage types. Kept in
 * one place so that a column added to one backend is read the same way by the other. Times are epoch ms.
 */

/** A boolean column: SQLite stores INTEGER 0/1, PostgreSQL BOOLEAN. */
type Flag = number | boolean;

const isSet = (v: Flag): boolean => v === true || (typeof v === 'number' && v !== 0);

export interface SecretRow {
  id: string;
  hash: Buffer;
  label: string | null;
  created_at: number;
  expires_at: number;
  uses_total: number;
  uses_left: number;
  revoked: Flag;
}

export interface DeviceRow {
  id: string;
  facts: string;
  enrolled_at: number;
  secret_id: string | null;
  revoked_at: number | null;
  last_seen: number | null;
  last_seq: number | null;
  access_level: string | null;
  cert: string | null;
  dropped: number;
  announced_level: string | null;
  announced_state: string | null;
  recheck_id: string | null;
  recheck_at: number | null;
  prev_seq: number | null;
  seq_anomalies: number;
  revoked_reason: string | null;
  revoked_serial: string | null;
  reenroll_allowed: Flag;
  posture: string | null;
  announced_attrs: string | null;
}

/** What the report history lists of a report; each backend's own row adds its ordering column and the body. */
export interface ReportMetaRow {
  body_size: number;
  report_id: string;
  seq: number;
  generated_at: string;
  received_at: number;
  access_level: string;
}

export interface ApiTokenRow {
  id: string;
  hash: Buffer;
  scope: string;
  name: string;
  created_at: number;
  revoked_at: number | null;
}

export interface AdminRow {
  name: string;
  password_hash: string;
  created_at: number;
  disabled: Flag;
}

export interface SessionRow {
  id_hash: Buffer;
  admin: string;
  csrf: string;
  created_at: number;
  last_seen: number;
  ip: string;
  user_agent: string | null;
}

export interface AuditRow {
  id: number;
  at: number;
  actor: string;
  action: string;
  target: string | null;
  ip: string | null;
  detail: string | null;
}

export function level(v: string | null): AccessLevel | null {
  return v !== null && (ACCESS_LEVELS as readonly string[]).includes(v) ? (v as AccessLevel) : null;
}

export function toSecret(r: SecretRow): StoredSecret {
  return {
    id: r.id,
    hash: r.hash,
    label: r.label,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    usesTotal: r.uses_total,
    usesLeft: r.uses_left,
    revoked: isSet(r.revoked),
  };
}

export function toDevice(r: DeviceRow): StoredDevice {
  return {
    id: r.id,
    // Our own rows, written from validated values: re-validating on every read would cost more than the query.
    facts: JSON.parse(r.facts) as DeviceFacts,
    enrolledAt: r.enrolled_at,
    secretId: r.secret_id,
    revokedAt: r.revoked_at,
    lastSeen: r.last_seen,
    lastSeq: r.last_seq,
    accessLevel: level(r.access_level),
    cert: r.cert === null ? null : (JSON.parse(r.cert) as CertInfo),
    droppedReports: r.dropped,
    announcedLevel: level(r.announced_level),
    announcedState: r.announced_state,
    recheck: r.recheck_id !== null && r.recheck_at !== null ? { requestId: r.recheck_id, requestedAt: r.recheck_at } : null,
    seqAnomalies: r.seq_anomalies,
    revokedReason: r.revoked_reason,
    revokedSerial: r.revoked_serial,
    reenrollAllowed: isSet(r.reenroll_allowed),
    posture: r.posture === null ? null : (JSON.parse(r.posture) as DevicePosture),
    announcedAttrs: r.announced_attrs,
  };
}

export function toMeta(r: ReportMetaRow): StoredReportMeta {
  return {
    reportId: r.report_id,
    seq: r.seq,
    generatedAt: r.generated_at,
    receivedAt: r.received_at,
    accessLevel: level(r.access_level) ?? 'blocked',
    bodySize: r.body_size,
  };
}

export function toApiToken(r: ApiTokenRow): StoredApiToken {
  // Written only by createApiToken from a validated scope; anything else grants the least.
  const scope: ApiTokenScope = r.scope === 'admin' ? 'admin' : 'gateway';
  return { id: r.id, hash: r.hash, scope, name: r.name, createdAt: r.created_at, revokedAt: r.revoked_at };
}

export const toAdmin = (r: AdminRow): StoredAdmin => ({ name: r.name, passwordHash: r.password_hash, createdAt: r.created_at, disabled: isSet(r.disabled) });

export const toSession = (r: SessionRow): StoredSession => ({
  idHash: r.id_hash,
  admin: r.admin,
  csrf: r.csrf,
  createdAt: r.created_at,
  lastSeen: r.last_seen,
  ip: r.ip,
  userAgent: r.user_agent,
});

export const toAudit = (r: AuditRow): StoredAuditEntry => ({
  id: r.id,
  at: r.at,
  actor: r.actor,
  action: r.action,
  target: r.target,
  ip: r.ip,
  detail: r.detail === null ? null : (JSON.parse(r.detail) as Record<string, unknown>),
});
