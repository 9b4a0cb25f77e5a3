import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { KeyStorageKind } from '../config/sections/identity.js';
import { IdentityError } from './errors.js';
import { REPAIR } from './store.js';

/** The subset of keytar we use, so tests and other platforms can supply their own store. */
export interface SecretStore {
  getPassword(service: string, account: string): Promise<string | null>;
  setPassword(service: string, account: string, password: string): Promise<void>;
  deletePassword(service: string, account: string): Promise<boolean>;
}

/** How the device's private key is kept at rest. `seal`/`open` work on PKCS#8 DER. */
export interface KeyStorage {
  readonly kind: KeyStorageKind;
  /** Suffix of the key file, so a glance at the state dir tells which mode wrote it. */
  readonly extension: string;
  seal(pkcs8: Buffer): Promise<Buffer>;
  open(data: Buffer, path: string): Promise<Buffer>;
  /** Structural check without unsealing (no keychain prompt), so status can spot a damaged file. */
  inspect(data: Buffer, path: string): void;
  /** Forgets whatever the storage holds outside the key file (the keychain entry). */
  destroy(): Promise<void>;
}

export const DATA_KEY_ACCOUNT = 'device-key-data-key';
const MAGIC = Buffer.from('VGK1');
/** Binds the ciphertext to its purpose and format version: a blob sealed for something else will not open. */
const AAD = Buffer.from('vigil:device-private-key:pkcs8:v1');
const IV_LEN = 12;
const TAG_LEN = 16;

function keychainError(err: unknown): IdentityError {
  // Already one line with its own advice (keytar failed to load): wrapping it again would repeat it.
  if (err instanceof IdentityError) return err;
  const why = err instanceof Error ? err.message : String(err);
  return new IdentityError(
    'keychain',
    `the OS keychain is not available (${why}); unlock or start it, or set identity.keyStorage to "file" on a headless host`,
    { cause: err },
  );
}

/**
 * keytar is an optional dependency (on Linux it compiles against libsecret-1-dev when no prebuilt binary can be
 * downloaded), so it may be absent. Its name is kept out of a literal import so that the TypeScript build never needs
 * its typings: `SecretStore` above is the whole interface we rely on, checked at run time below.
 */
const KEYTAR_MODULE: string = 'keytar';

/**
 * What the user can do about a keytar that will not load, for the platform they are on. `installed` says whether the
 * package is there at all: npm removes an optional dependency whose build failed, and then only `npm install` brings it
 * back (`npm rebuild keytar` reports success and does nothing); a package that is there but whose binding is missing
 * or broken needs `npm rebuild keytar`.
 */
export function keytarAdvice(platform: NodeJS.Platform = process.platform, installed = true): string {
  const orFile = 'or set identity.keyStorage to "file"';
  switch (platform) {
    case 'linux':
      return `install libsecret-1-dev (Debian/Ubuntu) and run \`${installed ? 'npm rebuild keytar' : 'npm install'}\`, ${orFile}`;
    case 'darwin':
      return `reinstall it with \`npm install\` (building it needs the Xcode command-line tools), ${orFile}`;
    case 'win32':
      return `reinstall it with \`npm install\` (building it needs the Visual Studio C++ build tools), ${orFile}`;
    default:
      return `reinstall it with \`npm install\`, ${orFile}`;
  }
}

/** Node's ESM loader could not find the keytar package itself (not a file inside it, which is CommonJS's MODULE_NOT_FOUND). */
function packageMissing(err: unknown): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && err.message.includes(`'${KEYTAR_MODULE}'`);
}

/** One line: why keytar did not load (the first line of the loader's error; Node appends a require stack) and what to do. */
export function keytarUnavailable(err: unknown, platform: NodeJS.Platform = process.platform): IdentityError {
  const message = err instanceof Error ? err.message : String(err);
  const why = message.split('\n', 1)[0]?.trim() || 'no reason given';
  const advice = keytarAdvice(platform, !packageMissing(err));
  return new IdentityError('keychain', `the keychain library keytar could not be loaded (${why}); ${advice}`, { cause: err });
}

function isSecretStore(v: unknown): v is SecretStore {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return typeof o.getPassword === 'function' && typeof o.setPassword === 'function' && typeof o.deletePassword === 'function';
}

/** Loads a module by name; a parameter so tests can make the import fail without uninstalling keytar. */
export type ModuleLoader = (specifier: string) => Promise<unknown>;
const importModule: ModuleLoader = (specifier) => import(specifier);

/** keytar is a native module: loaded on first use, so file mode and the rest of the agent never need it. */
export async function keytarStore(load: ModuleLoader = importModule, platform: NodeJS.Platform = process.platform): Promise<SecretStore> {
  let mod: unknown;
  try {
    mod = await load(KEYTAR_MODULE);
  } catch (err) {
    throw keytarUnavailable(err, platform);
  }
  // keytar is CommonJS: imported as ESM its functions sit on `default` (and, via Node's export detection, on the namespace).
  const store = typeof mod === 'object' && mod !== null && 'default' in mod ? mod.default : mod;
  if (isSecretStore(store)) return store;
  if (isSecretStore(mod)) return mod;
  throw keytarUnavailable(new Error('the module does not export getPassword, setPassword and deletePassword'), platform);
}

