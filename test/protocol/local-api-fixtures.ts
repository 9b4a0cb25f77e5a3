import { connect, type Socket } from 'node:net';
import { bundledPolicy } from '../../src/policy/load.js';
import type { LocalApiBackend } from '../../src/agent/local-api-server.js';
import type { DeviceContext } from '../../src/posture/remediation/types.js';
import { LOCAL_API_METHODS, type LocalApiMethod } from '../../src/protocol/local-api-constants.js';
import { METHOD_RESULTS, agentStateSchema, serverFrameSchema, type AgentState, type ServerFrame } from '../../src/protocol/local-api.js';
import type { PostureReport } from '../../src/protocol/report.js';
import { sampleReport } from '../helpers/report.js';

/** A realistic state: a full Linux posture report and the bundled policy, as the daemon would serve it. */
export function sampleState(over: Partial<AgentState> = {}): AgentState {
  const posture = sampleReport({ failing: ['firewall'] });
  const policy = bundledPolicy();
  return agentStateSchema.parse({
    mode: 'service',
    agentVersion: '0.1.0',
    pid: 4242,
    startedAt: '2026-12-02T08:00:00.000Z',
    platform: 'linux',
    scanning: false,
    posture,
    accessLevel: posture.accessLevel,
    identity: {
      state: 'valid',
      deviceId: 'dev-0142',
      subject: 'ws-0142.devices.example.com',
      serial: '1234567890',
      notBefore: '2026-12-01T00:00:00.000Z',
      notAfter: '2026-12-08T00:00:00.000Z',
      renewAt: '2026-12-05T16:00:00.000Z',
      keyStorage: 'file',
      keyStorageNote: '/var/lib/vigil/identity/device.key (mode 0600, root)',
      consecutiveFailures: 0,
      caUrl: 'https://ca.example.com',
    },
    reporting: { state: 'online', controlPlaneUrl: 'https://vigil.example.com', lastDeliveredAt: '2026-12-02T08:05:00.000Z', queued: 0, dropped: 0 },
    policy: { name: policy.name, version: policy.version, source: 'bundled', document: policy },
    ...over,
  });
}

/** A backend whose answers and failures the test controls; counts how often the state is computed. */
export class FakeBackend implements LocalApiBackend {
  mode = 'service' as const;
  current = sampleState();
  stateCalls = 0;
  recheckCalls: (readonly string[] | undefined)[] = [];
  recheckError: Error | null = null;
  stateDelayMs = 0;
  private listeners = new Set<() => void>();

  async state(): Promise<AgentState> {
    this.stateCalls++;
    if (this.stateDelayMs > 0) await new Promise((r) => setTimeout(r, this.stateDelayMs));
    return this.current;
  }

  recheck(checks?: readonly string[]): Promise<PostureReport> {
    this.recheckCalls.push(checks);
    if (this.recheckError) return Promise.reject(this.recheckError);
    return Promise.resolve(sampleReport());
  }

  deviceContext(): Promise<DeviceContext> {
    return Promise.resolve({ platform: 'linux', desktop: 'gnome', distroFamily: 'debian', osVersion: '12' });
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  listenerCount(): number {
    return this.listeners.size;
  }

  /** Changes the state and tells the server. */
  change(over: Partial<AgentState> = {}): void {
    this.current = { ...this.current, ...over };
    for (const l of this.listeners) l();
  }
}

/**
 * A byte-level client that checks every frame the server sends against the schemas, including each result
 * against the schema of the method it answers.
 */
export class RawClient {
  readonly frames: ServerFrame[] = [];
  readonly invalid: string[] = [];
  readonly closed: Promise<void>;
  private buf = '';
  private methods = new Map<number, LocalApiMethod>();
  private waiters: { pred: (f: ServerFrame) => boolean; resolve: (f: ServerFrame) => void }[] = [];
  isClosed = false;

  private constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buf += chunk;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) !== -1) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        this.accept(line);
      }
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      socket.on('close', () => {
        this.isClosed = true;
        resolve();
      }),
    );
  }

  static open(path: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = connect(path);
      s.once('connect', () => { resolve(new RawClient(s)); });
      s.once('error', reject);
    });
  }

  private accept(line: string): void {
    const parsed = serverFrameSchema.safeParse(JSON.parse(line));
    if (!parsed.success) {
      this.invalid.push(`${parsed.error.message}: ${line.slice(0, 200)}`);
      return;
    }
    const frame = parsed.data;
    if (frame.type === 'result') {
      const method = this.methods.get(frame.id);
      const check = method ? METHOD_RESULTS[method].safeParse(frame.result) : null;
      if (!check?.success) this.invalid.push(`result of ${String(method)}: ${check?.error.message ?? 'unknown id'}`);
    }
    this.frames.push(frame);
    this.waiters = this.waiters.filter((w) => {
      if (!w.pred(frame)) return true;
      w.resolve(frame);
      return false;
    });
  }

  next(pred: (f: ServerFrame) => boolean, timeoutMs = 5000): Promise<ServerFrame> {
    const seen = this.frames.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => { reject(new Error(`no matching frame within ${timeoutMs} ms; got ${JSON.stringify(this.frames.map((f) => f.type))}`)); }, timeoutMs);
      this.waiters.push({
        pred,
        resolve: (f) => {
          clearTimeout(t);
          resolve(f);
        },
      });
    });
  }

  hello(): Promise<ServerFrame> {
    return this.next((f) => f.type === 'hello');
  }

  /** For a request sent in pieces, which send() cannot recognize. */
  track(id: number, method: LocalApiMethod): void {
    this.methods.set(id, method);
  }

  /** Writes bytes as they are; the requests among them are remembered, to check the results against their methods. */
  send(raw: string | Buffer): void {
    if (typeof raw === 'string') {
      for (const line of raw.split('\n')) {
        try {
          const req = JSON.parse(line) as { id?: unknown; method?: unknown };
          if (typeof req.id === 'number' && (LOCAL_API_METHODS as readonly unknown[]).includes(req.method)) this.methods.set(req.id, req.method as LocalApiMethod);
        } catch {
          // Not a request: garbage on purpose.
        }
      }
    }
    this.socket.write(raw);
  }

  /** Sends a request and resolves with the frame answering it. */
  request(id: number, method: string, params?: unknown, v = 1): Promise<ServerFrame> {
    this.send(`${JSON.stringify({ v, id, method, ...(params === undefined ? {} : { params }) })}\n`);
    return this.next((f) => (f.type === 'result' || f.type === 'error') && f.id === id);
  }

  /** Error frames sent without an id: the server's reason for closing the connection. */
  connectionError(): Promise<ServerFrame> {
    return this.next((f) => f.type === 'error' && f.id === null);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export function errorCode(f: ServerFrame): string | undefined {
  return f.type === 'error' ? f.error.code : undefined;
}
