import { EventEmitter } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { LOCAL_API_VERSION, MAX_RESPONSE_FRAME_BYTES, defaultSocketPath, type LocalApiErrorCode, type LocalApiMethod } from './local-api-constants.js';
import type { AgentState, HelloFrame, MethodParams, MethodResult } from './local-api.js';

/*
 * The client side of the local API (docs/local-api.md), for `vigil status` and the tray. Deliberately light:
 * only node built-ins and the zod-free constants at runtime, because a short-lived CLI process pays for every
 * module it loads. Frames are checked structurally only; the server is the device's root service, and the
 * schemas are enforced against it in the tests instead.
 */

/** Codes of LocalApiError: the server's error codes, plus what can go wrong before or around a frame. */
export type LocalApiClientErrorCode =
  | LocalApiErrorCode
  | 'not-running'
  | 'permission-denied'
  | 'timeout'
  | 'closed'
  | 'protocol';

export class LocalApiError extends Error {
  override readonly name = 'LocalApiError';
  constructor(
    readonly code: LocalApiClientErrorCode,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/**
 * Splits a byte stream into `\n`-terminated lines without ever holding more than `maxBytes` of one line.
 * Splitting on the byte 0x0A is safe for UTF-8: it never occurs inside a multi-byte sequence.
 * Shared with the server, which bounds requests the same way.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private length = 0;

  constructor(private readonly maxBytes: number) {}

  /** Bytes of an unfinished line held now. */
  get partialBytes(): number {
    return this.length;
  }

  /** The complete lines in `chunk` (after what was held); `tooLarge` once a line, finished or not, exceeds maxBytes. */
  push(chunk: Buffer): { lines: string[]; tooLarge: boolean } {
    const lines: string[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl === -1) break;
      if (this.length + (nl - start) > this.maxBytes) return this.overflow(lines);
      const piece = chunk.subarray(start, nl);
      const line = this.length === 0 ? piece.toString('utf8') : Buffer.concat([...this.parts, piece]).toString('utf8');
      this.parts = [];
      this.length = 0;
      lines.push(line);
      start = nl + 1;
    }
    if (start < chunk.length) {
      if (this.length + (chunk.length - start) > this.maxBytes) return this.overflow(lines);
      // A copy, so a big socket chunk is not kept alive by a small tail.
      const rest = Buffer.from(chunk.subarray(start));
      this.parts.push(rest);
      this.length += rest.length;
    }
    return { lines, tooLarge: false };
  }

  private overflow(lines: string[]): { lines: string[]; tooLarge: boolean } {
    this.parts = [];
    this.length = 0;
    return { lines, tooLarge: true };
  }
}

export interface ConnectOptions {
  /** For connecting and the hello frame (default 5000 ms). */
  timeoutMs?: number;
  /** For every answer but a re-check's, unless a call says otherwise (default 30 s): a hung agent must not hang `vigil status`. */
  callTimeoutMs?: number;
}

export interface CallOptions {
  /** Reject with code `timeout` after this long. By default ConnectOptions.callTimeoutMs; none for `recheck`, which runs a whole scan. */
  timeoutMs?: number;
}

const DEFAULT_CALL_TIMEOUT_MS = 30_000;

type ClientEvents = {
  /** A state event of a subscription. */
  state: [AgentState];
  /** The connection is gone, for whatever reason; every pending call has been rejected. */
  close: [string];
};

interface Pending {
  resolve(result: unknown): void;
  reject(err: LocalApiError): void;
  timer?: NodeJS.Timeout;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function connectError(address: string, err: NodeJS.ErrnoException): LocalApiError {
  switch (err.code) {
    case 'ENOENT':
    case 'ECONNREFUSED':
      return new LocalApiError('not-running', `the Vigil agent is not running (nothing listens on ${address})`);
    case 'EACCES':
    case 'EPERM':
      return new LocalApiError('permission-denied', `permission denied connecting to the Vigil agent at ${address}`);
    default:
      return new LocalApiError('closed', `cannot connect to the Vigil agent at ${address}: ${err.message}`);
  }
}

export class LocalApiClient extends EventEmitter<ClientEvents> {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closeReason: string | null = null;
  private subscribed = false;

  private constructor(
    private readonly socket: Socket,
    readonly hello: HelloFrame,
    private readonly callTimeoutMs: number,
  ) {
    super();
  }

  get closed(): boolean {
    return this.closeReason !== null;
  }

