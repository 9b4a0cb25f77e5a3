import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { TLSSocket } from 'node:tls';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Logger } from '../logging/logger.js';
import type { Policy } from '../policy/schema.js';
import { ACCESS_LEVELS } from '../policy/schema.js';
import { apiTokenCreateRequestSchema, DEVICE_STATES, secretCreateRequestSchema, type AccessLevelEvent, type CertInfo } from '../protocol/admin.js';
import { enrollRequestSchema, identityRevokedSchema, PROTOCOL_VERSION, type ErrorCode } from '../protocol/wire.js';
import { certInfo, deviceIdFromCertificate } from './cert-identity.js';
import type { ServerCredentials } from './cert-source.js';
import type { EventHub } from './events.js';
import type { RateLimit } from './rate-limit.js';
import { inflateBody, issuesMessage, type ReportSummary } from './report-decoder.js';
import { ReportDecoderPool } from './report-decoder-pool.js';
import { apiTokenId, secretMatches, tokensEqual } from './secrets.js';
import { ControlPlaneError, type ControlPlaneService, type EnrollProof } from './service.js';
import { InvalidCursorError, type DeviceFilter, type PageQuery, type StoredDevice } from './storage.js';
import type { StoredSession } from './storage.js';
import { SESSION_CLEAR_COOKIE, sessionCookieOf, sessionSetCookie } from './accounts.js';
import { SignInError, type ConsoleService } from './console.js';
import { registerConsoleStatic } from './console-static.js';

/**
 * Who may call a route. Every route names one; a route without it is refused (fail closed). `gateway`: an
 * admin, or a gateway-scoped API token (what an authorizer beside a gateway reads: events, devices,
 * decisions). `device-or-gateway`: either of those or a device certificate.
 */
export type AuthMode = 'none' | 'device' | 'admin' | 'gateway' | 'device-or-admin' | 'device-or-gateway';

/**
 * `tokenId`: the API token used (null for the configured admin token or a console session), so its streams end
 * when it is revoked. `actor`: who is acting, as the audit log names them (`admin:<name>` for a console
 * session, `token:<name>` for a bearer token). `session`: the console session when the cookie authenticated.
 */
export type Principal =
  | { kind: 'admin'; tokenId: string | null; actor: string; session: StoredSession | null }
  | { kind: 'gateway'; tokenId: string; actor: string }
  | { kind: 'device'; device: StoredDevice; cert: CertInfo };

/** The audit log's name for the configured admin token, which has no name of its own. */
export const ADMIN_TOKEN_ACTOR = 'token:admin-token-file';

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: AuthMode;
    /**
     * The audit log's name for what a state-changing route does; required on every non-GET route an admin or
     * gateway may call (checked when the route is added). `none`: the route changes nothing, or writes its own
     * entries.
     */
    audit?: string;
  }
  interface FastifyInstance {
    /** Every route with its access rule and audit name, as added: what the audit test walks. */
    routeTable: RouteInfo[];
  }
  interface FastifyRequest {
    principal: Principal | null;
    /** Set by a handler to name what it acted on (default: the `:id` in the path) and add details. */
    auditNote: { target?: string; detail?: Record<string, unknown> } | null;
    /** A report body as it arrived (gzip bytes or text): what is stored, without re-serialising it. */
    reportBody: Buffer | string | null;
    /** What the handler needs of that report, validated by a decoder worker. */
    reportSummary: ReportSummary | null;
  }
}

export interface RouteInfo {
  method: string;
  url: string;
  auth: AuthMode | undefined;
  audit: string | undefined;
}

export interface HttpOptions {
  service: ControlPlaneService;
  hub: EventHub;
  logger: Logger;
  adminToken: string;
  /** The only trust anchor for client certificates. */
  caRootPem: string;
  credentials: ServerCredentials;
  bodyLimitBytes: number;
  /** Taken once per failed enrollment from an address; while it is empty, that address is refused outright. */
  enrollLimiter: RateLimit;
  /** Taken once per wrong admin token from an address; while it is empty, that address is refused outright. */
  adminFailureLimiter: RateLimit;
  console: ConsoleService;
  /** Where the console's built files are (index.html, app.js, app.css). */
  consoleDir: string;
  /** Client addresses from X-Forwarded-For (config `trustProxy`). */
  trustProxy: boolean;
  ssePingMs?: number;
}

