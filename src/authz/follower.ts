import { request, type RequestOptions } from 'node:https';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { z } from 'zod';
import type { Logger } from '../logging/logger.js';
import { accessLevelEventSchema, deviceListSchema } from '../protocol/admin.js';
import { DeviceTable, entryFromEvent, entryFromSummary, type DeviceEntry } from './state.js';

export interface FollowerOptions {
  controlPlaneUrl: string;
  caRootPem: string;
  token: string;
  logger: Logger;
  table: DeviceTable;
  /** No byte from the stream (the server pings every 15 s) for this long: the connection is dead. */
  idleMs: number;
  now?: () => number;
  /** Reconnect delays grow from here to maxRetryMs. */
  minRetryMs?: number;
  maxRetryMs?: number;
}

export interface FollowerStatus {
  connected: boolean;
  /** The table reflects the control plane as of the stream's position (a snapshot plus every event since). */
  synced: boolean;
  /** When the stream last stopped being connected and synced; null while it is. */
  downSince: number | null;
  everSynced: boolean;
  lastEventId: number | null;
  /** `at` of the newest event applied, as the control plane stamped it. */
  lastEventAt: number | null;
  reconnects: number;
  resyncs: number;
  lastError: string | null;
}

const resetSchema = z.object({ reason: z.string(), resync: z.string() });

/** One line saying what a response from the control plane got wrong. */
function badResponse(what: string, err: z.ZodError): string {
  const i = err.issues[0];
  return `${what}: ${i ? `${i.path.join('.') || '(body)'}: ${i.message}` : 'invalid'}${err.issues.length > 1 ? ` (+${err.issues.length - 1} more)` : ''}`;
}

/**
 * Follows the control plane's event stream (`GET /v1/events`) and keeps every device's decision in `table`.
 * It starts from a full read of the device list, taken while the stream is already open so that no change
 * falls between the two; it resumes with Last-Event-ID after a drop, and reads the list again when the
 * server says `reset`, when the ids skip, or when an event lacks what a decision needs.
 */
export class Follower {
  readonly status: FollowerStatus;
  private req: ClientRequest | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryMs: number;
  private stopped = false;
  /** Events that arrive while a snapshot is being read; applied after it, in order. */
  private held: { id: number; entry: DeviceEntry | null }[] | null = null;
  private readonly now: () => number;
  private readonly minRetryMs: number;
  private readonly maxRetryMs: number;
  private readonly listeners = new Set<() => void>();

  constructor(private readonly o: FollowerOptions) {
    this.now = o.now ?? Date.now;
    this.minRetryMs = o.minRetryMs ?? 250;
    this.maxRetryMs = o.maxRetryMs ?? 5000;
    this.retryMs = this.minRetryMs;
    this.status = {
      connected: false,
      synced: false,
      downSince: this.now(),
      everSynced: false,
      lastEventId: null,
      lastEventAt: null,
      reconnects: 0,
      resyncs: 0,
      lastError: null,
    };
  }

  /** Called after every change of status or table (tests wait on it). */
  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private changed(): void {
    for (const l of this.listeners) l();
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.drop(null);
  }

  private headers(): Record<string, string> {
    return { authorization: `Bearer ${this.o.token}` };
  }

  private tlsOptions(): RequestOptions {
    // The control plane's certificate comes from step-ca: only that root is trusted, never the system store.
    return { ca: this.o.caRootPem, agent: false };
  }

