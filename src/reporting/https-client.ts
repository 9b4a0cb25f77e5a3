import { Agent, request } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';

/** What the agent presents and trusts. `ca` is the pinned step-ca root and nothing else. */
export interface TlsMaterial {
  cert: string;
  key: string;
  ca: string;
}

/**
 * Supplies the device's current mTLS credentials. Asked before every connection, so a renewed certificate
 * is used from the next request on without restarting anything.
 */
export interface TlsIdentity {
  current(): Promise<TlsMaterial>;
}

export type FailureKind = 'network' | 'timeout' | 'too-large' | 'status' | 'invalid-response';

export class RequestFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
    readonly status?: number,
    readonly body?: string,
  ) {
    super(message);
  }
}

export interface HttpsRequest {
  url: string;
  method: 'GET' | 'POST';
  body?: string | Buffer;
  headers?: Record<string, string>;
  /** Without cert and key, no client certificate is presented (enrollment, before the device has one). */
  tls: Pick<TlsMaterial, 'ca'> & Partial<TlsMaterial>;
  /** Whole request, connect to last byte: a server that stalls mid-response cannot hold us longer. */
  timeoutMs: number;
  /** Larger responses are cut off and fail; nothing beyond this is buffered. */
  maxBytes: number;
  agent?: Agent;
}

export interface HttpsResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One bounded HTTPS request; never resolves with more than `maxBytes` or later than `timeoutMs`. */
export function httpsRequest(r: HttpsRequest): Promise<HttpsResponse> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (err: RequestFailure | null, res?: HttpsResponse): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      if (err) {
        req.destroy();
        reject(err);
      } else if (res) resolve(res);
    };
    const req = request(r.url, {
      method: r.method,
      ...(r.tls.cert !== undefined && r.tls.key !== undefined ? { cert: r.tls.cert, key: r.tls.key } : {}),
      ca: r.tls.ca,
      ...(r.agent ? { agent: r.agent } : { agent: false }),
      headers: {
        accept: 'application/json',
        ...(r.body === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(r.body)) }),
        ...r.headers,
      },
    });
    const deadline = setTimeout(() => {
      finish(new RequestFailure('timeout', `no complete response within ${r.timeoutMs} ms`));
    }, r.timeoutMs);
    req.on('error', (err) => {
      finish(new RequestFailure('network', err.message));
    });
    req.on('response', (res) => {
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > r.maxBytes) {
        finish(new RequestFailure('too-large', `response of ${declared} bytes exceeds the ${r.maxBytes}-byte limit`, res.statusCode));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > r.maxBytes) {
          finish(new RequestFailure('too-large', `response exceeds the ${r.maxBytes}-byte limit`, res.statusCode));
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => {
        finish(null, { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
      });
      res.on('aborted', () => {
        finish(new RequestFailure('network', 'connection closed mid-response'));
      });
      res.on('error', (err) => {
        finish(new RequestFailure('network', err.message));
      });
    });
    req.end(r.body);
  });
}