  /** Connects, and resolves once the server's hello frame arrived. */
  static connect(address: string, opts: ConnectOptions = {}): Promise<LocalApiClient> {
    const timeoutMs = opts.timeoutMs ?? 5000;
    return new Promise((resolve, reject) => {
      const socket = netConnect(address);
      const splitter = new LineSplitter(MAX_RESPONSE_FRAME_BYTES);
      let client: LocalApiClient | null = null;
      const fail = (err: LocalApiError) => {
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      };
      const timer = setTimeout(() => {
        fail(new LocalApiError('timeout', `the Vigil agent at ${address} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.on('error', (err: NodeJS.ErrnoException) => {
        if (client) client.shutdown(`connection error: ${err.message}`);
        else fail(connectError(address, err));
      });
      socket.on('close', () => {
        if (client) client.shutdown('the agent closed the connection');
        else fail(new LocalApiError('closed', `the Vigil agent at ${address} closed the connection before greeting`));
      });
      socket.on('data', (chunk: Buffer) => {
        const { lines, tooLarge } = splitter.push(chunk);
        for (const line of lines) {
          let frame: unknown;
          try {
            frame = JSON.parse(line);
          } catch {
            frame = undefined;
          }
          if (!isRecord(frame)) {
            const err = new LocalApiError('protocol', 'the Vigil agent sent a frame that is not a JSON object');
            if (client) client.shutdown(err.message);
            else fail(err);
            return;
          }
          if (client) {
            client.onFrame(frame);
            continue;
          }
          if (frame.type === 'hello' && frame.protocol === LOCAL_API_VERSION) {
            clearTimeout(timer);
            client = new LocalApiClient(socket, frame as unknown as HelloFrame, opts.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS);
            resolve(client);
          } else if (frame.type === 'hello') {
            fail(new LocalApiError('unsupported-version', `the Vigil agent speaks protocol ${String(frame.protocol)}, this client ${LOCAL_API_VERSION}`));
            return;
          } else if (frame.type === 'error' && isRecord(frame.error)) {
            // `busy`: the server says so instead of greeting, then closes.
            fail(new LocalApiError(String(frame.error.code) as LocalApiErrorCode, String(frame.error.message)));
            return;
          } else {
            fail(new LocalApiError('protocol', 'the Vigil agent did not greet with a hello frame'));
            return;
          }
        }
        if (tooLarge) {
          const err = new LocalApiError('protocol', `the Vigil agent sent a frame larger than ${MAX_RESPONSE_FRAME_BYTES} bytes`);
          if (client) client.shutdown(err.message);
          else fail(err);
        }
      });
    });
  }

  call<M extends LocalApiMethod>(method: M, params?: MethodParams<M>, opts: CallOptions = {}): Promise<MethodResult<M>> {
    if (this.closeReason !== null) return Promise.reject(new LocalApiError('closed', `not connected to the Vigil agent: ${this.closeReason}`));
    const id = this.nextId;
    // Ids stay within what the server accepts (2^31-1); a wrap after two billion calls cannot collide in practice.
    this.nextId = this.nextId >= 2 ** 31 - 1 ? 1 : this.nextId + 1;
    return new Promise<MethodResult<M>>((resolve, reject) => {
      const entry: Pending = { resolve: (r) => { resolve(r as MethodResult<M>); }, reject };
      const timeoutMs = opts.timeoutMs ?? (method === 'recheck' ? undefined : this.callTimeoutMs);
      if (timeoutMs !== undefined) {
        entry.timer = setTimeout(() => {
          this.pending.delete(id);
          reject(new LocalApiError('timeout', `the Vigil agent did not answer ${method} within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this.pending.set(id, entry);
      const request = params === undefined ? { v: LOCAL_API_VERSION, id, method } : { v: LOCAL_API_VERSION, id, method, params };
      this.socket.write(`${JSON.stringify(request)}\n`);
    });
  }

  /** Subscribes (once per connection), resolves with the state now; `listener` gets every later state. */
  async subscribe(listener: (state: AgentState) => void, opts: CallOptions = {}): Promise<AgentState> {
    this.on('state', listener);
    if (this.subscribed) return this.call('state', undefined, opts);
    this.subscribed = true;
    try {
      return await this.call('subscribe', undefined, opts);
    } catch (err) {
      this.subscribed = false;
      this.off('state', listener);
      throw err;
    }
  }

  close(): void {
    this.shutdown('closed by the client');
  }

  private onFrame(frame: Record<string, unknown>): void {
    if (frame.type === 'event') {
      if (frame.event === 'state' && isRecord(frame.state)) this.emit('state', frame.state as unknown as AgentState);
      return;
    }
    if (frame.type !== 'result' && frame.type !== 'error') return;
    if (typeof frame.id !== 'number') {
      // An error without an id is about the connection itself (a bad frame of ours); the server closes next.
      if (frame.type === 'error' && isRecord(frame.error)) this.shutdown(`the agent refused a frame: ${String(frame.error.message)}`);
      return;
    }
    const entry = this.pending.get(frame.id);
    if (!entry) return;
    this.pending.delete(frame.id);
    clearTimeout(entry.timer);
    if (frame.type === 'result') entry.resolve(frame.result);
    else {
      const e = isRecord(frame.error) ? frame.error : {};
      const retry = typeof e.retryAfterMs === 'number' ? e.retryAfterMs : undefined;
      entry.reject(new LocalApiError(String(e.code) as LocalApiErrorCode, String(e.message), retry));
    }
  }

  private shutdown(reason: string): void {
    if (this.closeReason !== null) return;
    this.closeReason = reason;
    this.socket.destroy();
    for (const [, entry] of this.pending) {
      clearTimeout(entry.timer);
      entry.reject(new LocalApiError('closed', `the connection to the Vigil agent closed: ${reason}`));
    }
    this.pending.clear();
    this.emit('close', reason);
  }
}

/** Connects to the agent; rejects with a LocalApiError whose code tells "not running" from "permission denied" and timeouts. */
export function connectLocalApi(address: string = defaultSocketPath(), opts: ConnectOptions = {}): Promise<LocalApiClient> {
  return LocalApiClient.connect(address, opts);
}

export interface AgentConnectionOptions extends ConnectOptions {
  backoff?: { initialMs?: number; maxMs?: number };
}

type AgentConnectionEvents = {
  state: [AgentState];
  connected: [HelloFrame];
  /** Emitted once per loss of the agent (and once if the first attempt fails), not on every retry. */
  disconnected: [string];
};

/**
 * A subscription that survives the agent: for the tray, which outlives daemon restarts. Reconnects by itself
 * with capped, jittered exponential backoff, so many clients of one restarted daemon do not come back in step.
 */
export class AgentConnection extends EventEmitter<AgentConnectionEvents> {
  private client: LocalApiClient | null = null;
  private stopped = true;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  private announced: 'connected' | 'disconnected' | null = null;
  private lastState: AgentState | null = null;

  constructor(
    readonly address: string = defaultSocketPath(),
    private readonly opts: AgentConnectionOptions = {},
  ) {
    super();
  }

  get connected(): boolean {
    return this.client !== null;
  }

  get hello(): HelloFrame | null {
    return this.client?.hello ?? null;
  }

  /** The last state received, or null before the first. */
  get state(): AgentState | null {
    return this.lastState;
  }

  start(): this {
    if (!this.stopped) return this;
    this.stopped = false;
    this.attempt = 0;
    void this.connectOnce();
    return this;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    const client = this.client;
    this.client = null;
    client?.close();
  }

  call<M extends LocalApiMethod>(method: M, params?: MethodParams<M>, opts?: CallOptions): Promise<MethodResult<M>> {
    if (!this.client) return Promise.reject(new LocalApiError('not-running', `the Vigil agent is not connected (${this.address})`));
    return this.client.call(method, params, opts);
  }

  private async connectOnce(): Promise<void> {
    let client: LocalApiClient;
    try {
      client = await connectLocalApi(this.address, this.opts);
    } catch (err) {
      this.lost(err instanceof Error ? err.message : String(err));
      return;
    }
    if (this.stopped) {
      client.close();
      return;
    }
    const onState = (state: AgentState) => {
      this.lastState = state;
      this.emit('state', state);
    };
    client.once('close', (reason) => {
      if (this.client !== client) return;
      this.client = null;
      this.lost(reason);
    });
    let first: AgentState;
    try {
      first = await client.subscribe(onState, { timeoutMs: this.opts.timeoutMs ?? 5000 });
    } catch (err) {
      // The close listener above ignores a client that never got this far: losing it is reported here.
      client.close();
      this.lost(err instanceof Error ? err.message : String(err));
      return;
    }
    if (this.isStopped() || client.closed) {
      client.close();
      return;
    }
    this.client = client;
    this.attempt = 0;
    this.announced = 'connected';
    this.emit('connected', client.hello);
    onState(first);
  }

  /** A method, so that flow analysis does not carry a check of `stopped` across an await. */
  private isStopped(): boolean {
    return this.stopped;
  }

  private lost(reason: string): void {
    if (this.stopped) return;
    if (this.announced !== 'disconnected') {
      this.announced = 'disconnected';
      this.emit('disconnected', reason);
    }
    const initial = this.opts.backoff?.initialMs ?? 250;
    const max = this.opts.backoff?.maxMs ?? 5000;
    const base = Math.min(max, initial * 2 ** Math.min(this.attempt, 20));
    this.attempt++;
    const delay = Math.min(max, base * (0.75 + Math.random() * 0.5));
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.connectOnce(), delay);
  }
}