interface PeerInfo {
  present: boolean;
  deviceId: string | null;
  cert: CertInfo | null;
  /** NotBefore, epoch ms. */
  validFrom: number;
}

/** A slow SSE reader is cut off past this much buffered output; it reconnects with Last-Event-ID. */
const SSE_MAX_BUFFERED = 1024 * 1024;
/** How long /ready waits for the database to answer before saying it is not ready. */
const READY_TIMEOUT_MS = 2000;

function fail(status: number, code: ErrorCode, message: string): ControlPlaneError {
  return new ControlPlaneError(status, code, message);
}

function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value);
  if (!r.success) {
    throw fail(400, 'bad-request', issuesMessage(r.error));
  }
  return r.data;
}

const idParams = z.object({ id: z.string().min(1).max(128) });

/**
 * A cursor is the storage's position wrapped in base64url: opaque to clients, so that the backend may change
 * what it holds. Anything that does not decode back to itself was not handed out by us.
 */
const encodeCursor = (next: string | null): string | null => (next === null ? null : Buffer.from(next, 'utf8').toString('base64url'));
function decodeCursor(cursor: string | undefined): string | null {
  if (cursor === undefined) return null;
  const raw = Buffer.from(cursor, 'base64url').toString('utf8');
  if (raw === '' || Buffer.from(raw, 'utf8').toString('base64url') !== cursor) throw fail(400, 'bad-request', 'cursor: not one this list handed out');
  return raw;
}

/** Query parameters are strict, so that a misspelt filter is refused rather than silently listing everything. */
const pageKeys = (defaultLimit: number) => ({
  limit: z.coerce.number().int().min(1).max(1000).default(defaultLimit),
  cursor: z.string().min(1).max(1024).optional(),
});
const pageQuery = (defaultLimit: number) => z.strictObject(pageKeys(defaultLimit));
const reportsQuery = pageQuery(50);
const listQuery = pageQuery(100);
const isoMs = z.iso.datetime({ offset: true }).transform((t) => Date.parse(t));
const deviceListQuery = z.strictObject({
  ...pageKeys(100),
  state: z.enum(DEVICE_STATES).optional(),
  level: z.enum(ACCESS_LEVELS).optional(),
  os: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'an OS id (ubuntu, macos, windows) or platform (linux, darwin, win32)').optional(),
  failingCheck: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, 'a check id').optional(),
  seenBefore: isoMs.optional(),
  seenAfter: isoMs.optional(),
  q: z.string().min(1).max(128).optional(),
});

function page(q: { limit: number; cursor?: string | undefined }): PageQuery {
  return { after: decodeCursor(q.cursor), limit: q.limit };
}
const auditQuery = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().regex(/^\d{1,15}$/, 'the `next` of the previous page').optional(),
});
const signInSchema = z.object({ name: z.string().min(1).max(64), password: z.string().min(1).max(1024) });
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** No Origin (not a browser, or a same-origin GET), or this server's own: `https://` and the Host it was asked for. */
function sameOrigin(req: FastifyRequest): boolean {
  const origin = req.headers.origin;
  return origin === undefined || (req.headers.host !== undefined && origin === `https://${req.headers.host}`);
}

/** A cookie-authenticated request that changes state without the session's CSRF token, or from another origin. */
class CsrfError extends Error {
  constructor() {
    super('missing or wrong CSRF token');
  }
}

export function tlsOptions(credentials: ServerCredentials, caRootPem: string): {
  key: string;
  cert: string;
  ca: string[];
} {
  return { key: credentials.key, cert: credentials.cert, ca: [caRootPem] };
}

