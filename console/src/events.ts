import type { AccessLevelEvent } from './types.js';

export interface LiveEvent {
  /** The server's event id, or a local counter for a `reset`. */
  key: string;
  event: AccessLevelEvent;
}

export type StreamState = 'connecting' | 'open' | 'closed';
type Listener = (e: LiveEvent | 'reset') => void;

const KEEP = 500;

/**
 * One `/v1/events` stream for the whole app (the session cookie authenticates it), fanned out to the pages
 * that show or apply events: the live page and the device list and page. The latest events are kept so the
 * live page has something to show when it is opened.
 */
export class EventStream {
  private source: EventSource | null = null;
  private readonly listeners = new Set<Listener>();
  private readonly stateListeners = new Set<(s: StreamState) => void>();
  recent: LiveEvent[] = [];
  state: StreamState = 'closed';

  open(): void {
    if (this.source) return;
    const source = new EventSource('/v1/events');
    this.source = source;
    this.setState('connecting');
    source.addEventListener('open', () => {
      this.setState('open');
    });
    source.addEventListener('error', () => {
      // EventSource retries by itself on a dropped connection; it gives up (CLOSED) on an HTTP error such
      // as 401 when the session is gone, which the next API call reports to the user.
      this.setState(source.readyState === EventSource.CLOSED ? 'closed' : 'connecting');
    });
    source.addEventListener('access-level', (msg: MessageEvent<string>) => {
      const item: LiveEvent = { key: msg.lastEventId, event: JSON.parse(msg.data) as AccessLevelEvent };
      this.recent = [item, ...this.recent].slice(0, KEEP);
      for (const l of this.listeners) l(item);
    });
    source.addEventListener('reset', () => {
      for (const l of this.listeners) l('reset');
    });
  }

  close(): void {
    this.source?.close();
    this.source = null;
    this.recent = [];
    this.setState('closed');
  }

  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  onState(l: (s: StreamState) => void): () => void {
    this.stateListeners.add(l);
    return () => this.stateListeners.delete(l);
  }

  private setState(s: StreamState): void {
    this.state = s;
    for (const l of this.stateListeners) l(s);
  }
}

export const events = new EventStream();
