import {
  createHash,
  createPrivateKey,
  createPublicKey,
  randomUUID,
  X509Certificate,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { calculateJwkThumbprint, SignJWT, type JWK } from 'jose';

export interface ProvisionerKey {
  key: KeyObject;
  alg: 'ES256' | 'ES384' | 'ES512' | 'EdDSA';
  /** step-ca looks the provisioner up by this; `step ca provisioner add` sets it to the RFC 7638 thumbprint. */
  kid: string;
}

const CURVE_ALG: Record<string, ProvisionerKey['alg']> = { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512', Ed25519: 'EdDSA' };

/**
 * Reads the JWK provisioner's private key: a PEM (PKCS#8 or SEC1) or a plain JWK JSON file. An encrypted
 * JWE (how ca.json stores `encryptedKey`) is refused with the command that decrypts it, because holding the
 * password next to the key would add nothing.
 */
export async function loadProvisionerKey(path: string): Promise<ProvisionerKey> {
  const text = (await readFile(path, 'utf8')).trim();
  let key: KeyObject;
  let kid: string | undefined;
  if (text.startsWith('{')) {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null) throw new Error(`${path}: not a JWK`);
    if ('ciphertext' in parsed) {
      throw new Error(`${path} is an encrypted JWE; decrypt it with \`step crypto jwe decrypt < ${path}\` first`);
    }
    const jwk = parsed as JWK;
    if (typeof jwk.d !== 'string') throw new Error(`${path}: the JWK has no private part ("d")`);
    key = createPrivateKey({ key: jwk as JsonWebKey, format: 'jwk' });
    kid = typeof jwk.kid === 'string' ? jwk.kid : undefined;
  } else {
    key = createPrivateKey(text);
  }
  const pub = createPublicKey(key).export({ format: 'jwk' }) as JWK;
  const alg = CURVE_ALG[pub.crv ?? ''];
  if (!alg) throw new Error(`${path}: step-ca JWK provisioners use EC or Ed25519 keys, not ${key.asymmetricKeyType ?? '?'}`);
  return { key, alg, kid: kid ?? (await calculateJwkThumbprint(pub, 'sha256')) };
}

/** SHA-256 of the root certificate's DER, lower-case hex: what `step ca bootstrap --fingerprint` takes. */
export function rootFingerprint(rootPem: string): string {
  return createHash('sha256').update(new X509Certificate(rootPem).raw).digest('hex');
}

export interface OttRequest {
  caUrl: string;
  provisioner: string;
  rootFingerprint: string;
  subject: string;
  sans: string[];
  lifetimeSeconds?: number;
  now?: Date;
  /** The CA endpoint the token is for: `sign` (the default) or `revoke`, whose subject is the serial. */
  endpoint?: 'sign' | 'revoke';
}

/**
 * A step-ca one-time token, the same claims `step ca token` puts in: aud is the sign endpoint, sha pins the
 * root so the client cannot be pointed at another CA, and jti makes it single-use on the CA side.
 */
export async function mintOtt(key: ProvisionerKey, req: OttRequest): Promise<{ token: string; expiresAt: Date }> {
  const iat = Math.floor((req.now ?? new Date()).getTime() / 1000);
  const exp = iat + (req.lifetimeSeconds ?? 300);
  const token = await new SignJWT({ sans: req.sans, sha: req.rootFingerprint })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
    .setIssuer(req.provisioner)
    .setSubject(req.subject)
    .setAudience(`${req.caUrl.replace(/\/+$/, '')}/1.0/${req.endpoint ?? 'sign'}`)
    .setIssuedAt(iat)
    .setNotBefore(iat)
    .setExpirationTime(exp)
    .setJti(randomUUID())
    .sign(key.key);
  return { token, expiresAt: new Date(exp * 1000) };
}
