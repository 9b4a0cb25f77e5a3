import type { AccessLevelEvent } from '../protocol/admin.js';
import type { Directives } from '../protocol/wire.js';

type AccessListener = (id: number, event: AccessLevelEvent) => void;
/** `null` tells the stream to close: the device was revoked. */
type DirectiveListener = (directives: Directives | null) => void;

/**
 * In-process fan-out for the SSE streams. Access-level events are stored first (storage.announce gives each
 * its id), so a consumer that reconnects with Last-Event-ID replays them from the database, across restarts.
 * With several control-plane replicas this becomes Postgres LISTEN/NOTIFY (docs/control-plane.md).
 */
export class EventHub {
  private readonly access = new Set<AccessListener>();
  private readonly devices = new Map<string, Set<DirectiveListener>>();

  publishAccess(id: number, event: AccessLevelEvent): void {
    for (const l of this.access) l(id, event);
  }

  subscribeAccess(listener: AccessListener): () => void {
    this.access.add(listener);
    return () => this.access.delete(listener);
  }

  publishDirectives(deviceId: string, directives: Directives): void {
    for (const l of this.devices.get(deviceId) ?? []) l(directives);
  }

  disconnectDevice(deviceId: string): void {
    for (const l of this.devices.get(deviceId) ?? []) l(null);
  }

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
}
