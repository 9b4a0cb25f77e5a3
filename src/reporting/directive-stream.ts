import { request } from 'node:https';
import { connect as tcpConnect, type Socket } from 'node:net';
import type { ClientRequest } from 'node:http';
import type { Logger } from '../logging/logger.js';
import { directivesSchema, type Directives } from '../protocol/wire.js';
import { backoffDelay, type BackoffOptions } from './backoff.js';
import type { TlsIdentity } from './https-client.js';

export interface DirectiveStreamOptions {
  url: string;
  identity: TlsIdentity;
  logger: Logger;
  onDirectives(d: Directives): void;
  /** The stream is open: the server is reachable and accepts this device's certificate. */
  onConnected?(): void;
  backoff: BackoffOptions;
  /** Reconnect delay after a 401/403: the certificate will not be accepted until it changes. */
  refusedRetryMs?: number;
  /** The server pings every 15 s; silence for this long means the connection is dead. */
  idleTimeoutMs?: number;
  /** One SSE event larger than this is a broken or hostile server. */
  maxEventBytes?: number;
  /**
   * While waiting out a backoff after a network failure, try a bare TCP connection this often (default 5 s,
   * with jitter) and reconnect as soon as one is accepted. A SYN costs the server next to nothing, unlike the
   * TLS handshake the backoff spaces out, and it ends the wait within seconds of a restart instead of
   * minutes.
   */
  probeMs?: number;
}

/**
 * Holds GET /v1/directives/stream open so "re-check now" and policy pushes arrive within seconds, and
 * reconnects with backoff. Lines are parsed incrementally with a bounded buffer.
 */
export class DirectiveStream {
  private req: ClientRequest | null = null;
  private timer: NodeJS.Timeout | null = null;
  private probeTimer: NodeJS.Timeout | null = null;
  private probeSocket: Socket | null = null;
  private stopped = true;
  private attempt = 0;
  /** Set by a failure, cleared by the next connection: retryNow() resets `attempt`, so it cannot tell. */
  private broken = false;

  constructor(private readonly o: DirectiveStreamOptions) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.stopProbing();
    this.req?.destroy();
    this.req = null;
  }

  /** Reconnects now if waiting to (the certificate changed, or the server answers again). */
  retryNow(): void {
    if (this.stopped || !this.timer) return;
    clearTimeout(this.timer);
    this.timer = null;
    this.stopProbing();
    this.attempt = 0;
    void this.connect();
  }

  private stopProbing(): void {
    if (this.probeTimer) clearTimeout(this.probeTimer);
    this.probeTimer = null;
    this.probeSocket?.destroy();
    this.probeSocket = null;
  }

  private probeLater(everyMs: number): void {
    this.probeTimer = setTimeout(() => {
      this.probeTimer = null;
      const { hostname, port } = new URL(this.o.url);
      const socket = tcpConnect({ host: hostname.replace(/^\[|\]$/g, ''), port: Number(port || 443) });
      this.probeSocket = socket;
      socket.setTimeout(everyMs);
      const next = (): void => {
        socket.destroy();
        if (this.probeSocket !== socket) return;
        this.probeSocket = null;
        if (this.timer) this.probeLater(everyMs);
      };
      socket.once('connect', () => {
        socket.destroy();
        if (this.probeSocket !== socket) return;
        this.probeSocket = null;
        this.o.logger.debug('the control plane accepts connections again; reconnecting now', { component: 'reporter' });
        this.retryNow();
      });
      socket.once('error', next);
      socket.once('timeout', next);
    }, everyMs * (0.8 + Math.random() * 0.4));
    this.probeTimer.unref();
  }

  private isRunning(): boolean {
    return !this.stopped;
  }

  private retry(why: string, refused = false): void {
    if (this.stopped || this.timer) return;
    this.broken = true;
    this.req?.destroy();
    this.req = null;
    const delay = refused && this.o.refusedRetryMs !== undefined ? this.o.refusedRetryMs : backoffDelay(this.attempt++, this.o.backoff);
    this.o.logger.debug('directive stream reconnecting', { component: 'reporter', why, delayMs: delay });
    this.timer = setTimeout(() => {
      this.timer = null;
      this.stopProbing();
      void this.connect();
    }, delay);
    // Only a server that did not accept the connection is probed. One that accepted it and then failed (TLS,
    // an error status, silence) is up: a probe would succeed at once and turn the backoff into a reconnect
    // every few seconds.
    const probeMs = this.o.probeMs ?? 5000;
    if (/ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|ENOTFOUND/.test(why) && delay > probeMs) this.probeLater(probeMs);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    let tls;
    try {
      tls = await this.o.identity.current();
    } catch (err) {
      this.retry(`no device identity: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    // stop() may have run while we waited for the identity.
    if (!this.isRunning()) return;
    const maxEvent = this.o.maxEventBytes ?? 64 * 1024;
    const req = request(this.o.url, {
      method: 'GET',
      cert: tls.cert,
      key: tls.key,
      ca: tls.ca,
      agent: false,
      headers: { accept: 'text/event-stream' },
      timeout: this.o.idleTimeoutMs ?? 45_000,
    });
    this.req = req;
    req.on('timeout', () => {
      this.retry('idle timeout');
    });
    req.on('error', (err) => {
      this.retry(err.message);
    });
    req.on('response', (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        const status = res.statusCode ?? 0;
        this.retry(`HTTP ${status}`, status === 401 || status === 403);
        return;
      }
      this.attempt = 0;
      if (this.broken) this.o.logger.info('directive stream reconnected', { component: 'reporter' });
      this.broken = false;
      this.o.onConnected?.();
      res.setEncoding('utf8');
      let buf = '';
      res.on('data', (chunk: string) => {
        buf += chunk;
        for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
          this.handleEvent(buf.slice(0, i));
          buf = buf.slice(i + 2);
        }
        if (buf.length > maxEvent) this.retry('event too large');
      });
      res.on('end', () => {
        this.retry('stream ended');
      });
      res.on('error', (err) => {
        this.retry(err.message);
      });
    });
    req.end();
  }

  private handleEvent(block: string): void {
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
    }
    if (event !== 'directives' || data.length === 0) return;
    try {
      this.o.onDirectives(directivesSchema.parse(JSON.parse(data.join('\n'))));
    } catch (err) {
      this.o.logger.warn('ignoring a malformed directive event', { component: 'reporter', err });
    }
  }
}
