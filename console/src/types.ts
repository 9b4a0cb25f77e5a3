// Shapes of the admin API, from the server's own protocol module (types only: erased by esbuild, so no zod or
// Node code reaches the bundle), under the names the pages use.
import type { z } from 'zod';
import type {
  AccessLevelEvent,
  DeviceSummary,
  FleetOverview as Overview,
  PolicyPreviewErrors as PolicyErrors,
  PolicyPreviewResult as PolicyPreview,
  SessionInfo as Session,
  SecretInfo,
  deviceDetailSchema,
  reportHistorySchema,
  secretCreateResponseSchema,
} from '../../src/protocol/admin.js';
import type { AccessLevel, Policy } from '../../src/policy/schema.js';

export type { AccessLevel, AccessLevelEvent, DeviceSummary, Overview, Policy, PolicyErrors, PolicyPreview, SecretInfo, Session };
export type DeviceDetail = z.infer<typeof deviceDetailSchema>;
export type ReportHistory = z.infer<typeof reportHistorySchema>;
export type SecretCreated = z.infer<typeof secretCreateResponseSchema>;

export interface DevicePage {
  devices: DeviceSummary[];
  next: string | null;
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