  private connect(): void {
    if (this.stopped) return;
    const last = this.status.lastEventId;
    const req = request(new URL('/v1/events', this.o.controlPlaneUrl), {
      ...this.tlsOptions(),
      headers: { ...this.headers(), accept: 'text/event-stream', ...(last === null ? {} : { 'last-event-id': String(last) }) },
    });
    this.req = req;
    // A control plane that accepts the connection but never answers must not hold us here: same bound as silence.
    this.armIdle();
    req.on('response', (res) => {
      if (this.req !== req) {
        res.destroy();
        return;
      }
      if (res.statusCode !== 200) {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c.slice(0, 2000)));
        res.on('end', () => {
          this.drop(`the event stream answered HTTP ${res.statusCode ?? 0}: ${messageOf(body)}`);
        });
        return;
      }
      this.status.connected = true;
      this.status.lastError = null;
      this.retryMs = this.minRetryMs;
      this.o.logger.info('following the control plane event stream', { component: 'authz', url: this.o.controlPlaneUrl, lastEventId: last });
      this.armIdle();
      // Without a position there is nothing to resume: read everything (live events are held meanwhile). With
      // one, the server replays what was missed before anything live (or says reset), so the table is as
      // current as the stream from here on.
      if (last === null) this.resync('first connection');
      else {
        this.status.synced = true;
        this.status.downSince = null;
      }
      this.readStream(res, req);
      this.changed();
    });
    req.on('error', (err) => {
      if (this.req === req) this.drop(`cannot reach the control plane event stream: ${err.message}`);
    });
    req.end();
  }

  private readStream(res: IncomingMessage, req: ClientRequest): void {
    let buffer = '';
    let event = 'message';
    let data = '';
    let id: string | null = null;
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      if (this.req !== req) return;
      this.armIdle();
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl).replace(/\r$/, '');
        buffer = buffer.slice(nl + 1);
        if (line === '') {
          if (data !== '') this.dispatch(event, data, id);
          event = 'message';
          data = '';
          id = null;
        } else if (line.startsWith(':')) {
          continue;
        } else {
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'event') event = value;
          else if (field === 'data') data += data === '' ? value : `\n${value}`;
          else if (field === 'id') id = value;
        }
      }
      if (buffer.length > 1024 * 1024) this.drop('the event stream sent a line over 1 MiB');
    });
    res.on('end', () => {
      if (this.req === req) this.drop('the control plane closed the event stream');
    });
    res.on('error', (err) => {
      if (this.req === req) this.drop(`the event stream failed: ${err.message}`);
    });
  }

  private dispatch(event: string, data: string, idText: string | null): void {
    const id = idText !== null && /^\d{1,15}$/.test(idText) ? Number(idText) : null;
    let body: unknown;
    try {
      body = JSON.parse(data);
    } catch {
      this.drop(`the event stream sent ${event} data that is not JSON`);
      return;
    }
    if (event === 'reset') {
      const r = resetSchema.safeParse(body);
      if (!r.success || id === null) {
        this.drop(r.success ? 'the event stream sent a reset without an id' : badResponse('reset event', r.error));
        return;
      }
      this.o.logger.warn('the control plane cannot replay the events missed; reading every device again', { component: 'authz', reason: r.data.reason });
      this.status.lastEventId = id;
      this.resync(`reset: ${r.data.reason}`);
      return;
    }
    if (event !== 'access-level') return;
    const parsed = accessLevelEventSchema.safeParse(body);
    if (!parsed.success || id === null) {
      this.drop(parsed.success ? 'the event stream sent an access-level event without an id' : badResponse('access-level event', parsed.error));
      return;
    }
    const entry = entryFromEvent(parsed.data);
    if (this.held) {
      this.held.push({ id, entry });
      return;
    }
    this.apply(id, entry, Date.parse(parsed.data.at));
  }

  private apply(id: number, entry: DeviceEntry | null, at: number): void {
    const last = this.status.lastEventId;
    // Replayed or repeated: the table already has it (or something newer from a snapshot).
    if (last !== null && id <= last) return;
    if (last !== null && id !== last + 1) {
      this.o.logger.warn('event ids skipped; reading every device again', { component: 'authz', expected: last + 1, got: id });
      this.status.lastEventId = id;
      this.resync(`event ids skipped from ${last} to ${id}`);
      return;
    }
    this.status.lastEventId = id;
    if (entry === null) {
      // Stored before the control plane sent certificates with its events.
      this.resync('an event without the device certificate');
      return;
    }
    this.o.table.set(entry);
    if (!Number.isNaN(at)) this.status.lastEventAt = at;
    this.changed();
  }

  /** Reads the whole device list; events arriving meanwhile are held and applied after it. */
  private resync(why: string): void {
    if (this.held) return;
    const req = this.req;
    this.held = [];
    this.status.synced = false;
    this.status.resyncs++;
    this.markDown();
    this.o.logger.info('reading every device from the control plane', { component: 'authz', why });
    void this.readDevices().then(
      (entries) => {
        if (this.req !== req || req === null) return;
        this.o.table.replaceAll(entries);
        const held = this.held ?? [];
        this.held = null;
        // The snapshot was read after every held event was committed, so it already reflects them; they only
        // advance the position. Events after the snapshot keep coming on the stream.
        for (const h of held) {
          if (this.status.lastEventId === null || h.id > this.status.lastEventId) this.status.lastEventId = h.id;
          if (h.entry) this.o.table.set(h.entry);
        }
        this.status.synced = true;
        this.status.everSynced = true;
        this.status.downSince = null;
        this.o.logger.info('in step with the control plane', { component: 'authz', devices: entries.length, lastEventId: this.status.lastEventId });
        this.changed();
      },
      (err: unknown) => {
        if (this.req !== req) return;
        this.held = null;
        this.drop(err instanceof Error ? err.message : String(err));
      },
    );
  }

  /**
   * Reads the whole device list, a page at a time (the control plane serves at most 1000 devices per request).
   * Pages are read at different moments; events arriving meanwhile are held and applied after the last page,
   * so a device that changed after its page was read still ends up as the events say.
   */
  private async readDevices(): Promise<DeviceEntry[]> {
    const entries: DeviceEntry[] = [];
    let cursor: string | null = null;
    do {
      const page: { entries: DeviceEntry[]; next: string | null } = await this.readDevicePage(cursor);
      entries.push(...page.entries);
      cursor = page.next;
    } while (cursor !== null);
    return entries;
  }

  private readDevicePage(cursor: string | null): Promise<{ entries: DeviceEntry[]; next: string | null }> {
    return new Promise((resolve, reject) => {
      const readAt = new Date(this.now()).toISOString();
      const url = new URL('/v1/admin/devices', this.o.controlPlaneUrl);
      url.searchParams.set('limit', '1000');
      if (cursor !== null) url.searchParams.set('cursor', cursor);
      const req = request(url, { ...this.tlsOptions(), headers: this.headers(), timeout: 30_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode !== 200) {
            reject(new Error(`GET /v1/admin/devices answered HTTP ${res.statusCode ?? 0}: ${messageOf(text)}`));
            return;
          }
          let body: unknown;
          try {
            body = JSON.parse(text);
          } catch {
            reject(new Error('GET /v1/admin/devices: the body is not JSON'));
            return;
          }
          const list = deviceListSchema.safeParse(body);
          if (!list.success) {
            reject(new Error(badResponse('GET /v1/admin/devices', list.error)));
            return;
          }
          resolve({ entries: list.data.devices.map((d) => entryFromSummary(d, readAt)), next: list.data.next });
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error('GET /v1/admin/devices: no answer within 30 s')));
      req.on('error', (err) => {
        reject(new Error(`GET /v1/admin/devices: ${err.message}`));
      });
      req.end();
    });
  }

  private armIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      this.drop(`the event stream was silent for ${Math.round(this.o.idleMs / 100) / 10} s`);
    }, this.o.idleMs);
    this.idleTimer.unref();
  }

  private markDown(): void {
    if (this.status.downSince === null) this.status.downSince = this.now();
  }

  /** Ends the current connection (if any) and, unless stopped, reconnects with backoff. */
  private drop(why: string | null): void {
    const req = this.req;
    this.req = null;
    this.held = null;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    const wasConnected = this.status.connected;
    this.status.connected = false;
    this.status.synced = false;
    this.markDown();
    req?.destroy();
    if (why !== null) {
      // Logged once per outage, not on every retry of it.
      if (why !== this.status.lastError) this.o.logger.warn('event stream down; retrying', { component: 'authz', error: why });
      this.status.lastError = why;
    }
    this.changed();
    if (this.stopped || this.retryTimer) return;
    if (wasConnected) this.status.reconnects++;
    const wait = this.retryMs;
    this.retryMs = Math.min(this.maxRetryMs, this.retryMs * 2);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, wait);
    this.retryTimer.unref();
  }
}

function messageOf(body: string): string {
  try {
    const m = (JSON.parse(body) as { message?: unknown }).message;
    if (typeof m === 'string') return m;
  } catch {
    // not JSON: the text itself, shortened
  }
  return body.slice(0, 200).replace(/\s+/g, ' ').trim() || '(no body)';
}
