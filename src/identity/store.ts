import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, readlink, rename, rm, stat, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { KEY_STORAGES, KEY_TYPES } from '../config/sections/identity.js';
import { syncDir, writeFileAtomic } from '../state/atomic.js';
import { sha256Hex } from './certs.js';
import { IdentityError } from './errors.js';

const trustSchema = z.strictObject({
  version: z.literal(1),
  caUrl: z.string(),
  fingerprint: z.string().regex(/^[0-9a-f]{64}$/),
});
export type Trust = z.output<typeof trustSchema>;

const fileName = z.string().regex(/^[a-z0-9.-]+$/);

const pointerSchema = z.strictObject({
  version: z.literal(1),
  caUrl: z.string(),
  fingerprint: z.string().regex(/^[0-9a-f]{64}$/),
  deviceId: z.string(),
  deviceIdSource: z.string(),
  keyType: z.enum(KEY_TYPES),
  keyStorage: z.enum(KEY_STORAGES),
  keyFile: fileName,
  certFile: fileName,
  requested: z.strictObject({ commonName: z.string(), dnsNames: z.array(z.string()), uris: z.array(z.string()) }),
  enrolledAt: z.string(),
});
export type Pointer = z.output<typeof pointerSchema>;

const revokedSchema = z.strictObject({
  version: z.literal(1),
  /** The certificate the CA refused, as upper-case hex (CertInfo.serialHex): a later enroll or rekey makes it moot. */
  serial: z.string().regex(/^[0-9A-F]+$/),
  at: z.string(),
  reason: z.string(),
  /** When the control plane acknowledged it, so the daemon tells it once per certificate, across restarts. */
  reportedAt: z.string().optional(),
});
export type Revoked = z.output<typeof revokedSchema>;

/** The repair every damaged-file message names: enroll overwrites each identity file. */
export const REPAIR = 'run `vigil enroll --ca-url <url> --fingerprint <sha256> --token <token>` to replace it';

const TRUST = 'trust.json';
const CURRENT = 'current.json';
const REVOKED = 'revoked.json';
/** Symlink to the pair directory of the committed pair; swapping it swaps certificate and key at once. */
const LIVE = 'live';
/** The stable names other tools (`step ca renew --daemon`, a proxy) are pointed at. */
export const STABLE_CERT = 'device.crt';
export const STABLE_KEY = 'device.key';

/** The pair directory for a pointer: derived from its files, so checking whether it is current is a readlink. */
function pairDirName(pointer: Pointer): string {
  return `pair-${createHash('sha256').update(`${pointer.keyFile}\0${pointer.certFile}`).digest('hex').slice(0, 16)}`;
}