export function buildApp(o: HttpOptions) {
  const app = Fastify({
    https: {
      ...tlsOptions(o.credentials, o.caRootPem),
      // A certificate is requested from everyone but checked per route: /v1/enroll and /health are reached
      // by devices that have none yet. `ca` replaces Node's public roots, so only step-ca's chain verifies.
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
    },
    bodyLimit: o.bodyLimitBytes,
    trustProxy: o.trustProxy,
    logger: false,
    return503OnClosing: true,
  });
  const peers = new WeakMap<TLSSocket, PeerInfo>();
  const streams = new Set<() => void>();
  const policyCache = new WeakMap<Policy, { etag: string; body: string }>();
  const pingMs = o.ssePingMs ?? 15_000;
  /**
   * Open event streams per API token (`token:<id>`) and console session (`session:<hash>`), ended when the
   * token is revoked or the session signed out through this server.
   */
  const keyedStreams = new Map<string, Set<() => void>>();
  const trackStream = (key: string, stillValid: () => Promise<boolean>, end: () => void): (() => void) => {
    let set = keyedStreams.get(key);
    if (!set) keyedStreams.set(key, (set = new Set()));
    set.add(end);
    // A token revoked by the CLI, on the database directly, or a session that expired, is noticed within a minute.
    const check = setInterval(() => {
      void stillValid().then(
        (ok) => {
          if (!ok) end();
        },
        () => undefined,
      );
    }, 60_000);
    return () => {
      clearInterval(check);
      set.delete(end);
      if (set.size === 0) keyedStreams.delete(key);
    };
  };
  const endStreams = (key: string): void => {
    for (const end of [...(keyedStreams.get(key) ?? [])]) end();
  };

  // Certificates are per connection; keep-alive clients send many requests over one.
  const peerOf = (socket: TLSSocket): PeerInfo => {
    let p = peers.get(socket);
    if (!p) {
      const pc = socket.getPeerCertificate();
      const present = Object.keys(pc).length > 0;
      p = {
        present,
        deviceId: present ? deviceIdFromCertificate(pc) : null,
        cert: present ? certInfo(pc) : null,
        validFrom: present ? Date.parse(pc.valid_from) : Number.NaN,
      };
      peers.set(socket, p);
    }
    return p;
  };

  /**
   * The bearer token's principal: the configured admin token, or a stored API token that is not revoked. Null
   * without a bearer token; a wrong one throws (and counts against the address).
   */
  const authToken = async (req: FastifyRequest, reply: FastifyReply): Promise<(Principal & { kind: 'admin' | 'gateway' }) | null> => {
    const h = req.headers.authorization;
    if (h?.startsWith('Bearer ') !== true) return null;
    // Checked before the token, so that an address guessing tokens learns nothing while it waits.
    const wait = await o.adminFailureLimiter.wait(req.ip);
    if (wait > 0) {
      void reply.header('retry-after', String(wait));
      throw fail(429, 'rate-limited', `too many wrong admin tokens from ${req.ip}; retry in ${wait} s`);
    }
    const given = h.slice(7).trim();
    if (tokensEqual(given, o.adminToken)) return { kind: 'admin', tokenId: null, actor: ADMIN_TOKEN_ACTOR, session: null };
    const id = apiTokenId(given);
    const stored = id === null ? null : await o.service.apiToken(id);
    if (stored && stored.revokedAt === null && secretMatches(given, stored.hash)) {
      const actor = `token:${stored.name}`;
      return stored.scope === 'admin' ? { kind: 'admin', tokenId: stored.id, actor, session: null } : { kind: 'gateway', tokenId: stored.id, actor };
    }
    await o.adminFailureLimiter.take(req.ip);
    // The token itself is never logged; its public id is, when it has one.
    o.logger.warn(stored?.revokedAt != null ? 'revoked API token' : 'wrong admin token', { component: 'control-plane', ip: req.ip, url: req.url, tokenId: id });
    throw fail(401, 'unauthorized', stored?.revokedAt != null ? 'the API token was revoked' : 'the admin token is not valid');
  };

  /**
   * A console session from its cookie: admin scope. A request that changes anything must also carry the
   * session's CSRF token and, when the browser says where it comes from (Origin), come from this server's own
   * origin: the cookie alone is what a cross-site form would send.
   */
  const authSession = async (req: FastifyRequest): Promise<Principal | null> => {
    const cookie = sessionCookieOf(req.headers.cookie);
    if (cookie === null) return null;
    const session = await o.console.authenticate(cookie);
    if (session === null) throw fail(401, 'unauthorized', 'the console session has expired or was signed out; sign in again');
    if (!SAFE_METHODS.has(req.method)) {
      const header = req.headers['x-csrf-token'];
      if (!o.console.csrfMatches(session, typeof header === 'string' ? header : undefined) || !sameOrigin(req)) {
        throw new CsrfError();
      }
    }
    return { kind: 'admin', tokenId: null, actor: `admin:${session.admin}`, session };
  };

  const needToken = async (req: FastifyRequest, reply: FastifyReply, gatewayOk: boolean): Promise<Principal> => {
    const p = (await authToken(req, reply)) ?? (await authSession(req));
    if (p === null) throw fail(401, 'unauthorized', 'Authorization: Bearer <admin token> (or a console session) required');
    if (p.kind === 'gateway' && !gatewayOk) throw fail(403, 'forbidden', 'a gateway token may only read events, devices and decisions');
    return p;
  };

  const authDevice = async (req: FastifyRequest): Promise<Principal> => {
    const socket = req.raw.socket;
    if (!(socket instanceof TLSSocket)) throw fail(401, 'client-certificate-required', 'this endpoint needs TLS');
    const peer = peerOf(socket);
    if (!peer.present || !peer.cert) throw fail(401, 'client-certificate-required', 'this endpoint needs the device certificate (mTLS)');
    if (!socket.authorized) {
      const why = socket.authorizationError instanceof Error ? socket.authorizationError.message : String(socket.authorizationError);
      throw fail(401, 'client-certificate-rejected', `the client certificate is not trusted: ${why}`);
    }
    if (peer.deviceId === null) throw fail(403, 'forbidden', 'the client certificate names no Vigil device');
    return { kind: 'device', device: await o.service.authorizeDevice(peer.deviceId, peer.cert, peer.validFrom), cert: peer.cert };
  };

  /**
   * A certificate from our CA naming a device, presented to /v1/enroll: proof that the caller holds that
   * device's key (the TLS handshake signed with it). An expired one still proves it: that is how a laptop
   * that was off past its certificate's expiry enrolls again by itself.
   */
  const enrollProof = (req: FastifyRequest): EnrollProof | null => {
    const socket = req.raw.socket;
    if (!(socket instanceof TLSSocket)) return null;
    const peer = peerOf(socket);
    if (!peer.present || peer.deviceId === null || peer.cert === null) return null;
    const err = socket.authorizationError as (Error & { code?: string }) | string | null | undefined;
    const expiredOnly = err !== null && err !== undefined && (typeof err === 'string' ? err : (err.code ?? err.message)) === 'CERT_HAS_EXPIRED';
    if (!socket.authorized && !expiredOnly) return null;
    return { deviceId: peer.deviceId, serial: peer.cert.serial };
  };

  app.decorateRequest('principal', null);
  app.decorateRequest('auditNote', null);
  app.decorateRequest('reportBody', null);
  app.decorateRequest('reportSummary', null);

  app.addHook('onRequest', async (req, reply) => {
    if (req.routeOptions.url === undefined) return; // the 404 handler
    const mode = req.routeOptions.config.auth;
    switch (mode) {
      case 'none':
        return;
      case 'admin':
      case 'gateway':
        req.principal = await needToken(req, reply, mode === 'gateway');
        return;
      case 'device':
        req.principal = await authDevice(req);
        return;
      case 'device-or-admin':
      case 'device-or-gateway':
        req.principal =
          req.headers.authorization !== undefined || sessionCookieOf(req.headers.cookie) !== null
            ? await needToken(req, reply, mode === 'device-or-gateway')
            : await authDevice(req);
        return;
      case undefined:
        throw fail(403, 'forbidden', 'route has no access rule');
    }
  });

  // Agents gzip their reports (about a third of the size). The body is small, so it is read whole (bodyLimit
  // on the compressed bytes) and inflated in one call capped at bodyLimit (inflateBody); reports are decoded
  // in worker threads, other routes here.
  const jsonParser = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  const decoder = new ReportDecoderPool();
  app.addHook('onClose', async () => {
    await decoder.close();
  });
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    const encoding = req.headers['content-encoding'];
    if (req.routeOptions.url === '/v1/reports') {
      void decoder.decode(bytes, encoding, o.bodyLimitBytes).then((r) => {
        if (!r.ok) {
          if (r.status >= 500) o.logger.error('a report decoder worker failed', { component: 'control-plane' });
          done(fail(r.status, r.code, r.message), undefined);
          return;
        }
        // The decoder accepted the encoding, so it is gzip or none.
        req.reportBody = encoding?.trim().toLowerCase() === 'gzip' ? bytes : bytes.toString('utf8');
        req.reportSummary = r.summary;
        done(null, r.summary);
      });
      return;
    }
    const inflated = inflateBody(bytes, encoding, o.bodyLimitBytes);
    if (!inflated.ok) {
      done(fail(inflated.status, inflated.code, inflated.message), undefined);
      return;
    }
    void jsonParser(req, inflated.text, done);
  });

  // No state-changing admin route goes unaudited: one without an audit name is a programming error, caught at
  // start-up rather than by a missing log entry.
  const routeTable: RouteInfo[] = [];
  app.decorate('routeTable', routeTable);
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const auth = route.config?.auth;
    for (const method of methods) routeTable.push({ method, url: route.url, auth, audit: route.config?.audit });
    if (auth === undefined || auth === 'none' || auth === 'device') return;
    if (methods.some((m) => !SAFE_METHODS.has(m)) && route.config?.audit === undefined) {
      throw new Error(`route ${methods.join(',')} ${route.url} may change state as an admin but names no audit action`);
    }
  });

  // Written before the response leaves, so an action the client saw acknowledged is in the log. Refused
  // attempts by authenticated callers are kept too, with their status.
  app.addHook('onSend', async (req, reply, payload) => {
    const action = req.routeOptions.config.audit;
    const p = req.principal;
    if (action === undefined || action === 'none' || p === null || p.kind === 'device') return payload;
    const params = req.params as { id?: unknown } | undefined;
    const target = req.auditNote?.target ?? (typeof params?.id === 'string' ? params.id : null);
    try {
      await o.console.audit({ actor: p.actor, action, target, ip: req.ip, detail: { status: reply.statusCode, ...req.auditNote?.detail } });
    } catch (err) {
      // The action is done and cannot be taken back; failing the response would invite a retry that repeats it.
      o.logger.error('could not write the audit log entry', { component: 'control-plane', action, target, actor: p.actor, err });
    }
    return payload;
  });

  app.setErrorHandler((err: unknown, req, reply) => {
    if (err instanceof InvalidCursorError) return reply.code(400).send({ error: 'bad-request', message: err.message });
    if (err instanceof CsrfError || err instanceof SignInError) {
      return reply.code(err instanceof CsrfError ? 403 : 401).send({ error: err.message, message: err.message });
    }
    if (err instanceof ControlPlaneError) {
      if (err.retryAfterSeconds !== undefined) void reply.header('retry-after', String(err.retryAfterSeconds));
      return reply.code(err.status).send({ error: err.code, message: err.message });
    }
    const e = err as { statusCode?: number; code?: string; message?: string };
    if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.code(413).send({ error: 'payload-too-large', message: `request body exceeds ${o.bodyLimitBytes} bytes` });
    }
    if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
      return reply.code(e.statusCode).send({ error: 'bad-request', message: e.message ?? 'bad request' });
    }
    o.logger.error('request failed', { component: 'control-plane', url: req.url, err });
    return reply.code(500).send({ error: 'internal', message: 'internal error' });
  });

  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: 'not-found', message: `no route ${req.method} ${req.url}` }));

  app.addHook('preClose', (done) => {
    for (const end of [...streams]) end();
    done();
  });

  /** Server-sent events on a hijacked response; returns a writer, or null once the stream has ended. */
  const openSse = (req: FastifyRequest, reply: FastifyReply, onEnd: () => void) => {
    reply.hijack();
    const res: ServerResponse = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    res.write('retry: 2000\n\n');
    let ended = false;
    const ping = setInterval(() => res.write(': ping\n\n'), pingMs);
    const end = (): void => {
      if (ended) return;
      ended = true;
      clearInterval(ping);
      streams.delete(end);
      onEnd();
      if (!res.writableEnded) res.end();
    };
    streams.add(end);
    res.on('close', end);
    req.raw.socket.setTimeout(0);
    return {
      send(event: string, data: unknown, id?: number): void {
        if (ended) return;
        if (res.writableLength > SSE_MAX_BUFFERED) {
          end();
          return;
        }
        res.write(`${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      },
      end,
    };
  };

  const deviceOf = (req: FastifyRequest): Principal & { kind: 'device' } => {
    const p = req.principal;
    if (p?.kind !== 'device') throw fail(403, 'forbidden', 'device certificate required');
    return p;
  };

  // ---- public ----

  app.get('/health', { config: { auth: 'none' } }, () => ({ status: 'ok' }));

  // For a load balancer: 503 while this instance cannot store reports (the database is unreachable, or SQLite
  // failed a flush) or, on PostgreSQL, does not hear the other instances; /health only says the process runs.
  app.get('/ready', { config: { auth: 'none' } }, async (_req, reply) => {
    let why = o.hub.notReady();
    if (why === null) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          reject(new Error(`no answer in ${READY_TIMEOUT_MS} ms`));
        }, READY_TIMEOUT_MS);
      });
      try {
        await Promise.race([o.service.ping(), timeout]);
      } catch (err) {
        why = `storage: ${err instanceof Error ? err.message : String(err)}`;
      } finally {
        clearTimeout(timer);
      }
    }
    if (why === null) return { status: 'ready' };
    return reply.code(503).send({ error: 'not-ready', message: why });
  });

  app.post('/v1/enroll', { config: { auth: 'none' } }, async (req) => {
    const wait = await o.enrollLimiter.wait(req.ip);
    if (wait > 0) throw new ControlPlaneError(429, 'rate-limited', `too many failed enrollment attempts from ${req.ip}; retry in ${wait} s`, wait);
    try {
      return await o.service.enroll(parse(enrollRequestSchema, req.body), enrollProof(req));
    } catch (err) {
      // Only failures count against an address: an office behind one NAT enrolls hundreds of laptops at once.
      if (err instanceof ControlPlaneError && err.status >= 400 && err.status < 500 && err.status !== 429) await o.enrollLimiter.take(req.ip);
      throw err;
    }
  });

  // ---- device (mTLS) ----

  app.post('/v1/reports', { config: { auth: 'device' } }, async (req) => {
    const { device, cert } = deviceOf(req);
    if (req.reportSummary === null || req.reportBody === null) throw fail(400, 'bad-request', 'a report needs Content-Type: application/json and a body');
    return o.service.ingest(device, cert, req.reportSummary, req.reportBody);
  });

  // The enrolling agent's first call with its new certificate; any device route would complete the enrollment,
  // this one does only that.
  app.post('/v1/enroll/confirm', { config: { auth: 'device' } }, (req) => {
    const { device } = deviceOf(req);
    return { protocolVersion: PROTOCOL_VERSION, deviceId: device.id };
  });

  app.post('/v1/identity/revoked', { config: { auth: 'device' } }, async (req, reply) => {
    const { device, cert } = deviceOf(req);
    const body = parse(identityRevokedSchema, req.body);
    // Only the certificate on this connection can be declared refused; a device cannot speak for another one.
    if (body.serial.toLowerCase() !== cert.serial) throw fail(400, 'bad-request', `serial ${body.serial} is not the certificate on this connection (${cert.serial})`);
    await o.service.deviceGivesUpCertificate(device, cert.serial, body.reason);
    return reply.code(204).send();
  });

  app.get('/v1/directives', { config: { auth: 'device' } }, (req) => o.service.directivesFor(deviceOf(req).device));

  app.get('/v1/directives/stream', { config: { auth: 'device' } }, (req, reply) => {
    const { device } = deviceOf(req);
    let unsubscribe = (): void => undefined;
    const stream = openSse(req, reply, () => {
      unsubscribe();
    });
    unsubscribe = o.hub.subscribeDevice(device.id, (d) => {
      if (d === null) stream.end();
      else stream.send('directives', d);
    });
    stream.send('directives', o.service.directivesFor(device));
  });

  app.get('/v1/policy', { config: { auth: 'device-or-admin' } }, (req, reply) => {
    const policy = o.service.currentPolicy();
    let cached = policyCache.get(policy);
    if (!cached) {
      const body = JSON.stringify(policy);
      cached = { body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
      policyCache.set(policy, cached);
    }
    void reply.header('etag', cached.etag).header('vigil-policy-version', policy.version).header('cache-control', 'no-cache');
    const inm = req.headers['if-none-match'];
    if (inm !== undefined && inm.split(',').some((t) => t.trim() === cached.etag)) return reply.code(304).send();
    return reply.type('application/json').send(cached.body);
  });

  app.get('/v1/decision/:id', { config: { auth: 'device-or-gateway' } }, async (req) => {
    const { id } = parse(idParams, req.params);
    // A device may read its own decision; other devices' posture is for admins and gateways.
    if (req.principal?.kind === 'device' && req.principal.device.id !== id) {
      throw fail(403, 'forbidden', 'a device may only read its own decision');
    }
    return o.service.decision(id);
  });

  // ---- admin ----

  app.get('/v1/events', { config: { auth: 'gateway' } }, (req, reply) => {
    let unsubscribe = (): void => undefined;
    let untrack = (): void => undefined;
    const stream = openSse(req, reply, () => {
      unsubscribe();
      untrack();
    });
    const p = req.principal;
    if ((p?.kind === 'admin' || p?.kind === 'gateway') && p.tokenId !== null) {
      const tokenId = p.tokenId;
      untrack = trackStream(
        `token:${tokenId}`,
        async () => {
          const t = await o.service.apiToken(tokenId);
          return t !== null && t.revokedAt === null;
        },
        stream.end,
      );
    } else if (p?.kind === 'admin' && p.session !== null) {
      const idHash = p.session.idHash;
      untrack = trackStream(`session:${idHash.toString('hex')}`, async () => (await o.console.valid(idHash)) !== null, stream.end);
    }
    const header = req.headers['last-event-id'];
    const last = typeof header === 'string' && /^\d{1,15}$/.test(header.trim()) ? Number(header) : null;
    if (last === null) {
      unsubscribe = o.hub.subscribeAccess((id, e) => {
        stream.send('access-level', e, id);
      });
      return;
    }
    // Live events are held back while the missed ones are read, then sent unless the replay covered them.
    let held: { id: number; e: AccessLevelEvent }[] | null = [];
    let sentUpTo = last;
    const sendLive = (id: number, e: AccessLevelEvent): void => {
      if (id <= sentUpTo) return;
      sentUpTo = id;
      stream.send('access-level', e, id);
    };
    unsubscribe = o.hub.subscribeAccess((id, e) => {
      if (held) held.push({ id, e });
      else sendLive(id, e);
    });
    o.service.eventsAfter(last).then(
      (replay) => {
        if (replay.reset) {
          // The consumer cannot be brought up to date event by event: it must re-read every device's state.
          stream.send('reset', { reason: replay.reason, resync: '/v1/admin/devices' }, replay.newest);
          sentUpTo = replay.newest;
        } else {
          for (const ev of replay.events) sendLive(ev.id, ev.event);
        }
        const pending = held ?? [];
        held = null;
        for (const h of pending) sendLive(h.id, h.e);
      },
      (err: unknown) => {
        o.logger.error('event replay failed', { component: 'control-plane', err });
        stream.end();
      },
    );
  });

  app.get('/v1/admin/devices', { config: { auth: 'gateway' } }, async (req) => {
    // The rest of the query is the filter: its keys are DeviceFilter's.
    const { limit, cursor, ...filter } = parse(deviceListQuery, req.query);
    const res = await o.service.listDevices({ ...page({ limit, cursor }), filter: filter satisfies DeviceFilter });
    return { devices: res.devices, next: encodeCursor(res.next) };
  });

  app.get('/v1/admin/devices/:id', { config: { auth: 'admin' } }, async (req) => o.service.deviceDetail(parse(idParams, req.params).id));

  app.get('/v1/admin/devices/:id/reports', { config: { auth: 'admin' } }, async (req) => {
    const rows = await o.service.history(parse(idParams, req.params).id, page(parse(reportsQuery, req.query)));
    return { reports: rows.items.map((r) => ({ ...r, receivedAt: new Date(r.receivedAt).toISOString() })), next: encodeCursor(rows.next) };
  });

  app.post('/v1/admin/devices/:id/recheck', { config: { auth: 'admin', audit: 'device.recheck' } }, async (req, reply) => {
    const requestId = await o.service.requestRecheck(parse(idParams, req.params).id);
    return reply.code(202).send({ requestId });
  });

  app.post('/v1/admin/devices/:id/revoke', { config: { auth: 'admin', audit: 'device.revoke' } }, async (req) => {
    const r = await o.service.revokeDevice(parse(idParams, req.params).id);
    req.auditNote = { detail: { ca: r.ca } };
    return r;
  });

  app.post('/v1/admin/devices/:id/readmit', { config: { auth: 'admin', audit: 'device.readmit' } }, async (req, reply) => {
    await o.service.readmitDevice(parse(idParams, req.params).id);
    return reply.code(204).send();
  });

  app.post('/v1/admin/devices/:id/allow-reenroll', { config: { auth: 'admin', audit: 'device.allow-reenroll' } }, async (req, reply) => {
    await o.service.allowReenroll(parse(idParams, req.params).id);
    return reply.code(204).send();
  });

  app.delete('/v1/admin/devices/:id', { config: { auth: 'admin', audit: 'device.remove' } }, async (req) => {
    const r = await o.service.removeDevice(parse(idParams, req.params).id);
    req.auditNote = { detail: { ca: r.ca } };
    return r;
  });

  app.get('/v1/admin/secrets', { config: { auth: 'admin' } }, async (req) => {
    const res = await o.service.listSecrets(page(parse(listQuery, req.query)));
    return { secrets: res.items, next: encodeCursor(res.next) };
  });

  app.post('/v1/admin/secrets', { config: { auth: 'admin', audit: 'secret.create' } }, async (req, reply) => {
    const created = await o.service.createSecret(parse(secretCreateRequestSchema, req.body ?? {}));
    req.auditNote = { target: created.id, detail: { uses: created.usesTotal, expiresAt: created.expiresAt, label: created.label } };
    return reply.code(201).header('cache-control', 'no-store').send(created);
  });

  app.delete('/v1/admin/secrets/:id', { config: { auth: 'admin', audit: 'secret.revoke' } }, async (req, reply) => {
    await o.service.revokeSecret(parse(idParams, req.params).id);
    return reply.code(204).send();
  });

  app.put('/v1/admin/policy', { config: { auth: 'admin', audit: 'policy.update' } }, async (req) => {
    const policy = await o.service.setPolicy(req.body);
    req.auditNote = { target: policy.version, detail: { name: policy.name } };
    return policy;
  });

  // Read-only: nothing is saved, so nothing is audited.
  app.post('/v1/admin/policy/preview', { config: { auth: 'admin', audit: 'none' } }, async (req, reply) => {
    const preview = await o.console.previewPolicy(req.body);
    return reply.code(preview.valid ? 200 : 400).send(preview);
  });

  app.get('/v1/admin/overview', { config: { auth: 'admin' } }, () => o.console.overview());

  app.get('/v1/admin/audit', { config: { auth: 'admin' } }, async (req) => {
    const q = parse(auditQuery, req.query);
    return o.console.listAudit(q.limit, q.cursor === undefined ? null : Number(q.cursor));
  });

  app.get('/v1/admin/tokens', { config: { auth: 'admin' } }, async (req) => {
    const res = await o.service.listApiTokens(page(parse(listQuery, req.query)));
    return { tokens: res.items, next: encodeCursor(res.next) };
  });

  app.post('/v1/admin/tokens', { config: { auth: 'admin', audit: 'token.create' } }, async (req, reply) => {
    const created = await o.service.createApiToken(parse(apiTokenCreateRequestSchema, req.body ?? {}));
    req.auditNote = { target: created.id, detail: { scope: created.scope, name: created.name } };
    return reply.code(201).header('cache-control', 'no-store').send(created);
  });

  app.delete('/v1/admin/tokens/:id', { config: { auth: 'admin', audit: 'token.revoke' } }, async (req, reply) => {
    const { id } = parse(idParams, req.params);
    await o.service.revokeApiToken(id);
    // A revoked token's event streams end now, not at the next reconnect.
    endStreams(`token:${id}`);
    return reply.code(204).send();
  });

  // ---- admin console ----

  // Sign-in and sign-out write their own audit entries (who signs in is known only after the password check).
  app.post('/console/api/session', { config: { auth: 'none', audit: 'none' } }, async (req, reply) => {
    // A sign-in posted from another site would sign the browser in to the attacker's account (login CSRF).
    if (!sameOrigin(req)) throw new CsrfError();
    const body = parse(signInSchema, req.body);
    const ua = req.headers['user-agent'];
    const { cookie, session } = await o.console.signIn(body.name, body.password, req.ip, typeof ua === 'string' ? ua.slice(0, 512) : null);
    return reply.header('set-cookie', sessionSetCookie(cookie)).header('cache-control', 'no-store').send(session);
  });

  app.get('/console/api/session', { config: { auth: 'none' } }, async (req, reply) => {
    const cookie = sessionCookieOf(req.headers.cookie);
    const session = cookie === null ? null : await o.console.authenticate(cookie);
    if (session === null) throw fail(401, 'unauthorized', 'not signed in');
    return reply.header('cache-control', 'no-store').send(o.console.sessionInfo(session));
  });

  app.delete('/console/api/session', { config: { auth: 'admin', audit: 'none' } }, async (req, reply) => {
    const session = req.principal?.kind === 'admin' ? req.principal.session : null;
    if (session === null) throw fail(400, 'bad-request', 'sign-out ends a console session; this request carries no session cookie');
    await o.console.signOut(session, req.ip);
    endStreams(`session:${session.idHash.toString('hex')}`);
    return reply.header('set-cookie', SESSION_CLEAR_COOKIE).code(204).send();
  });

  registerConsoleStatic(app, o.consoleDir);

  return app;
}

export type ControlPlaneApp = ReturnType<typeof buildApp>;
