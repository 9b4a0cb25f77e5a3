import { X509Certificate } from 'node:crypto';
import { deviceIdFromCertificate, parseSubjectAltName } from '../control-plane/cert-identity.js';
import { DEVICE_URI_PREFIX } from '../protocol/wire.js';
import { osMatches, type OsRule } from './os-rule.js';
import type { DeviceEntry, DeviceTable } from './state.js';

/** Why a request is refused; also the value of X-Vigil-Deny-Reason. */
export type DenyReason =
  | 'authorizer-not-synced'
  | 'control-plane-unreachable'
  | 'client-certificate-required'
  | 'client-certificate-rejected'
  | 'client-certificate-invalid'
  | 'client-certificate-expired'
  | 'certificate-names-no-device'
  | 'device-unknown'
  | 'certificate-not-current'
  | 'device-revoked'
  | 'device-stale'
  | 'device-not-reported'
  | 'device-blocked'
  | 'device-limited'
  | 'device-not-managed'
  | 'os-not-allowed';

export type Decision =
  | { allow: true; device: DeviceEntry; lastKnown: boolean }
  | { allow: false; reason: DenyReason; message: string; deviceId: string | null };

/** A client certificate as far as a decision needs it; parsed once per distinct certificate (see CertCache). */
export interface ParsedCert {
  deviceId: string | null;
  fingerprint: string;
  notAfter: number;
  notBefore: number;
}

export interface Health {
  /** The table has been in step with the control plane at least once. */
  everSynced: boolean;
  /** Seconds the event stream has been down (0 while it is up and in step). */
  lagSeconds: number;
}

export interface DecideOptions {
  maxLagSeconds: number;
  onLag: 'deny' | 'last-known';
  lastKnownGraceSeconds: number;
  minimumLevel: 'full' | 'limited';
  requireOs: OsRule[] | null;
  requireManaged: boolean;
}

export type HealthVerdict = 'ok' | 'last-known' | 'failing-closed';

export function healthVerdict(h: Health, o: DecideOptions): HealthVerdict {
  if (!h.everSynced) return 'failing-closed';
  if (h.lagSeconds <= o.maxLagSeconds) return 'ok';
  if (o.onLag === 'last-known' && h.lagSeconds <= o.maxLagSeconds + o.lastKnownGraceSeconds) return 'last-known';
  return 'failing-closed';
}

/**
 * Parses a PEM certificate: the device it names (the `urn:vigil:device:<id>` URI SAN, required, and a
 * `device-<id>` CN if any must agree) and its SHA-256 fingerprint, which is what binds it to the device's
 * current certificate.
 */
export function parseClientCert(pem: string): ParsedCert | null {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch {
    return null;
  }
  const san = cert.subjectAltName ?? '';
  const hasUri = parseSubjectAltName(san).some((e) => e.type === 'URI' && e.value.startsWith(DEVICE_URI_PREFIX));
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1];
  const deviceId = hasUri ? deviceIdFromCertificate({ subjectaltname: san, subject: cn === undefined ? {} : { CN: cn } }) : null;
  return {
    deviceId,
    fingerprint: cert.fingerprint256.replaceAll(':', '').toLowerCase(),
    notAfter: Date.parse(cert.validTo),
    notBefore: Date.parse(cert.validFrom),
  };
}

/** Parsed certificates by the header text they came in: a gateway sends the same few thousand over and over. */
export class CertCache {
  private readonly map = new Map<string, ParsedCert | null>();
  constructor(private readonly max = 10_000) {}

  get(key: string, parse: () => ParsedCert | null): ParsedCert | null {
    const hit = this.map.get(key);
    if (hit !== undefined || this.map.has(key)) return hit ?? null;
    const v = parse();
    if (this.map.size >= this.max) {
      const oldest = this.map.keys().next();
      if (oldest.done !== true) this.map.delete(oldest.value);
    }
    this.map.set(key, v);
    return v;
  }
}

const deny = (reason: DenyReason, message: string, deviceId: string | null = null): Decision => ({ allow: false, reason, message, deviceId });

/**
 * The whole decision, from memory. `cert` is what the gateway passed (null: none); `verified` is the
 * gateway's own verdict when it sends one (nginx `$ssl_client_verify`): anything but SUCCESS is refused.
 */
export function decide(
  input: { cert: ParsedCert | null; certPresent: boolean; verified: string | null },
  table: DeviceTable,
  health: Health,
  o: DecideOptions,
  now: number,
): Decision {
  const verdict = healthVerdict(health, o);
  if (verdict === 'failing-closed') {
    return health.everSynced
      ? deny('control-plane-unreachable', `the authorizer has not heard from the control plane for ${Math.round(health.lagSeconds)} s, so it cannot vouch for any device`)
      : deny('authorizer-not-synced', 'the authorizer has not read the device list from the control plane yet');
  }
  if (!input.certPresent) return deny('client-certificate-required', 'no client certificate was presented: this service needs your device certificate');
  if (input.verified !== null && input.verified !== 'SUCCESS') {
    return deny('client-certificate-rejected', `the gateway did not verify the client certificate (${input.verified.slice(0, 100)})`);
  }
  const c = input.cert;
  if (c === null) return deny('client-certificate-invalid', 'the client certificate could not be parsed');
  if (c.deviceId === null) return deny('certificate-names-no-device', `the client certificate names no Vigil device (a ${DEVICE_URI_PREFIX}<id> URI SAN)`);
  if (!(c.notAfter > now) || !(c.notBefore <= now)) return deny('client-certificate-expired', 'the device certificate has expired or is not valid yet', c.deviceId);
  const d = table.get(c.deviceId);
  if (!d) return deny('device-unknown', `device ${c.deviceId} is not enrolled with the control plane`, c.deviceId);
  if (d.state === 'revoked') return deny('device-revoked', `device ${d.id} was revoked`, d.id);
  if (d.fingerprint === null || d.fingerprint !== c.fingerprint) {
    return deny(
      'certificate-not-current',
      `this is not the current certificate of device ${d.id}; after a renewal the agent reports with the new one (vigil report --once)`,
      d.id,
    );
  }
  if (d.state === 'stale') return deny('device-stale', `device ${d.id} has not reported its posture recently; is the Vigil agent running?`, d.id);
  if (d.state === 'enrolled') return deny('device-not-reported', `device ${d.id} has not reported its posture yet`, d.id);
  if (d.level === 'blocked') return deny('device-blocked', `device ${d.id} fails a critical check`, d.id);
  if (d.level === 'limited' && o.minimumLevel === 'full') return deny('device-limited', `device ${d.id} fails a recommended check; this service needs full access`, d.id);
  if (o.requireManaged && !d.managed) return deny('device-not-managed', `device ${d.id} is not managed by the organisation (MDM)`, d.id);
  if (o.requireOs !== null && !o.requireOs.some((r) => osMatches(r, d.os))) {
    const os = d.os ? `${d.os.name}${d.os.version !== null && !d.os.name.includes(d.os.version) ? ` ${d.os.version}` : ''}` : 'an unknown OS';
    return deny('os-not-allowed', `device ${d.id} runs ${os}; this service needs ${o.requireOs.map((r) => r.text).join(', or ')}`, d.id);
  }
  return { allow: true, device: d, lastKnown: verdict === 'last-known' };
}