async function lstatOrUndefined(path: string): Promise<Awaited<ReturnType<typeof lstat>> | undefined> {
  try {
    return await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export function rootFileName(fingerprint: string): string {
  return `root-${fingerprint.slice(0, 16)}.crt`;
}

/**
 * The identity directory. Key and certificate files are never overwritten in place: a new pair is written
 * under fresh names, read back and verified, and only then does `current.json` (written atomically) point
 * at it. A crash at any instant therefore leaves `current.json` naming a complete, verified pair; files it
 * does not name are leftovers and are pruned.
 *
 * Other tools get stable paths, `device.crt` and (key storage "file" only: the sealed key is of no use to
 * them) `device.key`, symlinks through `live` to a `pair-*` directory whose two symlinks name the
 * committed files. Replacing `live` is one atomic rename, so a reader never sees the certificate of one
 * pair with the key of another; after a crash between `current.json` and that rename the links still
 * name the previous (complete, still valid) pair until the next refresh re-links them. Windows needs
 * privileges for symlinks, so there the versioned files are the only paths.
 */
export class IdentityStore {
  constructor(readonly dir: string) {}

  path(name: string): string {
    return join(this.dir, name);
  }

  private async readJson<T>(name: string, schema: z.ZodType<T>, what: string): Promise<T | undefined> {
    let text: string;
    try {
      text = await readFile(this.path(name), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      return schema.parse(JSON.parse(text));
    } catch (err) {
      throw new IdentityError('corrupt-state', `${what} ${this.path(name)} is corrupt (${err instanceof SyntaxError ? 'not JSON' : 'not the expected fields'}); ${REPAIR}`, { cause: err });
    }
  }

  readTrust(): Promise<Trust | undefined> {
    return this.readJson(TRUST, trustSchema, 'the CA trust file');
  }

  readPointer(): Promise<Pointer | undefined> {
    return this.readJson(CURRENT, pointerSchema, 'the identity pointer');
  }

  /**
   * The CA's refusal to renew a certificate still within its validity. A damaged file is treated as absent:
   * it is a note about the identity, not part of it, and the next renewal attempt finds the refusal again.
   */
  async readRevoked(): Promise<Revoked | undefined> {
    return this.readJson(REVOKED, revokedSchema, 'the revocation note').catch(() => undefined);
  }

  async writeRevoked(revoked: Revoked): Promise<void> {
    await writeFileAtomic(this.path(REVOKED), `${JSON.stringify(revoked, null, 2)}\n`, 0o644);
  }

  async clearRevoked(): Promise<void> {
    await rm(this.path(REVOKED), { force: true });
  }

  async writeTrust(caUrl: string, fingerprint: string, rootPem: string): Promise<void> {
    await writeFileAtomic(this.path(rootFileName(fingerprint)), rootPem, 0o644);
    const trust: Trust = { version: 1, caUrl, fingerprint };
    await writeFileAtomic(this.path(TRUST), `${JSON.stringify(trust, null, 2)}\n`, 0o644);
  }

  /** Re-hashes the pinned root on every read: a swapped file must not silently become the trust anchor. */
  async readRoot(fingerprint: string): Promise<string> {
    const path = this.path(rootFileName(fingerprint));
    let pem: string;
    try {
      pem = await readFile(path, 'utf8');
    } catch (err) {
      throw new IdentityError('corrupt-state', `the pinned root ${path} is missing; ${REPAIR}`, {
        cause: err,
      });
    }
    let actual: string;
    try {
      actual = sha256Hex(new X509Certificate(pem).raw);
    } catch (err) {
      throw new IdentityError('corrupt-state', `the pinned root ${path} is not a readable PEM certificate; ${REPAIR}`, { cause: err });
    }
    if (actual !== fingerprint) {
      throw new IdentityError('corrupt-state', `the pinned root ${path} no longer matches fingerprint ${fingerprint}; ${REPAIR}`);
    }
    return pem;
  }

  async writeNew(prefix: 'key' | 'cert', extension: string, data: string | Buffer, mode: number): Promise<string> {
    const name = `${prefix}-${randomBytes(6).toString('hex')}${extension}`;
    await writeFileAtomic(this.path(name), data, mode);
    return name;
  }

  async read(name: string, what: string): Promise<Buffer> {
    try {
      return await readFile(this.path(name));
    } catch (err) {
      throw new IdentityError('corrupt-state', `the ${what} ${this.path(name)} is missing; ${REPAIR}`, { cause: err });
    }
  }

  /** The commit point: after this returns, the new pair is the identity. */
  async commit(pointer: Pointer): Promise<void> {
    await writeFileAtomic(this.path(CURRENT), `${JSON.stringify(pointer, null, 2)}\n`, 0o600);
    await this.linkStable(pointer);
    // Files newer than the pair just committed may belong to another process's enrollment in flight.
    const cutoff = (await stat(this.path(pointer.certFile))).mtimeMs;
    await this.prune(pointer, cutoff);
  }

  /** Where other tools find the certificate and (file storage only) the key; undefined where there are no links. */
  stablePaths(pointer: Pointer): { certificate: string; key?: string } | undefined {
    if (process.platform === 'win32') return undefined;
    return pointer.keyStorage === 'file' ? { certificate: this.path(STABLE_CERT), key: this.path(STABLE_KEY) } : { certificate: this.path(STABLE_CERT) };
  }

  /** Points the stable paths at the pointer's pair; a no-op (two readlinks) when they already do. */
  async linkStable(pointer: Pointer): Promise<void> {
    if (process.platform === 'win32') return;
    const pair = pairDirName(pointer);
    const live = await readlink(this.path(LIVE)).catch(() => undefined);
    const withKey = pointer.keyStorage === 'file';
    if (live !== pair || (await lstatOrUndefined(this.path(pair))) === undefined) {
      const dir = this.path(pair);
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { mode: 0o700 });
      await symlink(join('..', pointer.certFile), join(dir, STABLE_CERT));
      if (withKey) await symlink(join('..', pointer.keyFile), join(dir, STABLE_KEY));
      await syncDir(dir);
      const tmp = this.path(`.${LIVE}.${randomBytes(6).toString('hex')}.tmp`);
      await symlink(pair, tmp);
      await rename(tmp, this.path(LIVE));
      await syncDir(this.dir);
    }
    await this.ensureLink(STABLE_CERT, true);
    await this.ensureLink(STABLE_KEY, withKey);
  }

  /**
   * `device.crt` -> `live/device.crt`, made once. A regular file there is someone else's (a tool that
   * replaced the link with its own renewal) and is left alone.
   */
  private async ensureLink(name: string, wanted: boolean): Promise<void> {
    const path = this.path(name);
    const st = await lstatOrUndefined(path);
    if (st && !st.isSymbolicLink()) return;
    const target = join(LIVE, name);
    if (!wanted) {
      if (st) await rm(path, { force: true });
      return;
    }
    if (st && (await readlink(path)) === target) return;
    const tmp = this.path(`.${name}.${randomBytes(6).toString('hex')}.tmp`);
    await symlink(target, tmp);
    await rename(tmp, path);
    await syncDir(this.dir);
  }

  /** Removes key/cert/root files that neither the pointer nor the trust file names (up to `cutoffMs`). */
  async prune(pointer: Pointer | undefined, cutoffMs = Number.POSITIVE_INFINITY): Promise<void> {
    const trust = await this.readTrust().catch(() => undefined);
    const keep = new Set<string>([TRUST, CURRENT]);
    if (pointer) {
      keep.add(pointer.keyFile);
      keep.add(pointer.certFile);
      keep.add(rootFileName(pointer.fingerprint));
      keep.add(pairDirName(pointer));
    }
    if (trust) keep.add(rootFileName(trust.fingerprint));
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return;
    }
    let removed = false;
    for (const name of names) {
      if (keep.has(name) || !/^(key|cert|root|pair)-/.test(name)) continue;
      const st = await stat(this.path(name)).catch(() => undefined);
      if (!st || st.mtimeMs > cutoffMs) continue;
      await rm(this.path(name), { recursive: true, force: true });
      removed = true;
    }
    if (removed) await syncDir(this.dir);
  }

  /** Unenroll: the pointer goes first, so a crash half-way leaves "not enrolled", never a dangling pointer. */
  async clearIdentity(): Promise<void> {
    await rm(this.path(CURRENT), { force: true });
    await rm(this.path(REVOKED), { force: true });
    for (const name of [STABLE_CERT, STABLE_KEY, LIVE]) {
      if ((await lstatOrUndefined(this.path(name)))?.isSymbolicLink()) await rm(this.path(name), { force: true });
    }
    await syncDir(this.dir).catch(() => undefined);
    await this.prune(undefined);
  }
}
