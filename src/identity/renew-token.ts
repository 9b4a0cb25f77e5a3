import { randomUUID, X509Certificate } from 'node:crypto';
import { SignJWT } from 'jose';
import { certInfo, splitPem } from './certs.js';
import type { DeviceKey } from './keys.js';

/** step-ca's issuer for client-made renewal tokens (`step ca renew` without mTLS). */
const RENEW_ISSUER = 'step-ca-client/1.0';

/**
 * The token step-ca 0.19 accepts on POST /1.0/renew in place of a client certificate: signed with the
 * certificate's own key and carrying the chain in `x5c`. mTLS cannot present an expired certificate (the
 * handshake fails), so this is the only way to renew one after expiry, where the provisioner allows it.
 * Loaded only when a certificate has expired: the daemon need not keep a JWT library resident otherwise.
 */
export function renewToken(opts: { caUrl: string; chainPem: string; key: DeviceKey; now: Date }): Promise<string> {
  const chain = splitPem(opts.chainPem).map((pem) => new X509Certificate(pem));
  const leaf = chain[0];
  if (leaf === undefined) throw new Error('the certificate chain is empty');
  const now = Math.floor(opts.now.getTime() / 1000);
  return new SignJWT({})
    // step-ca 0.19 reads the chain from `x5cInsecure` (its own header: x5c but verified ignoring expiry), in
    // standard base64 like x5c. It verifies the chain as of NotAfter minus one minute, so a certificate
    // lasting less than a minute cannot renew this way.
    .setProtectedHeader({ alg: opts.key.type === 'rsa-3072' ? 'RS256' : 'ES256', typ: 'JWT', x5cInsecure: chain.map((c) => c.raw.toString('base64')) })
    .setSubject(certInfo(leaf).commonName ?? '')
    .setIssuer(RENEW_ISSUER)
    .setAudience(`${opts.caUrl.replace(/\/+$/, '')}/1.0/renew`)
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(now + 300)
    // step-ca refuses a token it has seen before.
    .setJti(randomUUID())
    .sign(opts.key.privateKey);
}
