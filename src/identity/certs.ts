import { createHash, X509Certificate } from 'node:crypto';
import { IdentityError } from './errors.js';

export interface SubjectAltNames {
  dnsNames: string[];
  uris: string[];
  ips: string[];
  emails: string[];
}

export interface CertInfo {
  subject: string;
  commonName: string | undefined;
  sans: SubjectAltNames;
  /** Upper-case hex, as `step certificate inspect` shows it. */
  serialHex: string;
  /** Decimal, as step-ca's revoke API takes it. */
  serialDecimal: string;
  notBefore: Date;
  notAfter: Date;
  issuer: string;
  spki: Buffer;
  fingerprint: string;
}

/** Splits a PEM bundle into single-certificate PEMs, ignoring anything between blocks. */
export function splitPem(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)?.map((s) => `${s}\n`) ?? [];
}

export function sha256Hex(der: Uint8Array): string {
  return createHash('sha256').update(der).digest('hex');
}

/**
 * Parses Node's `subjectAltName` string ("DNS:a, URI:urn:x"). Node quotes a value that contains a comma or
 * quote as a JSON string, so a naive split on ", " would mis-read a crafted certificate.
 */
export function parseSubjectAltName(text: string | undefined): SubjectAltNames {
  const out: SubjectAltNames = { dnsNames: [], uris: [], ips: [], emails: [] };
  if (!text) return out;
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    if (colon < 0) break;
    const type = text.slice(i, colon).trim();
    let value: string;
    let next: number;
    if (text[colon + 1] === '"') {
      let j = colon + 2;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      value = JSON.parse(text.slice(colon + 1, j + 1)) as string;
      next = text.indexOf(',', j + 1);
    } else {
      next = text.indexOf(', ', colon + 1);
      value = text.slice(colon + 1, next < 0 ? undefined : next);
    }
    if (type === 'DNS') out.dnsNames.push(value);
    else if (type === 'URI') out.uris.push(value);
    else if (type === 'IP Address') out.ips.push(value);
    else if (type === 'email') out.emails.push(value);
    if (next < 0) break;
    i = next + 1;
    while (text[i] === ' ') i++;
  }
  return out;
}

function commonNameOf(subject: string): string | undefined {
  for (const line of subject.split('\n')) if (line.startsWith('CN=')) return line.slice(3);
  return undefined;
}

export function certInfo(cert: X509Certificate): CertInfo {
  const serialHex = cert.serialNumber.toUpperCase();
  return {
    subject: cert.subject.replace(/\n/g, ', '),
    commonName: commonNameOf(cert.subject),
    sans: parseSubjectAltName(cert.subjectAltName),
    serialHex,
    serialDecimal: BigInt(`0x${serialHex}`).toString(10),
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    issuer: cert.issuer.replace(/\n/g, ', '),
    spki: cert.publicKey.export({ format: 'der', type: 'spki' }),
    fingerprint: sha256Hex(cert.raw),
  };
}

export function parseCertificate(pem: string, what: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new IdentityError('corrupt-state', `${what} is not a valid certificate (${(err as Error).message})`);
  }
}

export interface ExpectedIdentity {
  spki: Buffer;
  commonName: string;
  dnsNames: readonly string[];
  uris: readonly string[];
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const sa = new Set(a.map((s) => s.toLowerCase()));
  const sb = new Set(b.map((s) => s.toLowerCase()));
  return sa.size === sb.size && [...sa].every((x) => sb.has(x));
}

/**
 * Verifies, before anything is stored, that a certificate the CA returned is ours: our public key, the
 * subject and SANs we asked for, currently valid, and a signature path to the pinned root through CA
 * certificates only. Returns the leaf and the intermediates on the path (the chain to present in mTLS).
 */
export function verifyIssued(
  leafPem: string,
  bundle: readonly string[],
  rootPem: string,
  expected: ExpectedIdentity,
  now: Date = new Date(),
): { leaf: X509Certificate; intermediates: X509Certificate[] } {
  const leaf = new X509Certificate(leafPem);
  const root = new X509Certificate(rootPem);
  const info = certInfo(leaf);
  if (!info.spki.equals(expected.spki)) {
    throw new IdentityError('verify-failed', 'the CA returned a certificate for a different public key than ours');
  }
  if (info.commonName !== expected.commonName) {
    throw new IdentityError('verify-failed', `the certificate's CN is "${info.commonName ?? ''}", expected "${expected.commonName}"`);
  }
  if (!sameSet(info.sans.dnsNames, expected.dnsNames) || !sameSet(info.sans.uris, expected.uris)) {
    throw new IdentityError(
      'verify-failed',
      `the certificate's SANs (${[...info.sans.dnsNames, ...info.sans.uris].join(', ')}) differ from those requested (${[...expected.dnsNames, ...expected.uris].join(', ')})`,
    );
  }
  if (now > info.notAfter) throw new IdentityError('verify-failed', `the CA returned an expired certificate (NotAfter ${info.notAfter.toISOString()})`);

  const pool = bundle.map((p) => new X509Certificate(p)).filter((c) => c.ca && !c.raw.equals(root.raw));
  const path: X509Certificate[] = [];
  let current = leaf;
  for (let depth = 0; depth < 5; depth++) {
    if (current.checkIssued(root) && current.verify(root.publicKey)) return { leaf, intermediates: path };
    const parent = pool.find((c) => !path.includes(c) && current.checkIssued(c) && current.verify(c.publicKey));
    if (!parent) break;
    if (now > new Date(parent.validTo)) throw new IdentityError('verify-failed', `intermediate "${parent.subject}" has expired`);
    path.push(parent);
    current = parent;
  }
  throw new IdentityError('verify-failed', 'the certificate returned by the CA does not chain to the pinned root');
}
