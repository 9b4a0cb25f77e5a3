import { randomUUID } from 'node:crypto';
import { request } from 'node:https';
import { gzipSync } from 'node:zlib';
import type { IncomingHttpHeaders } from 'node:http';
import type { Issued } from './pki.js';
import { sampleReport } from './report.js';

export interface CallOptions {
  method?: string;
  body?: unknown;
  /** Client certificate; omitted means no certificate is presented. */
  tls?: Issued;
  token?: string;
  headers?: Record<string, string>;
}

export interface CallResult {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json: unknown;
}

/** One HTTPS request, verifying the server against `rootPem` only. */
export function call(rootPem: string, url: string, o: CallOptions = {}): Promise<CallResult> {
  return new Promise((resolve, reject) => {
    const body = o.body === undefined ? undefined : JSON.stringify(o.body);
    const req = request(
      url,
      {
        method: o.method ?? (body === undefined ? 'GET' : 'POST'),
        ca: rootPem,
        agent: false,
        ...(o.tls ? { cert: o.tls.certPem, key: o.tls.keyPem } : {}),
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(o.token ? { authorization: `Bearer ${o.token}` } : {}),
          ...o.headers,
        },
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = text ? JSON.parse(text) : null;
          } catch {
            json = null;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

export interface SseEvent {
  event: string;
  data: unknown;
  id?: string;
}

/** Opens an SSE stream and collects events; `next` waits for one matching a predicate. */
export function openSse(rootPem: string, url: string, o: CallOptions = {}) {
  const events: SseEvent[] = [];
  const waiters: { pred: (e: SseEvent) => boolean; resolve: (e: SseEvent) => void }[] = [];
  let status = 0;
  let closed = false;
  let buffer = '';
  const req = request(url, {
    method: 'GET',
    ca: rootPem,
    agent: false,
    ...(o.tls ? { cert: o.tls.certPem, key: o.tls.keyPem } : {}),
    headers: { accept: 'text/event-stream', ...(o.token ? { authorization: `Bearer ${o.token}` } : {}), ...o.headers },
  });
  const ready = new Promise<number>((resolve, reject) => {
    req.on('response', (res) => {
      status = res.statusCode ?? 0;
      resolve(status);
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        for (let i = buffer.indexOf('\n\n'); i >= 0; i = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, i);
          buffer = buffer.slice(i + 2);
          let event = 'message';
          let data = '';
          let id: string | undefined;
          for (const line of block.split('\n')) {
            if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('data: ')) data += line.slice(6);
            else if (line.startsWith('id: ')) id = line.slice(4);
          }
          if (!data) continue;
          const e: SseEvent = { event, data: JSON.parse(data) as unknown, ...(id === undefined ? {} : { id }) };
          events.push(e);
          for (const w of [...waiters]) {
            if (w.pred(e)) {
              waiters.splice(waiters.indexOf(w), 1);
              w.resolve(e);
            }
          }
        }
      });
      res.on('close', () => {
        closed = true;
      });
    });
    req.on('error', (err) => {
      closed = true;
      reject(err);
    });
  });
  req.end();
  return {
    ready,
    events,
    get status() {
      return status;
    },
    get closed() {
      return closed;
    },
    next(pred: (e: SseEvent) => boolean, timeoutMs = 5000): Promise<SseEvent> {
      const found = events.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => {
          reject(new Error(`no matching SSE event within ${timeoutMs} ms; got ${JSON.stringify(events)}`));
        }, timeoutMs);
        waiters.push({
          pred,
          resolve: (e) => {
            clearTimeout(t);
            resolve(e);
          },
        });
      });
    },
    close(): void {
      req.destroy();
    },
  };
}

/**
 * A report from `dev` as the agent sends it: a gzipped envelope of sampleReport({ failing }), on its own mTLS
 * connection. Resolves with the status, or 0 when no answer came (connection refused or lost, 15 s timeout).
 */
export function postReport(rootPem: string, base: string, dev: Issued, o: { reportId?: string; seq: number; failing?: string[] }): Promise<number> {
  const envelope = { protocolVersion: 1, reportId: o.reportId ?? randomUUID(), seq: o.seq, dropped: 0, report: sampleReport({ failing: o.failing ?? [] }) };
  const body = gzipSync(JSON.stringify(envelope));
  return new Promise((resolve) => {
    const req = request(`${base}/v1/reports`, {
      method: 'POST',
      ca: rootPem,
      cert: dev.certPem,
      key: dev.keyPem,
      agent: false,
      timeout: 15_000,
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': String(body.length) },
    });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => {
        resolve(res.statusCode ?? 0);
      });
      res.on('error', () => {
        resolve(0);
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => {
      resolve(0);
    });
    req.end(body);
  });
}
