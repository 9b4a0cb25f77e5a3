import { DEVICE_CN_PREFIX, DEVICE_URI_PREFIX, deviceIdSchema } from '../protocol/wire.js';
import type { CertInfo } from '../protocol/admin.js';

/** The fields of Node's `tls.PeerCertificate` this module reads; a plain object keeps it unit-testable. */
export interface PeerCertLike {
  subject?: Record<string, string | string[] | undefined>;
  issuer?: Record<string, string | string[] | undefined>;
  subjectaltname?: string;
  serialNumber?: string;
  valid_to?: string;
  fingerprint256?: string;
}

/**
 * Splits Node's `subjectaltname` ("DNS:a, URI:urn:x, IP Address:1.2.3.4"). Node quotes a value that contains
 * a comma or quote as a JSON string (since the 2021 SAN hardening), so quoted values are JSON-decoded.
 */
export function parseSubjectAltName(san: string): { type: string; value: string }[] {
  const out: { type: string; value: string }[] = [];
  const re = /([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:,\s*|$)/gy;
  for (let m = re.exec(san); m !== null && m[0] !== ''; m = re.exec(san)) {
    const [, type = '', raw = ''] = m;
    let value = raw;
    if (raw.startsWith('"')) {
      try {
        const decoded: unknown = JSON.parse(raw);
        if (typeof decoded === 'string') value = decoded;
      } catch {
        continue;
      }
    }
    out.push({ type: type.trim(), value });
  }
  return out;
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/**
 * The device a client certificate speaks for: the `urn:vigil:device:<id>` URI SAN, else CN `device-<id>`.
 * Two different device URIs, or a URI that disagrees with the CN, name no device: a certificate must not be
 * able to choose between identities.
 */
export function deviceIdFromCertificate(cert: PeerCertLike): string | null {
  const uris = parseSubjectAltName(cert.subjectaltname ?? '')
    .filter((e) => e.type === 'URI' && e.value.startsWith(DEVICE_URI_PREFIX))
    .map((e) => e.value.slice(DEVICE_URI_PREFIX.length));
  const cn = first(cert.subject?.CN);
  const fromCn = cn?.startsWith(DEVICE_CN_PREFIX) ? cn.slice(DEVICE_CN_PREFIX.length) : undefined;
  let id: string | undefined;
  if (uris.length > 0) {
    if (new Set(uris).size !== 1) return null;
    id = uris[0];
    if (fromCn !== undefined && fromCn !== id) return null;
  } else {
    id = fromCn;
  }
  return id !== undefined && deviceIdSchema.safeParse(id).success ? id : null;
}

function dn(name: PeerCertLike['subject']): string {
  if (!name) return '';
  return Object.entries(name)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : (v ?? '')}`)
    .join(', ');
}

export function certInfo(cert: PeerCertLike): CertInfo {
  const notAfter = cert.valid_to ? new Date(cert.valid_to) : new Date(0);
  return {
    serial: (cert.serialNumber ?? '').toLowerCase(),
    subject: dn(cert.subject),
    issuer: dn(cert.issuer),
    not_after: Number.isNaN(notAfter.getTime()) ? new Date(0).toISOString() : notAfter.toISOString(),
    fingerprint_sha256: (cert.fingerprint256 ?? '').replaceAll(':', '').toLowerCase(),
  };
}
