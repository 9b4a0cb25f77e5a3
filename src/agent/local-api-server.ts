import { lstat, mkdir, unlink } from 'node:fs/promises';
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import type { Logger } from '../logging/logger.js';
import type { DeviceContext } from '../posture/remediation/types.js';
import { LineSplitter } from '../protocol/local-api-client.js';
import { LOCAL_API_METHODS, LOCAL_API_VERSION, MAX_REQUEST_FRAME_BYTES, type LocalApiErrorCode, type LocalApiMethod } from '../protocol/local-api-constants.js';
import { METHOD_PARAMS, requestSchema, type AgentMode, type AgentState } from '../protocol/local-api.js';
import type { PostureReport } from '../protocol/report.js';
import { AGENT_VERSION } from '../version.js';

/*
 * The daemon's side of the local API (docs/local-api.md). Any local user may connect, so every client is
 * treated as hostile to the daemon's availability: frames are bounded in size and time, slow readers are
 * dropped instead of buffered for, re-checks are rate-limited, and nothing a client does can throw out of here.
 */

export interface LocalApiBackend {
  mode: AgentMode;
  state(): Promise<AgentState>;
  /** Runs a scan (of `checks` only when given) and resolves with the merged report. */
  recheck(checks?: readonly string[]): Promise<PostureReport>;
  deviceContext(): Promise<DeviceContext>;
  /** Calls listener whenever the state may have changed; returns an unsubscribe function. */
  onChange(listener: () => void): () => void;
}

export interface LocalApiLimits {
  maxClients: number;
  /** A connection whose unsent output exceeds this is a client that does not read: it is dropped. */
  maxBufferedBytes: number;
  /** How long a frame may stay unfinished (bytes without their newline). */
  frameTimeoutMs: number;
  /** At most one state computation per this window for all subscribers together. */
  coalesceMs: number;
  recheckBurst: number;
  recheckRefillMs: number;
  /** Requests of one connection being answered at once; reading from it pauses beyond that. */
  maxInFlight: number;
}

export const DEFAULT_LOCAL_API_LIMITS: LocalApiLimits = {
  maxClients: 128,
  maxBufferedBytes: 1024 * 1024,
  frameTimeoutMs: 5000,
  coalesceMs: 100,
  recheckBurst: 3,
  recheckRefillMs: 10_000,
  maxInFlight: 8,
};

export interface LocalApiServer {
  address: string;
  clients(): number;
  close(): Promise<void>;
}

export interface LocalApiServerOptions {
  address: string;
  backend: LocalApiBackend;
  logger: Logger;
  limits?: Partial<LocalApiLimits>;
  agentVersion?: string;
}

const KNOWN_METHODS: ReadonlySet<string> = new Set(LOCAL_API_METHODS);
const isWindowsPipe = (address: string) => address.startsWith('\\\\.\\pipe\\') || address.startsWith('\\\\?\\pipe\\');

class ClientError extends Error {
  constructor(
    readonly code: LocalApiErrorCode,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

interface Connection {
  readonly n: number;
  readonly socket: Socket;
  readonly splitter: LineSplitter;
  readonly queue: string[];
  inFlight: number;
  /** Set once the subscribe answer went out: from then on state events follow it, never precede it. */
  subscribed: boolean;
  subscribePending: boolean;
  /** A broadcast went out while the subscribe answer was being prepared: that answer may be older. */
  missedBroadcast: boolean;
  readEnded: boolean;
  closed: boolean;
  partialSince: NodeJS.Timeout | undefined;
  tokens: number;
  refilledAt: number;
}

/** Logs dropped clients without letting a reconnect loop flood the log: a few per minute, then a count. */
class DropLog {
  private windowStart = 0;
  private inWindow = 0;
  private suppressed = 0;

  constructor(
    private readonly logger: Logger,
    private readonly perMinute = 10,
  ) {}

  drop(n: number, reason: string): void {
    const now = Date.now();
    if (now - this.windowStart >= 60_000) {
      this.windowStart = now;
      this.inWindow = 0;
    }
    if (this.inWindow >= this.perMinute) {
      this.suppressed++;
      return;
    }
    this.inWindow++;
    const more = this.suppressed;
    this.suppressed = 0;
    this.logger.warn(`local API: dropped client #${n}: ${reason}`, { component: 'local-api', ...(more > 0 ? { alsoDroppedUnlogged: more } : {}) });
  }
}

/** Resolves true when something accepts connections at `address` (within a second), false when nothing does. */
function probe(address: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect(address);
    const done = (live: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve(live);
    };
    // A listener too busy to accept within a second is still alive: it must not be unlinked under it.
    const timer = setTimeout(() => { done(true); }, 1000);
    s.once('connect', () => { done(true); });
    s.once('error', () => { done(false); });
  });
}