export function sealWithDataKey(dataKey: Buffer, pkcs8: Buffer): Buffer {
  const iv = randomBytes(IV_LEN);
  const cipher = createCipheriv('aes-256-gcm', dataKey, iv, { authTagLength: TAG_LEN });
  cipher.setAAD(AAD);
  const ct = Buffer.concat([cipher.update(pkcs8), cipher.final()]);
  return Buffer.concat([MAGIC, iv, cipher.getAuthTag(), ct]);
}

/** A sealed P-256 PKCS#8 is 138 bytes of plaintext; anything shorter than that is certainly damaged. */
const MIN_PLAINTEXT = 100;

export function inspectSealed(blob: Buffer, path: string): void {
  if (blob.length < MAGIC.length + IV_LEN + TAG_LEN + MIN_PLAINTEXT || !blob.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new IdentityError('corrupt-state', `the encrypted key file ${path} is truncated or not a Vigil key file; ${REPAIR}`);
  }
}

export function openWithDataKey(dataKey: Buffer, blob: Buffer, path: string): Buffer {
  inspectSealed(blob, path);
  const iv = blob.subarray(MAGIC.length, MAGIC.length + IV_LEN);
  const tag = blob.subarray(MAGIC.length + IV_LEN, MAGIC.length + IV_LEN + TAG_LEN);
  const ct = blob.subarray(MAGIC.length + IV_LEN + TAG_LEN);
  const decipher = createDecipheriv('aes-256-gcm', dataKey, iv, { authTagLength: TAG_LEN });
  decipher.setAAD(AAD);
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(ct), decipher.final()]);
  } catch (err) {
    throw new IdentityError(
      'corrupt-state',
      `the encrypted key file ${path} fails authentication (corrupted, or sealed under another keychain entry); ${REPAIR}`,
      { cause: err },
    );
  }
}

/** Default: the key file is AES-256-GCM ciphertext; its 256-bit data key lives only in the OS keychain. */
export class KeychainKeyStorage implements KeyStorage {
  readonly kind = 'keychain' as const;
  readonly extension = '.key.enc';

  constructor(
    private readonly store: () => Promise<SecretStore>,
    private readonly service: string,
    private readonly account: string = DATA_KEY_ACCOUNT,
  ) {}

  private async dataKey(create: boolean): Promise<Buffer | undefined> {
    let store: SecretStore;
    let existing: string | null;
    try {
      store = await this.store();
      existing = await store.getPassword(this.service, this.account);
    } catch (err) {
      throw keychainError(err);
    }
    if (existing) {
      const key = Buffer.from(existing, 'base64');
      if (key.length === 32) return key;
      if (!create) return undefined;
    }
    if (!create) return undefined;
    const key = randomBytes(32);
    try {
      await store.setPassword(this.service, this.account, key.toString('base64'));
    } catch (err) {
      throw keychainError(err);
    }
    return key;
  }

  async seal(pkcs8: Buffer): Promise<Buffer> {
    const key = await this.dataKey(true);
    if (!key) throw new IdentityError('keychain', 'could not create the data key in the OS keychain');
    return sealWithDataKey(key, pkcs8);
  }

  async open(data: Buffer, path: string): Promise<Buffer> {
    const key = await this.dataKey(false);
    if (!key) {
      throw new IdentityError(
        'corrupt-state',
        `the keychain entry "${this.service}/${this.account}" that unlocks ${path} is missing; ${REPAIR}`,
      );
    }
    return openWithDataKey(key, data, path);
  }

  inspect(data: Buffer, path: string): void {
    inspectSealed(data, path);
  }

  async destroy(): Promise<void> {
    try {
      await (await this.store()).deletePassword(this.service, this.account);
    } catch (err) {
      throw keychainError(err);
    }
  }
}

/** Explicit opt-in only (`keyStorage: "file"`): a 0600 PKCS#8 PEM, for hosts with no keychain at all. */
export class FileKeyStorage implements KeyStorage {
  readonly kind = 'file' as const;
  readonly extension = '.key.pem';

  seal(pkcs8: Buffer): Promise<Buffer> {
    const b64 = pkcs8.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
    return Promise.resolve(Buffer.from(`-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n`));
  }

  open(data: Buffer, path: string): Promise<Buffer> {
    return Promise.resolve().then(() => this.der(data, path));
  }

  inspect(data: Buffer, path: string): void {
    this.der(data, path);
  }

  private der(data: Buffer, path: string): Buffer {
    const m = /-----BEGIN PRIVATE KEY-----([A-Za-z0-9+/=\s]+)-----END PRIVATE KEY-----/.exec(data.toString('utf8'));
    if (!m?.[1]) throw new IdentityError('corrupt-state', `the key file ${path} is truncated or not a PKCS#8 PEM; ${REPAIR}`);
    return Buffer.from(m[1].replace(/\s/g, ''), 'base64');
  }

  destroy(): Promise<void> {
    return Promise.resolve();
  }
}
