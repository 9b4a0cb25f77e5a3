// Shapes of the admin API. The device and secret shapes come from the server's own protocol module (types
// only: erased by esbuild, so no zod or Node code reaches the bundle); the console-only routes are written
// down here as the console contract (issue #20) states them.
import type { z } from 'zod';
import type {
  AccessLevelEvent,
  DeviceSummary,
  SecretInfo,
  deviceDetailSchema,
  reportHistorySchema,
  secretCreateResponseSchema,
} from '../../src/protocol/admin.js';
import type { AccessLevel, Policy } from '../../src/policy/schema.js';

export type { AccessLevel, AccessLevelEvent, DeviceSummary, Policy, SecretInfo };
export type DeviceDetail = z.infer<typeof deviceDetailSchema>;
export type ReportHistory = z.infer<typeof reportHistorySchema>;
export type SecretCreated = z.infer<typeof secretCreateResponseSchema>;

export interface Session {
  name: string;
  csrf: string;
  idleTimeoutSeconds: number;
}

export interface DevicePage {
  devices: DeviceSummary[];
  next: string | null;
}

export interface Overview {
  total: number;
  byLevel: Record<AccessLevel, number>;
  stale: number;
  needsEnrollment: number;
  revoked: number;
  byOs: { os: string; count: number }[];
  topFailing: { check: string; title: string; count: number }[];
  history: { at: number; full: number; limited: number; blocked: number; stale: number }[];
}

export interface PolicyPreview {
  valid: true;
  current: Policy;
  changes: { total: number; unchanged: number; toFull: number; toLimited: number; toBlocked: number };
  examples: { id: string; hostname: string; from: AccessLevel; to: AccessLevel }[];
}

export interface PolicyErrors {
  valid: false;
  errors: { path: string; message: string }[];
}

export interface AuditEntry {
  id: string | number;
  at: number;
  actor: string;
  action: string;
  target: string | null;
  ip: string;
  detail: Record<string, unknown> | null;
}

export interface AuditPage {
  entries: AuditEntry[];
  next: string | null;
}