function listen(server: Server, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    // Both flags: the socket file becomes 0666 (the directory decides who reaches it), and on Windows libuv
    // grants Everyone read/write on the pipe. What the API offers is what any local user may see.
    server.listen({ path: address, readableAll: true, writableAll: true });
  });
}

async function bind(server: Server, address: string): Promise<number | undefined> {
  if (!isWindowsPipe(address)) await mkdir(dirname(address), { recursive: true, mode: 0o755 });
  try {
    await listen(server, address);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    // A pipe exists only while its server lives, so on Windows "in use" always means a live daemon.
    if (isWindowsPipe(address) || (await probe(address))) throw new Error(`another vigil daemon is serving ${address}`, { cause: err });
    // Only a socket is ever removed: a regular file at the path is someone's mistake to see, not to delete.
    const st = await lstat(address).catch(() => null);
    if (st && !st.isSocket()) throw new Error(`${address} exists and is not a socket; refusing to replace it`, { cause: err });
    // A killed daemon's leftover: it refuses connections, so no one is served by it.
    await unlink(address).catch(() => undefined);
    await listen(server, address);
  }
  if (isWindowsPipe(address)) return undefined;
  return (await lstat(address)).ino;
}

export async function startLocalApiServer(opts: LocalApiServerOptions): Promise<LocalApiServer> {
  const limits: LocalApiLimits = { ...DEFAULT_LOCAL_API_LIMITS, ...opts.limits };
  const { backend, logger, address } = opts;
  const agentVersion = opts.agentVersion ?? AGENT_VERSION;
  const connections = new Set<Connection>();
  const dropLog = new DropLog(logger);
  let counter = 0;
  let closing = false;

  const helloLine = `${JSON.stringify({ type: 'hello', protocol: LOCAL_API_VERSION, agentVersion, mode: backend.mode, pid: process.pid })}\n`;

  function write(conn: Connection, data: string | Buffer): void {
    if (conn.closed) return;
    // Checked before adding, so that one large frame alone never counts as a slow reader.
    if (conn.socket.writableLength > limits.maxBufferedBytes) {
      drop(conn, `does not read its answers (${conn.socket.writableLength} bytes unsent)`);
      return;
    }
    conn.socket.write(data);
  }

  function send(conn: Connection, frame: object): void {
    write(conn, `${JSON.stringify(frame)}\n`);
  }

  function sendError(conn: Connection, id: number | null, code: LocalApiErrorCode, message: string, retryAfterMs?: number): void {
    send(conn, { type: 'error', id, error: { code, message, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) } });
  }

  /** Ends the connection for a protocol violation: the reason frame first, then close. */
  function reject(conn: Connection, code: LocalApiErrorCode, message: string): void {
    if (conn.closed) return;
    sendError(conn, null, code, message);
    dropLog.drop(conn.n, message);
    release(conn);
    conn.socket.end();
    // A client that does not read would keep the half-closed socket forever.
    setTimeout(() => conn.socket.destroy(), 1000).unref();
  }

  function drop(conn: Connection, reason: string): void {
    if (conn.closed) return;
    dropLog.drop(conn.n, reason);
    release(conn);
    conn.socket.destroy();
  }

  function release(conn: Connection): void {
    if (conn.closed) return;
    conn.closed = true;
    clearTimeout(conn.partialSince);
    conn.queue.length = 0;
    connections.delete(conn);
  }

  function takeToken(conn: Connection): number {
    const now = Date.now();
    conn.tokens = Math.min(limits.recheckBurst, conn.tokens + (now - conn.refilledAt) / limits.recheckRefillMs);
    conn.refilledAt = now;
    if (conn.tokens >= 1) {
      conn.tokens -= 1;
      return 0;
    }
    return Math.ceil((1 - conn.tokens) * limits.recheckRefillMs);
  }

  async function dispatch(conn: Connection, method: LocalApiMethod, params: Record<string, unknown>): Promise<unknown> {
    switch (method) {
      case 'ping':
        return { pong: true };
      case 'state':
        return backend.state();
      case 'subscribe': {
        conn.subscribePending = true;
        conn.missedBroadcast = false;
        return backend.state();
      }
      case 'unsubscribe':
        conn.subscribed = false;
        conn.subscribePending = false;
        return {};
      case 'recheck': {
        const wait = takeToken(conn);
        if (wait > 0) throw new ClientError('rate-limited', `too many re-checks; the next is accepted in ${wait} ms`, wait);
        const checks = params.checks as string[] | undefined;
        try {
          return { report: await backend.recheck(checks) };
        } catch (err) {
          throw new ClientError('failed', `the re-check failed: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      case 'device-context':
        return backend.deviceContext();
    }
  }

  async function handle(conn: Connection, line: string): Promise<void> {
    let doc: unknown;
    try {
      doc = JSON.parse(line);
    } catch {
      doc = undefined;
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
      reject(conn, 'bad-frame', 'not a JSON object on one line');
      return;
    }
    const rawId = (doc as Record<string, unknown>).id;
    const knownId = typeof rawId === 'number' && Number.isInteger(rawId) && rawId >= 0 && rawId <= 2 ** 31 - 1 ? rawId : null;
    const req = requestSchema.safeParse(doc);
    if (!req.success) {
      sendError(conn, knownId, 'bad-request', `not a request: ${req.error.issues.map((i) => `${i.path.join('.') || '(frame)'}: ${i.message}`).join('; ')}`);
      return;
    }
    const { id, v, method } = req.data;
    if (v !== LOCAL_API_VERSION) {
      sendError(conn, id, 'unsupported-version', `this agent speaks protocol version ${LOCAL_API_VERSION}, not ${v}`);
      return;
    }
    if (!KNOWN_METHODS.has(method)) {
      sendError(conn, id, 'unknown-method', `no method "${method}"; known: ${LOCAL_API_METHODS.join(', ')}`);
      return;
    }
    const m = method as LocalApiMethod;
    const params = METHOD_PARAMS[m].safeParse(req.data.params ?? {});
    if (!params.success) {
      sendError(conn, id, 'bad-request', `bad params for ${m}: ${params.error.issues.map((i) => `${i.path.join('.') || '(params)'}: ${i.message}`).join('; ')}`);
      return;
    }
    try {
      const result = await dispatch(conn, m, params.data);
      send(conn, { type: 'result', id, result });
      // An unsubscribe that overtook this answer wins: the pending flag is gone then.
      if (m === 'subscribe' && conn.subscribePending) {
        conn.subscribePending = false;
        conn.subscribed = true;
        if (conn.missedBroadcast) changed();
      }
    } catch (err) {
      if (m === 'subscribe') conn.subscribePending = false;
      if (err instanceof ClientError) sendError(conn, id, err.code, err.message, err.retryAfterMs);
      else {
        logger.warn(`local API: ${m} failed`, { component: 'local-api', error: err instanceof Error ? err.message : String(err) });
        sendError(conn, id, 'failed', `${m} failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }

  function pump(conn: Connection): void {
    while (!conn.closed && conn.inFlight < limits.maxInFlight && conn.queue.length > 0) {
      const line = conn.queue.shift() as string;
      conn.inFlight++;
      void handle(conn, line)
        .catch((err: unknown) => {
          // handle() catches what it awaits; this is for a bug in it, which must not take the daemon down.
          logger.error('local API: request handler failed', { component: 'local-api', error: err instanceof Error ? err.message : String(err) });
        })
        .finally(() => {
          conn.inFlight--;
          pump(conn);
        });
    }
    if (conn.closed) return;
    // Pipelined requests beyond maxInFlight wait in the kernel's buffer, not in ours.
    if (conn.queue.length > 0) conn.socket.pause();
    else if (conn.readEnded) {
      if (conn.inFlight === 0) {
        release(conn);
        conn.socket.end();
      }
    } else conn.socket.resume();
  }

  function onData(conn: Connection, chunk: Buffer): void {
    if (conn.closed) return;
    const { lines, tooLarge } = conn.splitter.push(chunk);
    for (const line of lines) {
      // Tolerates CRLF from hand-typed sessions and blank lines between frames.
      const trimmed = line.endsWith('\r') ? line.slice(0, -1) : line;
      if (trimmed.trim() !== '') conn.queue.push(trimmed);
    }
    if (tooLarge) {
      reject(conn, 'frame-too-large', `a frame longer than ${MAX_REQUEST_FRAME_BYTES} bytes`);
      return;
    }
    // The clock is per frame: a chunk that finished one frame and began the next restarts it.
    if (conn.splitter.partialBytes === 0 || lines.length > 0) {
      clearTimeout(conn.partialSince);
      conn.partialSince = undefined;
    }
    if (conn.splitter.partialBytes > 0 && conn.partialSince === undefined) {
      conn.partialSince = setTimeout(() => {
        reject(conn, 'frame-timeout', `a frame left unfinished for more than ${limits.frameTimeoutMs} ms`);
      }, limits.frameTimeoutMs);
    }
    pump(conn);
  }

  // --- state broadcast, shared by all subscribers -----------------------------------------------------
  let dirty = false;
  let broadcastTimer: NodeJS.Timeout | undefined;
  let broadcasting = false;
  let lastBroadcastAt = 0;

  function changed(): void {
    if (closing) return;
    dirty = true;
    if (broadcastTimer !== undefined || broadcasting) return;
    const wait = Math.max(0, lastBroadcastAt + limits.coalesceMs - Date.now());
    broadcastTimer = setTimeout(() => void broadcast(), wait);
  }

  // Separate, so that flow analysis does not assume `dirty` still holds what broadcast() set before it awaited.
  function againIfChanged(): void {
    if (dirty) changed();
  }

  async function broadcast(): Promise<void> {
    broadcastTimer = undefined;
    dirty = false;
    const targets = [...connections].filter((c) => c.subscribed || c.subscribePending);
    if (targets.length === 0) return;
    broadcasting = true;
    lastBroadcastAt = Date.now();
    try {
      const state = await backend.state();
      // Serialized once for everyone: with 50 subscribers the state is stringified once, not 50 times.
      const line = Buffer.from(`${JSON.stringify({ type: 'event', event: 'state', state })}\n`);
      for (const conn of targets) {
        if (conn.subscribed) write(conn, line);
        else if (conn.subscribePending) conn.missedBroadcast = true;
      }
    } catch (err) {
      logger.warn('local API: cannot compute the state for subscribers', { component: 'local-api', error: err instanceof Error ? err.message : String(err) });
    } finally {
      broadcasting = false;
      againIfChanged();
    }
  }

  // --- the listener ---------------------------------------------------------------------------------------
  // allowHalfOpen: `printf '…\n' | socat - UNIX-CONNECT:…` closes its side first and still waits for the answer.
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: false });
  server.on('connection', (socket) => {
    const n = ++counter;
    socket.on('error', () => {
      // EPIPE, ECONNRESET and the like: the client is gone; 'close' follows and cleans up.
    });
    if (closing) {
      socket.destroy();
      return;
    }
    if (connections.size >= limits.maxClients) {
      socket.end(`${JSON.stringify({ type: 'error', id: null, error: { code: 'busy', message: `the agent serves ${limits.maxClients} clients already; try again later` } })}\n`);
      setTimeout(() => socket.destroy(), 1000).unref();
      dropLog.drop(n, `over the limit of ${limits.maxClients} clients`);
      return;
    }
    const conn: Connection = {
      n,
      socket,
      splitter: new LineSplitter(MAX_REQUEST_FRAME_BYTES),
      queue: [],
      inFlight: 0,
      subscribed: false,
      subscribePending: false,
      missedBroadcast: false,
      readEnded: false,
      closed: false,
      partialSince: undefined,
      tokens: limits.recheckBurst,
      refilledAt: Date.now(),
    };
    connections.add(conn);
    socket.on('data', (chunk: Buffer) => { onData(conn, chunk); });
    socket.on('end', () => {
      conn.readEnded = true;
      if (conn.splitter.partialBytes > 0) {
        reject(conn, 'bad-frame', 'the connection ended in the middle of a frame');
        return;
      }
      pump(conn);
    });
    socket.on('close', () => { release(conn); });
    write(conn, helloLine);
  });

  const ino = await bind(server, address);
  server.on('error', (err) => {
    logger.error('local API: listener error', { component: 'local-api', error: err.message });
  });
  const unsubscribe = backend.onChange(changed);
  logger.info(`local API listening on ${address}`, { component: 'local-api' });

  return {
    address,
    clients: () => connections.size,
    async close() {
      if (closing) return;
      closing = true;
      unsubscribe();
      clearTimeout(broadcastTimer);
      const closed = new Promise<void>((resolve) => server.close(() => { resolve(); }));
      for (const conn of [...connections]) {
        release(conn);
        conn.socket.destroy();
      }
      await closed;
      if (ino !== undefined) {
        // Only our own socket: a daemon started after us may already have replaced it.
        const st = await lstat(address).catch(() => null);
        if (st && st.ino === ino) await unlink(address).catch(() => undefined);
      }
    },
  };
}
