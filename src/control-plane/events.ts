import type { AccessLevelEvent } from '../protocol/admin.js';
import type { Directives } from '../protocol/wire.js';

type AccessListener = (id: number, event: AccessLevelEvent) => void;
/** `null` tells the stream to close: the device was revoked. */
type DirectiveListener = (directives: Directives | null) => void;

/** What a hub that spans instances asks of the local service when another instance changed something. */
export interface ClusterPeer {
  /** The device's directives as stored now; null when it is gone. */
  directivesOf(deviceId: string): Promise<Directives | null>;
  /** Re-reads the stored policy; true when it changed. */
  reloadPolicy(): Promise<boolean>;
}

/**
 * Fan-out for the SSE streams: access-level events to /v1/events consumers, directives to the devices holding
 * /v1/directives/stream. Access-level events are stored first (storage.announce gives each its id), so a
 * consumer that reconnects with Last-Event-ID replays them from the database, across restarts.
 *
 * This class is the transport for one instance: publishing reaches this process's listeners. With several
 * instances on PostgreSQL, PgEventHub (pg-cluster.ts) keeps the same interface and carries each publication
 * to the listeners of every instance.
 */
export class EventHub {
  private readonly access = new Set<AccessListener>();
  private readonly devices = new Map<string, Set<DirectiveListener>>();

  /** An event that storage.announce has committed with this id. */
  publishAccess(id: number, event: AccessLevelEvent): void {
    this.deliverAccess(id, event);
  }

  subscribeAccess(listener: AccessListener): () => void {
    this.access.add(listener);
    return () => this.access.delete(listener);
  }

  /** New directives for a device (a re-check request, a policy change), wherever its stream is held. */
  publishDirectives(deviceId: string, directives: Directives): void {
    this.deliverDirectives(deviceId, directives);
  }

  /** Closes the device's streams, wherever they are held: it was revoked or removed. */
  disconnectDevice(deviceId: string): void {
    this.deliverDisconnect(deviceId);
  }

  /** Null while events reach this instance's clients; else why not (readiness checks). */
  notReady(): string | null {
    return null;
  }

  /** Devices with a stream on this instance. */
  connectedDevices(): string[] {
    return [...this.devices.keys()];
  }

  subscribeDevice(deviceId: string, listener: DirectiveListener): () => void {
    let set = this.devices.get(deviceId);
    if (!set) this.devices.set(deviceId, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.devices.delete(deviceId);
    };
  }

  /** Starts carrying other instances' publications here; one instance has none. */
  start(_peer: ClusterPeer): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  // ---- to this instance's listeners only ----

  protected deliverAccess(id: number, event: AccessLevelEvent): void {
    for (const l of this.access) l(id, event);
  }

  protected deliverDirectives(deviceId: string, directives: Directives): void {
    for (const l of this.devices.get(deviceId) ?? []) l(directives);
  }

  protected deliverDisconnect(deviceId: string): void {
    for (const l of this.devices.get(deviceId) ?? []) l(null);
  }
}
