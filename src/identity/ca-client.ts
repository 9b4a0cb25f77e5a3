import { X509Certificate } from 'node:crypto';
import { sha256Hex, splitPem } from './certs.js';
import { IdentityError } from './errors.js';
import type { ProvisionerRef } from './token.js';

/** step-ca's error bodies are JSON with a message; anything else is reduced to its first line. */
export function caErrorMessage(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as { message?: unknown };
    return typeof parsed.message === 'string' ? parsed.message : undefined;
  } catch {
    return body.trim() ? body.trim().split('\n')[0] : undefined;
  }
}

export interface HttpResult {
  status: number;
  body: string;
  /** The server's Date header, else our clock. */
  date: Date;
}

/** What the TLS client presents for mTLS. The key PEM lives in memory only. */
export interface ClientIdentity {
  certChainPem: string;
  keyPem: string;
}

export interface SignResponse {
  crt: string;
  certChain: string[];
}

interface RequestOptions {
  method: 'GET' | 'POST';
  body?: unknown;
  /** Undefined only for the bootstrap fetch, whose answer is authenticated by its hash instead. */
  rootPem: string | undefined;
  identity?: ClientIdentity;
  headers?: Record<string, string>;
  timeoutMs: number;
}

async function httpRequest(url: string, opts: RequestOptions): Promise<HttpResult> {
  // The daemon talks to the CA once a renewal is due, so TLS is loaded then, not kept resident from the start.
  const { request } = await import('node:https');
  const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: opts.method,
        // Only the pinned root: passing `ca` replaces Node's bundled and system roots for this request.
        ca: opts.rootPem,
        rejectUnauthorized: opts.rootPem !== undefined,
        cert: opts.identity?.certChainPem,
        key: opts.identity?.keyPem,
        agent: false,
        timeout: opts.timeoutMs,
        headers: {
          accept: 'application/json',
          ...opts.headers,
          ...(payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          // A CA answer is a few KB; anything huge is not a CA.
          if (size > 1024 * 1024) req.destroy(new Error('response too large'));
          else chunks.push(c);
        });
        res.on('end', () => {
          const date = res.headers.date ? new Date(res.headers.date) : new Date();
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            date: Number.isNaN(date.getTime()) ? new Date() : date,
          });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${opts.timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

function unreachable(url: string, err: unknown): IdentityError {
  const e = err as NodeJS.ErrnoException;
  const why = e.code ?? e.message;
  if (typeof e.code === 'string' && /CERT|SELF_SIGNED|UNABLE_TO|HOSTNAME|ALTNAME/.test(e.code)) {
    return new IdentityError('unreachable', `the server at ${url} does not present a certificate from the pinned root (${why}); check the CA URL`, {
      cause: err,
    });
  }
  return new IdentityError('unreachable', `cannot reach the CA at ${url} (${why}); check the URL and network, it will be retried`, {
    cause: err,
  });
}

export function parseSignResponse(body: string): SignResponse {
  const parsed = JSON.parse(body) as { crt?: unknown; certChain?: unknown; ca?: unknown };
  if (typeof parsed.crt !== 'string') throw new IdentityError('ca-rejected', 'the CA answered without a certificate');
  const chain = Array.isArray(parsed.certChain) ? parsed.certChain.filter((c): c is string => typeof c === 'string') : [];
  if (chain.length === 0 && typeof parsed.ca === 'string') chain.push(parsed.crt, parsed.ca);
  return { crt: parsed.crt, certChain: chain };
}

/**
 * Fetches the root whose fingerprint the admin gave us, as `step ca bootstrap` does. The connection cannot be
 * verified yet (we have no root), so the answer is authenticated by its SHA-256 alone; afterwards the CA
 * must prove, on a verified connection, that it serves a chain from that root.
 */
export async function fetchPinnedRoot(caUrl: string, fingerprint: string, timeoutMs: number): Promise<string> {
  const base = caUrl.replace(/\/+$/, '');
  let res: HttpResult;
  try {
    res = await httpRequest(`${base}/root/${fingerprint}`, { method: 'GET', rootPem: undefined, timeoutMs });
  } catch (err) {
    throw unreachable(base, err);
  }
  let pem: string | undefined;
  if (res.status === 200) {
    const body = JSON.parse(res.body) as { ca?: unknown };
    if (typeof body.ca === 'string') pem = splitPem(body.ca)[0];
  }
  const actual = pem === undefined ? undefined : sha256Hex(new X509Certificate(pem).raw);
  if (pem === undefined || actual !== fingerprint) {
    const roots = actual ? [actual] : await listRootFingerprints(base, timeoutMs);
    throw new IdentityError(
      'fingerprint-mismatch',
      `root fingerprint mismatch: expected ${fingerprint}, but the CA at ${base} has ${roots.join(', ') || 'no matching root'}; check --fingerprint (nothing was saved)`,
    );
  }
  const root = new X509Certificate(pem);
  if (!root.ca || !root.checkIssued(root) || !root.verify(root.publicKey)) {
    throw new IdentityError('fingerprint-mismatch', `the certificate with fingerprint ${fingerprint} is not a self-signed CA root`);
  }
  try {
    await httpRequest(`${base}/health`, { method: 'GET', rootPem: pem, timeoutMs });
  } catch (err) {
    throw unreachable(base, err);
  }
  return pem;
}

async function listRootFingerprints(base: string, timeoutMs: number): Promise<string[]> {
  try {
    const res = await httpRequest(`${base}/roots`, { method: 'GET', rootPem: undefined, timeoutMs });
    const body = JSON.parse(res.body) as { crts?: unknown };
    const crts = Array.isArray(body.crts) ? body.crts.filter((c): c is string => typeof c === 'string') : [];
    return crts.map((c) => sha256Hex(new X509Certificate(c).raw));
  } catch {
    return [];
  }
}

/** Every call is verified against the pinned root only. */
export class CaClient {
  readonly baseUrl: string;

  constructor(
    caUrl: string,
    private readonly rootPem: string,
    private readonly timeoutMs: number,
  ) {
    this.baseUrl = caUrl.replace(/\/+$/, '');
  }

  async call(method: 'GET' | 'POST', path: string, body?: unknown, identity?: ClientIdentity, headers?: Record<string, string>): Promise<HttpResult> {
    try {
      return await httpRequest(`${this.baseUrl}${path}`, { method, body, identity, headers, rootPem: this.rootPem, timeoutMs: this.timeoutMs });
    } catch (err) {
      throw unreachable(this.baseUrl, err);
    }
  }

  /** `notAfter`: a lifetime such as "720h" (step-ca takes a duration there), else the provisioner's default. */
  async sign(csr: string, ott: string, notAfter?: string): Promise<HttpResult & { parsed?: SignResponse }> {
    const res = await this.call('POST', '/1.0/sign', { csr, ott, ...(notAfter === undefined ? {} : { notAfter }) });
    return res.status === 201 || res.status === 200 ? { ...res, parsed: parseSignResponse(res.body) } : res;
  }

  /**
   * step-ca answers 401 for a revoked certificate with a generic message, indistinguishable from other
   * authorization failures; for a certificate still within its validity either status means the CA no
   * longer honours it, which retrying cannot change. Hence the distinct code.
   */
  async renew(identity: ClientIdentity): Promise<SignResponse> {
    const res = await this.call('POST', '/1.0/renew', {}, identity);
    if (res.status === 401 || res.status === 403) {
      throw new IdentityError('revoked', `the CA refused to renew the certificate (HTTP ${res.status}: ${caErrorMessage(res.body) ?? 'no details'})`);
    }
    return this.expectCert(res, 'renewal');
  }

  /**
   * Renewal authorized by a token signed with the certificate's key (see renew-token.ts), for a certificate
   * that has expired. A 401/403 is final for this certificate: its provisioner does not allow renewal after
   * expiry (or it was revoked), so the caller must enroll again.
   */
  async renewWithToken(token: string): Promise<SignResponse> {
    const res = await this.call('POST', '/1.0/renew', {}, undefined, { authorization: `Bearer ${token}` });
    if (res.status === 401 || res.status === 403) {
      throw new IdentityError('expired', `the CA refused to renew the expired certificate (HTTP ${res.status}: ${caErrorMessage(res.body) ?? 'no details'})`);
    }
    return this.expectCert(res, 'renewal');
  }

  async rekey(identity: ClientIdentity, csr: string): Promise<SignResponse> {
    return this.expectCert(await this.call('POST', '/1.0/rekey', { csr }, identity), 'rekey');
  }

  /** Passive revocation over mTLS: the certificate revokes itself, no token needed. */
  async revoke(identity: ClientIdentity, serialDecimal: string): Promise<void> {
    const res = await this.call(
      'POST',
      '/1.0/revoke',
      { serial: serialDecimal, reasonCode: 0, reason: 'vigil unenroll', passive: true },
      identity,
    );
    if (res.status !== 200) {
      throw new IdentityError('ca-rejected', `the CA refused to revoke the certificate (HTTP ${res.status}: ${caErrorMessage(res.body) ?? 'no details'})`);
    }
  }

  /**
   * Passive revocation authorized by a provisioner's token (subject = the serial), as `step ca revoke` does:
   * how the control plane revokes a device's certificate. A certificate that is already revoked counts as done.
   */
  async revokeWithToken(serialDecimal: string, ott: string, reason: string): Promise<'revoked' | 'already-revoked'> {
    const res = await this.call('POST', '/1.0/revoke', { serial: serialDecimal, ott, reasonCode: 0, reason, passive: true });
    if (res.status === 200) return 'revoked';
    const message = caErrorMessage(res.body);
    if (res.status === 400 && message?.includes('already revoked') === true) return 'already-revoked';
    throw new IdentityError('ca-rejected', `the CA refused to revoke serial ${serialDecimal} (HTTP ${res.status}: ${message ?? 'no details'})`);
  }

  async provisioners(): Promise<ProvisionerRef[] | undefined> {
    try {
      const res = await this.call('GET', '/provisioners');
      if (res.status !== 200) return undefined;
      const body = JSON.parse(res.body) as { provisioners?: { name?: unknown; key?: { kid?: unknown } }[] };
      return (body.provisioners ?? []).map((p) => ({
        name: typeof p.name === 'string' ? p.name : '',
        kid: typeof p.key?.kid === 'string' ? p.key.kid : undefined,
      }));
    } catch {
      return undefined;
    }
  }

  private expectCert(res: HttpResult, what: string): SignResponse {
    if (res.status === 201 || res.status === 200) return parseSignResponse(res.body);
    throw new IdentityError('ca-rejected', `the CA refused the ${what} (HTTP ${res.status}: ${caErrorMessage(res.body) ?? 'no details'})`);
  }
}
