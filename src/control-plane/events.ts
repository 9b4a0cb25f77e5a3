import type { AccessLevelEvent } from '../protocol/admin.js';
import type { Directives } from '../protocol/wire.js';

type AccessListener = (id: number, event: AccessLevelEvent) => void;
/** `null` tells the stream to close: the device was revoked. */
type DirectiveListener = (directives: Directives | null) => void;

/**
 * In-process fan-out for the SSE streams. A ring of recent access-level events lets a resource server that
 * reconnects with Last-Event-ID catch up instead of missing a revocation. With several control-plane
 * replicas this becomes Postgres LISTEN/NOTIFY (docs/control-plane.md).
 */
export class EventHub {
  private seq = 0;
  private readonly ring: { id: number; event: AccessLevelEvent }[] = [];
  private readonly access = new Set<AccessListener>();
  private readonly devices = new Map<string, Set<DirectiveListener>>();

  constructor(private readonly ringSize = 1000) {}

  publishAccess(event: AccessLevelEvent): void {
    const id = ++this.seq;
    this.ring.push({ id, event });
    if (this.ring.length > this.ringSize) this.ring.shift();
    for (const l of this.access) l(id, event);
  }

  /** Events after `lastId` still in the ring, oldest first. */
  since(lastId: number): { id: number; event: AccessLevelEvent }[] {
    return this.ring.filter((e) => e.id > lastId);
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
