import { createPrivateKey, createPublicKey, webcrypto, type KeyObject } from 'node:crypto';
import type * as X509 from '@peculiar/x509';
import type { KeyType } from '../config/sections/identity.js';

type WebCryptoKey = webcrypto.CryptoKey;

const ALGORITHMS: Record<KeyType, { gen: webcrypto.RsaHashedKeyGenParams | webcrypto.EcKeyGenParams; sign: webcrypto.Algorithm | webcrypto.EcdsaParams }> = {
  'ec-p256': {
    gen: { name: 'ECDSA', namedCurve: 'P-256' },
    sign: { name: 'ECDSA', hash: 'SHA-256' },
  },
  'rsa-3072': {
    gen: { name: 'RSASSA-PKCS1-v1_5', modulusLength: 3072, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
    sign: { name: 'RSASSA-PKCS1-v1_5' },
  },
};

/** A device key held in memory only; `pkcs8` is what the key storage seals. */
export interface DeviceKey {
  type: KeyType;
  pkcs8: Buffer;
  privateKey: KeyObject;
  /** DER SubjectPublicKeyInfo, compared byte for byte with the issued certificate's key. */
  spki: Buffer;
}

export async function generateDeviceKey(type: KeyType): Promise<DeviceKey> {
  const pair = await webcrypto.subtle.generateKey(ALGORITHMS[type].gen, true, ['sign', 'verify']);
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', pair.privateKey));
  return deviceKeyFromPkcs8(pkcs8);
}

export function keyTypeOf(key: KeyObject): KeyType {
  const details = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'ec' && details?.namedCurve === 'prime256v1') return 'ec-p256';
  if (key.asymmetricKeyType === 'rsa' && details?.modulusLength === 3072) return 'rsa-3072';
  throw new Error(`unsupported device key: ${key.asymmetricKeyType ?? 'unknown'} ${details?.namedCurve ?? details?.modulusLength ?? ''}`);
}

/** Throws on anything that is not a well-formed P-256 or RSA-3072 PKCS#8 key (e.g. a truncated file). */
export function deviceKeyFromPkcs8(pkcs8: Buffer): DeviceKey {
  const privateKey = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  return { type: keyTypeOf(privateKey), pkcs8, privateKey, spki };
}

/** In-memory PEM for the TLS stack, which takes no KeyObject. Never written to disk. */
export function privateKeyPem(key: DeviceKey): string {
  return key.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
}

async function webcryptoPair(key: DeviceKey): Promise<{ privateKey: WebCryptoKey; publicKey: WebCryptoKey }> {
  const alg = ALGORITHMS[key.type].gen;
  const importAlg = alg.name === 'ECDSA' ? alg : { name: alg.name, hash: 'SHA-256' };
  const privateKey = await webcrypto.subtle.importKey('pkcs8', key.pkcs8, importAlg, false, ['sign']);
  const publicKey = await webcrypto.subtle.importKey('spki', key.spki, importAlg, true, ['verify']);
  return { privateKey, publicKey };
}

export interface CsrRequest {
  commonName: string;
  dnsNames: string[];
  uris: string[];
}

/**
 * @peculiar/x509 costs about half a second of CPU to load, so only commands that build a CSR pay for it
 * (not `vigil identity`, not the daemon between renewals). Its DI container needs Reflect metadata first.
 */
async function loadX509(): Promise<typeof X509> {
  await import('reflect-metadata');
  return import('@peculiar/x509');
}

export async function createCsr(key: DeviceKey, req: CsrRequest): Promise<string> {
  const x509 = await loadX509();
  const sans: X509.JsonGeneralNames = [
    ...req.dnsNames.map((value) => ({ type: 'dns' as const, value })),
    ...req.uris.map((value) => ({ type: 'url' as const, value })),
  ];
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    {
      name: [{ CN: [req.commonName] }],
      keys: await webcryptoPair(key),
      signingAlgorithm: ALGORITHMS[key.type].sign,
      extensions: sans.length > 0 ? [new x509.SubjectAlternativeNameExtension(sans)] : [],
    },
    // Explicit rather than x509's global provider registry: no process-wide state.
    webcrypto,
  );
  return csr.toString('pem');
}
