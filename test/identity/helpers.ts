import { createPrivateKey } from 'node:crypto';
import { mkdtemp, readdir, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { identityConfigSchema, type IdentityConfig } from '../../src/config/sections/identity.js';
import type { SecretStore } from '../../src/identity/key-storage.js';
import { IdentityManager, type IdentityManagerOptions } from '../../src/identity/manager.js';
import type { Pointer } from '../../src/identity/store.js';

/**
 * Stands in for the OS keychain in the step-ca scenario tests so they need no D-Bus session; the real
 * Secret Service path is exercised by keychain.test.ts. Encryption of the key file is the real code either way.
 */
export function memorySecretStore(): SecretStore & { entries: Map<string, string> } {
  const entries = new Map<string, string>();
  return {
    entries,
    getPassword: (s, a) => Promise.resolve(entries.get(`${s}/${a}`) ?? null),
    setPassword: (s, a, p) => {
      entries.set(`${s}/${a}`, p);
      return Promise.resolve();
    },
    deletePassword: (s, a) => Promise.resolve(entries.delete(`${s}/${a}`)),
  };
}

export function config(overrides: Record<string, unknown> = {}): IdentityConfig {
  return identityConfigSchema.parse({ domain: 'example.com', renewJitter: 0, ...overrides });
}

export async function newStateDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'vigil-identity-'));
}

export function manager(stateDir: string, cfg: IdentityConfig, secrets: SecretStore, extra: Partial<IdentityManagerOptions> = {}): IdentityManager {
  return new IdentityManager({ stateDir, config: cfg, secretStore: () => Promise.resolve(secrets), ...extra });
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return out;
  }
  for (const name of entries) {
    const p = join(dir, name);
    const st = await stat(p);
    if (st.isDirectory()) out.push(...(await walk(p)));
    else out.push(p);
  }
  return out;
}

/** PKCS#8 (version 0 + id-ecPublicKey / rsaEncryption) and SEC1 EC key prefixes: present in private keys, never in SPKI. */
const KEY_DER_MARKERS = [
  Buffer.from('020100301306072a8648ce3d0201', 'hex'),
  Buffer.from('020100300d06092a864886f70d010101', 'hex'),
  Buffer.from('307702010104', 'hex'),
];

/**
 * Fails if any file under `dir` holds a private key in the clear: a PEM private key block, PKCS#8/SEC1 DER,
 * or (when given) the raw secret scalar of the actual key in binary, hex, base64 or base64url.
 */
export async function assertNoPlaintextKey(dir: string, secrets: Buffer[] = []): Promise<string[]> {
  const files = await walk(dir);
  for (const file of files) {
    const data = await readFile(file);
    const text = data.toString('latin1');
    if (/PRIVATE KEY/.test(text)) throw new Error(`plaintext PEM private key in ${file}`);
    for (const m of KEY_DER_MARKERS) if (data.includes(m)) throw new Error(`DER private key structure in ${file}`);
    for (const s of secrets) {
      for (const form of [s.toString('latin1'), s.toString('hex'), s.toString('base64'), s.toString('base64url')]) {
        if (text.includes(form)) throw new Error(`the private key's secret bytes appear in ${file}`);
      }
    }
  }
  return files;
}

/** The secret scalar (EC `d`) or private exponent (RSA `d`) of a PKCS#8 key, for the scan above. */
export function secretOf(pkcs8: Buffer): Buffer {
  const jwk = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ format: 'jwk' });
  if (typeof jwk.d !== 'string') throw new Error('not a private key');
  return Buffer.from(jwk.d, 'base64url');
}

/** Decrypts the device key through the manager's own storage, as a test oracle. */
export async function currentKeySecret(m: IdentityManager): Promise<{ pointer: Pointer; secret: Buffer }> {
  const pointer = await m.store.readPointer();
  if (!pointer) throw new Error('not enrolled');
  const storage = m.storageFor(pointer.keyStorage);
  const pkcs8 = await storage.open(await m.store.read(pointer.keyFile, 'key'), pointer.keyFile);
  return { pointer, secret: secretOf(pkcs8) };
}

export async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}
