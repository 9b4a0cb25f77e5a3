import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../logging/logger.js';
import { parseListen } from '../control-plane/config.js';
import type { AuthzConfig } from './config.js';
import { CertCache, decide, healthVerdict, parseClientCert, type DecideOptions, type Decision, type Health } from './decide.js';
import { Follower } from './follower.js';
import { parseOsRule, type OsRule } from './os-rule.js';
import { DeviceTable, type DeviceEntry } from './state.js';

/**
 * Where the client certificate comes from: nginx `proxy_set_header X-Client-Cert $ssl_client_escaped_cert`
 * (URL-encoded PEM), or Envoy's `x-forwarded-client-cert` (XFCC) with `Cert="<URL-encoded PEM>"`.
 */
const CERT_HEADER = 'x-client-cert';
const VERIFY_HEADER = 'x-client-verify';
const XFCC_HEADER = 'x-forwarded-client-cert';

/** Splits on `sep` outside double quotes (XFCC elements and their key=value pairs). */
function splitUnquoted(s: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i] ?? '';
    if (ch === '\\' && quoted) {
      cur += ch + (s[i + 1] ?? '');
      i++;
    } else if (ch === '"') {
      quoted = !quoted;
      cur += ch;
    } else if (ch === sep && !quoted) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

/** The `Cert` of the last XFCC element: the one Envoy, the proxy in front of us, added. */
export function certFromXfcc(xfcc: string): string | null {
  const elements = splitUnquoted(xfcc, ',');
  const last = elements[elements.length - 1] ?? '';
  for (const pair of splitUnquoted(last, ';')) {
    const eq = pair.indexOf('=');
    if (eq < 0 || pair.slice(0, eq).trim().toLowerCase() !== 'cert') continue;
    let v = pair.slice(eq + 1).trim();
    if (v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    return v;
  }
  return null;
}

function decodePem(encoded: string): string | null {
  try {
    return decodeURIComponent(encoded);
  } catch {
    return null;
  }
}

export interface AuthzServerOptions {
  config: AuthzConfig;
  caRootPem: string;
  token: string;
  logger: Logger;
  now?: () => number;
  /** For tests: reconnect sooner. */
  minRetryMs?: number;
  maxRetryMs?: number;
}

export interface RunningAuthz {
  url: string;
  port: number;
  follower: Follower;
  table: DeviceTable;
  /** Health as /healthz reports it. */
  health(): Health;
  close(): Promise<void>;
}

type Counters = Map<string, number>;

function labelled(name: string, counters: Counters): string {
  return [...counters.entries()].map(([labels, n]) => `${name}{${labels}} ${n}`).join('\n');
}

function deviceDoc(d: DeviceEntry): Record<string, unknown> {
  return {
    id: d.id,
    compliant: d.compliant,
    access_level: d.level,
    state: d.state,
    managed: d.managed,
    os: d.os,
    cert: d.fingerprint === null ? null : { fingerprint_sha256: d.fingerprint, serial: d.serial, not_after: d.notAfter },
    updated_at: d.updatedAt,
  };
}

/** Starts following the control plane and serves decisions, health, metrics and OPA data over HTTP. */
export async function startAuthz(o: AuthzServerOptions): Promise<RunningAuthz> {
  const c = o.config;
  const now = o.now ?? Date.now;
  const listen = parseListen(c.listen);
  if (!listen) throw new Error(`listen: ${c.listen}: expected host:port`);
  const table = new DeviceTable();
  const follower = new Follower({
    controlPlaneUrl: c.controlPlaneUrl,
    caRootPem: o.caRootPem,
    token: o.token,
    logger: o.logger,
    table,
    idleMs: c.streamIdleSeconds * 1000,
    now,
    ...(o.minRetryMs === undefined ? {} : { minRetryMs: o.minRetryMs }),
    ...(o.maxRetryMs === undefined ? {} : { maxRetryMs: o.maxRetryMs }),
  });
  const decideOptions: DecideOptions = {
    maxLagSeconds: c.maxLagSeconds,
    onLag: c.onLag,
    lastKnownGraceSeconds: c.lastKnownGraceSeconds,
    minimumLevel: c.minimumLevel,
    requireOs: c.requireOs?.map((r) => parseOsRule(r)).filter((r): r is OsRule => r !== null) ?? null,
    requireManaged: c.requireManaged,
  };
  const certs = new CertCache();
  const decisions: Counters = new Map();
  const count = (d: Decision): void => {
    const key = d.allow ? 'result="allow",reason="allowed"' : `result="deny",reason="${d.reason}"`;
    decisions.set(key, (decisions.get(key) ?? 0) + 1);
  };
  const health = (): Health => {
    const s = follower.status;
    return { everSynced: s.everSynced, lagSeconds: s.downSince === null ? 0 : Math.max(0, (now() - s.downSince) / 1000) };
  };
  let lastVerdict = healthVerdict(health(), decideOptions);

  const fixUrl = (d: Decision & { allow: false }): string | null =>
    c.fixUrl === undefined
      ? null
      : c.fixUrl.replaceAll('{device}', encodeURIComponent(d.deviceId ?? '')).replaceAll('{reason}', encodeURIComponent(d.reason));

  const authorize = (req: IncomingMessage, res: ServerResponse): void => {
    let certText: string | null = null;
    const direct = req.headers[CERT_HEADER];
    const xfcc = req.headers[XFCC_HEADER];
    if (typeof direct === 'string' && direct !== '') certText = direct;
    else if (typeof xfcc === 'string' && xfcc !== '') certText = certFromXfcc(xfcc);
    const verifiedHeader = req.headers[VERIFY_HEADER];
    const parsed = certText === null ? null : certs.get(certText, () => {
      const pem = decodePem(certText);
      return pem === null ? null : parseClientCert(pem);
    });
    const h = health();
    const d = decide(
      { cert: parsed, certPresent: certText !== null, verified: typeof verifiedHeader === 'string' && verifiedHeader !== '' ? verifiedHeader : null },
      table,
      h,
      decideOptions,
      now(),
    );
    count(d);
    const verdict = healthVerdict(h, decideOptions);
    if (verdict !== lastVerdict) {
      const log = verdict === 'ok' ? o.logger.info.bind(o.logger) : o.logger.warn.bind(o.logger);
      log(verdict === 'ok' ? 'answering from a current device list again' : verdict === 'last-known' ? 'the control plane is out of reach: answering from the last known state' : 'failing closed: every request is refused', {
        component: 'authz',
        lagSeconds: Math.round(h.lagSeconds),
      });
      lastVerdict = verdict;
    }
    if (d.allow) {
      res.writeHead(200, {
        'x-vigil-device': d.device.id,
        'x-vigil-access-level': d.device.level,
        'cache-control': 'no-store',
        ...(d.lastKnown ? { 'x-vigil-last-known': String(Math.round(h.lagSeconds)) } : {}),
      });
      res.end();
      return;
    }
    const link = fixUrl(d);
    const body = JSON.stringify({ allow: false, reason: d.reason, message: d.message, device: d.deviceId, ...(link === null ? {} : { fix_url: link }) });
    res.writeHead(403, {
      'content-type': 'application/json',
      'cache-control': 'no-store',
      'x-vigil-deny-reason': d.reason,
      ...(link === null ? {} : { 'x-vigil-fix-url': link }),
      ...(d.deviceId === null ? {} : { 'x-vigil-device': d.deviceId }),
    });
    res.end(body);
  };

  const metrics = (): string => {
    const s = follower.status;
    const h = health();
    const verdict = healthVerdict(h, decideOptions);
    return `${[
      '# HELP vigil_authz_stream_lag_seconds Seconds the control-plane event stream has been down or out of step (0 while it is current).',
      '# TYPE vigil_authz_stream_lag_seconds gauge',
      `vigil_authz_stream_lag_seconds ${h.lagSeconds.toFixed(3)}`,
      '# HELP vigil_authz_stream_connected Whether the event stream is connected.',
      '# TYPE vigil_authz_stream_connected gauge',
      `vigil_authz_stream_connected ${s.connected ? 1 : 0}`,
      '# HELP vigil_authz_synced Whether the device table is in step with the control plane.',
      '# TYPE vigil_authz_synced gauge',
      `vigil_authz_synced ${s.synced ? 1 : 0}`,
      '# HELP vigil_authz_failing_closed Whether every request is being refused because the stream is down past the bound.',
      '# TYPE vigil_authz_failing_closed gauge',
      `vigil_authz_failing_closed ${verdict === 'failing-closed' ? 1 : 0}`,
      '# HELP vigil_authz_answering_last_known Whether answers come from the last known state (onLag last-known, within the grace).',
      '# TYPE vigil_authz_answering_last_known gauge',
      `vigil_authz_answering_last_known ${verdict === 'last-known' ? 1 : 0}`,
      '# HELP vigil_authz_event_age_seconds Seconds since the newest event applied was stamped by the control plane.',
      '# TYPE vigil_authz_event_age_seconds gauge',
      `vigil_authz_event_age_seconds ${s.lastEventAt === null ? 'NaN' : ((now() - s.lastEventAt) / 1000).toFixed(3)}`,
      '# HELP vigil_authz_last_event_id The id of the newest event applied.',
      '# TYPE vigil_authz_last_event_id gauge',
      `vigil_authz_last_event_id ${s.lastEventId ?? 0}`,
      '# HELP vigil_authz_devices Devices in memory.',
      '# TYPE vigil_authz_devices gauge',
      `vigil_authz_devices ${table.size}`,
      '# HELP vigil_authz_stream_reconnects_total Times the event stream was lost after being connected.',
      '# TYPE vigil_authz_stream_reconnects_total counter',
      `vigil_authz_stream_reconnects_total ${s.reconnects}`,
      '# HELP vigil_authz_resyncs_total Full reads of the device list (start, reset, skipped ids).',
      '# TYPE vigil_authz_resyncs_total counter',
      `vigil_authz_resyncs_total ${s.resyncs}`,
      '# HELP vigil_authz_decisions_total Authorization answers by result and reason.',
      '# TYPE vigil_authz_decisions_total counter',
      labelled('vigil_authz_decisions_total', decisions),
    ]
      .filter((l) => l !== '')
      .join('\n')}\n`;
  };

  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    try {
      // nginx auth_request sends the original method (any); Envoy ext_authz HTTP sends the original method and
      // path under its path_prefix. Both are decisions.
      if (path === '/v1/authz' || path === '/v1/ext-authz' || path.startsWith('/v1/ext-authz/')) {
        authorize(req, res);
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { 'content-type': 'application/json', allow: 'GET' }).end(JSON.stringify({ error: 'method-not-allowed', message: `${req.method ?? ''} ${path}: only GET` }));
        return;
      }
      if (path === '/healthz') {
        const h = health();
        const s = follower.status;
        const verdict = healthVerdict(h, decideOptions);
        res.writeHead(verdict === 'failing-closed' ? 503 : 200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(
          JSON.stringify({
            status: verdict,
            lag_seconds: Number(h.lagSeconds.toFixed(3)),
            max_lag_seconds: c.maxLagSeconds,
            on_lag: c.onLag,
            connected: s.connected,
            synced: s.synced,
            devices: table.size,
            last_event_id: s.lastEventId,
            last_error: s.lastError,
          }),
        );
        return;
      }
      if (path === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'cache-control': 'no-store' }).end(metrics());
        return;
      }
      if (path === '/v1/opa/data') {
        // An OPA data document (`data.vigil` when loaded under that root): devices by id, as the control plane's
        // decision API names the fields, and whether they can be trusted right now.
        const devices: Record<string, unknown> = {};
        for (const d of table.all()) devices[d.id] = deviceDoc(d);
        const h = health();
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(JSON.stringify({ devices, authorizer: { status: healthVerdict(h, decideOptions), lag_seconds: Number(h.lagSeconds.toFixed(3)), last_event_id: follower.status.lastEventId } }));
        return;
      }
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'not-found', message: `no route ${path}` }));
    } catch (err) {
      o.logger.error('request failed', { component: 'authz', path, err });
      // A failure inside the authorizer must never read as "allowed".
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json', 'x-vigil-deny-reason': 'internal' });
      res.end(JSON.stringify({ error: 'internal', message: 'internal error' }));
    }
  });
  // Gateways keep connections to the authorizer open; a short keep-alive would make them reconnect constantly.
  server.keepAliveTimeout = 75_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  follower.start();
  const port = (server.address() as AddressInfo).port;
  const host = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  const url = `http://${host}:${port}`;
  o.logger.info('vigil-authz listening', { component: 'authz', url, controlPlane: c.controlPlaneUrl });
  return {
    url,
    port,
    follower,
    table,
    health,
    close: async () => {
      follower.stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
      });
    },
  };
}
