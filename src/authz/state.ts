import type { AccessLevel } from '../policy/schema.js';
import type { AccessLevelEvent, DeviceOs, DeviceState, DeviceSummary } from '../protocol/admin.js';

/** What the authorizer knows of one device: everything a decision needs, nothing else. */
export interface DeviceEntry {
  id: string;
  level: AccessLevel;
  state: DeviceState;
  compliant: boolean;
  /** Lower-case hex SHA-256 of the DER of the device's current certificate; null before it has one. */
  fingerprint: string | null;
  serial: string | null;
  notAfter: string | null;
  os: DeviceOs | null;
  managed: boolean;
  /** When the control plane said this (the event's `at`), or when the snapshot was read. */
  updatedAt: string;
}

export function entryFromSummary(d: DeviceSummary, readAt: string): DeviceEntry {
  return {
    id: d.id,
    level: d.accessLevel,
    state: d.state,
    compliant: d.compliant,
    fingerprint: d.cert?.fingerprint_sha256 ?? null,
    serial: d.cert?.serial ?? null,
    notAfter: d.cert?.not_after ?? null,
    os: d.os,
    managed: d.managed,
    updatedAt: readAt,
  };
}

/** Null when the event predates schema 5 and lacks the certificate: then only a resync tells the truth. */
export function entryFromEvent(e: AccessLevelEvent): DeviceEntry | null {
  if (e.cert === undefined || e.os === undefined || e.managed === undefined) return null;
  return {
    id: e.device,
    level: e.current,
    state: e.state,
    compliant: e.compliant,
    fingerprint: e.cert?.fingerprint_sha256 ?? null,
    serial: e.cert?.serial ?? null,
    notAfter: e.cert?.not_after ?? null,
    os: e.os,
    managed: e.managed,
    updatedAt: e.at,
  };
}

/** The devices in memory. Replaced whole on a resync, updated one by one by events. */
export class DeviceTable {
  private devices = new Map<string, DeviceEntry>();

  get(id: string): DeviceEntry | undefined {
    return this.devices.get(id);
  }

  set(e: DeviceEntry): void {
    this.devices.set(e.id, e);
  }

  replaceAll(entries: DeviceEntry[]): void {
    this.devices = new Map(entries.map((e) => [e.id, e]));
  }

  get size(): number {
    return this.devices.size;
  }

  all(): IterableIterator<DeviceEntry> {
    return this.devices.values();
  }
}
