import type { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import type { IdentityConfig, KeyStorageKind } from '../config/sections/identity.js';
import { normalizeFingerprint } from '../config/sections/identity.js';
import { silentLogger, type Logger } from '../logging/logger.js';
import { CaClient, fetchPinnedRoot, parseSignResponse, type ClientIdentity, type SignResponse } from './ca-client.js';
import { certInfo, parseCertificate, splitPem, verifyIssued, type CertInfo } from './certs.js';
import { detectDeviceId, type DeviceId } from './device-id.js';
import { IdentityError } from './errors.js';
import { FileKeyStorage, KeychainKeyStorage, keytarStore, type KeyStorage, type SecretStore } from './key-storage.js';
import { createCsr, deviceKeyFromPkcs8, generateDeviceKey, privateKeyPem, type CsrRequest, type DeviceKey } from './keys.js';
import { backoffDelay, renewalTime } from './schedule.js';
import { IdentityStore, REPAIR, type Pointer, type Revoked } from './store.js';
import { renderSubject, tokenSans } from './template.js';
import type { TokenSource } from './token.js';

/**
 * `revoked`: the CA refused to renew a certificate that is still within its validity (revoked, or its
 * provisioner no longer allows renewal); nothing is retried until someone enrolls. `needs-enrollment` covers an
 * expired certificate too, whose renewal is still tried (step-ca may allow renewal after expiry) until the CA
 * refuses it.
 */
export type IdentityState = 'not-enrolled' | 'valid' | 'renewing' | 'needs-enrollment' | 'revoked';

export interface IdentityStatus {
  state: IdentityState;
  /** Why the state is what it is, when that is not obvious (e.g. what is corrupt). */
  reason?: string;
  /** The command that gets the device back to `valid`, when it needs one. */
  fix?: string;
  /** Stable paths for other tools: they always name the current pair (key: file storage only). */
  paths?: { certificate: string; key?: string };
  deviceId?: string;
  deviceIdSource?: string;
  caUrl?: string;
  rootFingerprint?: string;
  keyStorage: KeyStorageKind;
  /** Set when the key is in a plaintext file the user chose, so every status display says so. */
  keyStorageWarning?: string;
  /** Where and how the key is kept, in words, when that is the normal place for it (a Linux service's file). */
  keyStorageNote?: string;
  keyType?: string;
  subject?: string;
  dnsNames?: string[];
  uris?: string[];
  serial?: string;
  notBefore?: string;
  notAfter?: string;
  renewAt?: string;
  timeToRenewalMs?: number;
  consecutiveFailures: number;
  lastError?: string;
  nextAttemptAt?: string;
}

export interface IdentityManagerOptions {
  /** The agent's state dir; the identity lives in its `identity/` subdirectory. */
  stateDir: string;
  config: IdentityConfig;
  logger?: Logger;
  /** Overrides the keychain (tests, or a platform-specific store). */
  secretStore?: () => Promise<SecretStore>;
  deviceId?: () => Promise<DeviceId>;
  /**
   * The privileged service's manager. On Linux a service has no user keychain, so its key lives in a
   * root-only file; that is the normal place there, and status describes it rather than warns.
   */
  service?: boolean;
  now?: () => Date;
  random?: () => number;
}

export interface EnrollOptions {
  token: TokenSource;
  caUrl?: string;
  fingerprint?: string;
}

export type RenewOutcome =
  | { action: 'renewed'; notAfter: Date }
  | { action: 'not-due'; renewAt: Date }
  | { action: 'skipped'; state: IdentityState; reason?: string }
  | { action: 'failed'; error: IdentityError; retryAt: Date }
  /** This renewal found the certificate refused; later runs return `skipped` with state `revoked`. */
  | { action: 'revoked'; serial: string; reason: string };

/** A certificate the CA refused to renew; `reportedAt` once the control plane has been told. */
export interface RevocationNotice {
  /** Upper-case hex, as IdentityStatus.serial. */
  serial: string;
  reason: string;
  reportedAt?: string;
}

interface Loaded {
  pointer: Pointer;
  rootPem: string;
  key: DeviceKey;
  chainPem: string;
  info: CertInfo;
}

const REENROLL_REVOKED = 'after an admin re-admits this device: vigil enroll --token <token>';

function noticeOf(r: Revoked): RevocationNotice {
  return { serial: r.serial, reason: r.reason, ...(r.reportedAt === undefined ? {} : { reportedAt: r.reportedAt }) };
}

function revokedMessage(reason: string): string {
  return `${reason}; ${REENROLL_REVOKED}`;
}

function enrollCommand(caUrl: string | undefined, fingerprint: string | undefined): string {
  return `vigil enroll --ca-url ${caUrl ?? '<url>'} --fingerprint ${fingerprint ?? '<sha256>'} --token <token>`;
}

const FILE_STORAGE_WARNING = 'the device private key is stored unencrypted in a 0600 file (identity.keyStorage = "file")';
const SERVICE_KEY_FILE_NOTE =
  'the device private key is in a root-only file (0600, in a 0700 directory): a Linux system service has no keychain, so, as Fleet\'s orbit and Smallstep\'s agent do without a TPM, the file permissions protect it';

function asIdentityError(err: unknown): IdentityError {
  if (err instanceof IdentityError) return err;
  return new IdentityError('ca-rejected', err instanceof Error ? err.message : String(err), { cause: err });
}

/**
 * The device's certificate lifecycle. Every mutating operation runs one at a time, and every one either
 * commits a fully verified key+certificate pair or leaves the previous pair in place.
 */
export class IdentityManager {
  readonly store: IdentityStore;
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly random: () => number;
  private readonly secretStore: () => Promise<SecretStore>;
  private queue: Promise<unknown> = Promise.resolve();

  private cached: { pointer: Pointer; info: CertInfo } | undefined;
  private cachedProblem: string | undefined;
  private readonly jitterBySerial = new Map<string, number>();
  /** A key that failed to unseal stays broken until a new key file replaces it. */
  private keyProblem: { keyFile: string; message: string } | undefined;
  /** Verified by unsealing once per key+certificate pair: a status must not call a garbled key valid. */
  private verifiedPair: string | undefined;
  /** The CA's refusal of the current certificate, if any (read from disk: another process may have recorded it). */
  private revoked: Revoked | undefined;
  private readonly revokedListeners = new Set<(notice: RevocationNotice) => void>();
  /** Serials already passed to the listeners, so each refusal is announced once per manager. */
  private readonly announcedRevoked = new Set<string>();
  private renewing = false;
  /**
   * The CA's refusal to renew the current certificate after it expired (its provisioner lacks
   * allowRenewalAfterExpiry). Kept in memory only: a restarted daemon asking once more costs one request.
   */
  private expiredRefusal: { serial: string; reason: string } | undefined;
  private failures = 0;
  private retryAt: Date | undefined;
  private lastError: string | undefined;

  constructor(private readonly opts: IdentityManagerOptions) {
    this.store = new IdentityStore(join(opts.stateDir, 'identity'));
    this.log = (opts.logger ?? silentLogger()).child({ component: 'identity' });
    this.now = opts.now ?? (() => new Date());
    this.random = opts.random ?? Math.random;
    this.secretStore = opts.secretStore ?? keytarStore;
  }

  private get serviceFile(): boolean {
    return this.opts.service === true && process.platform === 'linux';
  }

  private get config(): IdentityConfig {
    return this.opts.config;
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  storageFor(kind: KeyStorageKind): KeyStorage {
    return kind === 'file' ? new FileKeyStorage() : new KeychainKeyStorage(this.secretStore, this.config.keychainService);
  }

  private client(caUrl: string, rootPem: string): CaClient {
    return new CaClient(caUrl, rootPem, this.config.requestTimeoutSeconds * 1000);
  }

  /** Fetches and pins the CA root, as `step ca bootstrap`. On a mismatch nothing is written. */
  bootstrap(caUrl: string, fingerprint: string): Promise<string> {
    return this.exclusive(() => this.bootstrapUnlocked(caUrl, fingerprint));
  }

  private async bootstrapUnlocked(caUrl: string, fingerprintInput: string): Promise<string> {
    const trust = await this.fetchRoot(caUrl, fingerprintInput);
    await this.pin(trust);
    return trust.rootPem;
  }

  /** The root the fingerprint names, fetched from the CA and hash-checked; nothing is written. */
  private async fetchRoot(caUrl: string, fingerprintInput: string): Promise<{ caUrl: string; fingerprint: string; rootPem: string }> {
    const fp = normalizeFingerprint(fingerprintInput);
    if (fp === undefined) throw new IdentityError('config', `"${fingerprintInput}" is not a root fingerprint: give the 64-hex-digit SHA-256 (step certificate fingerprint root_ca.crt)`);
    const url = caUrl.replace(/\/+$/, '');
    if (!/^https:\/\//i.test(url)) throw new IdentityError('config', `the CA URL must start with https:// (got ${caUrl})`);
    return { caUrl: url, fingerprint: fp, rootPem: await fetchPinnedRoot(url, fp, this.config.requestTimeoutSeconds * 1000) };
  }

  private async pin(trust: { caUrl: string; fingerprint: string; rootPem: string }): Promise<void> {
    await this.store.writeTrust(trust.caUrl, trust.fingerprint, trust.rootPem);
    this.log.info('pinned CA root', { caUrl: trust.caUrl, fingerprint: trust.fingerprint });
  }

  /** `pinned` is false for a root fetched now: enrollment pins it only once it has succeeded. */
  private async trustFor(opts: { caUrl?: string; fingerprint?: string }): Promise<{ caUrl: string; fingerprint: string; rootPem: string; pinned: boolean }> {
    const caUrl = opts.caUrl ?? this.config.caUrl;
    const fingerprint = opts.fingerprint ?? this.config.fingerprint;
    if (caUrl !== undefined && fingerprint !== undefined) {
      // With a URL and fingerprint in hand, damaged trust files are simply pinned afresh (after the root
      // fetched from the CA has passed its hash check, so nothing unverified is written).
      const trust = await this.store.readTrust().catch(() => undefined);
      const url = caUrl.replace(/\/+$/, '');
      if (trust && trust.fingerprint === normalizeFingerprint(fingerprint) && trust.caUrl === url) {
        const rootPem = await this.store.readRoot(trust.fingerprint).catch(() => undefined);
        if (rootPem !== undefined) return { caUrl: trust.caUrl, fingerprint: trust.fingerprint, rootPem, pinned: true };
      }
      return { ...(await this.fetchRoot(caUrl, fingerprint)), pinned: false };
    }
    const trust = await this.store.readTrust();
    if (trust) return { caUrl: trust.caUrl, fingerprint: trust.fingerprint, rootPem: await this.store.readRoot(trust.fingerprint), pinned: true };
    throw new IdentityError('config', 'no CA configured: pass --ca-url and --fingerprint (or set identity.caUrl and identity.fingerprint)');
  }

  private async resolveDeviceId(): Promise<DeviceId> {
    // The ID chosen at first enrollment is kept even if a better source appears later (e.g. run as root).
    const pointer = await this.store.readPointer().catch(() => undefined);
    if (pointer) return { id: pointer.deviceId, source: pointer.deviceIdSource as DeviceId['source'] };
    return (this.opts.deviceId ?? (() => detectDeviceId()))();
  }

  /** The subject and SANs this device asks for; an admin's `step ca token` must use exactly these. */
  async requestedSubject(): Promise<{ deviceId: DeviceId; request: CsrRequest; tokenSans: string[] }> {
    const deviceId = await this.resolveDeviceId();
    const request = renderSubject(this.config.subject, { id: deviceId.id, domain: this.config.domain });
    return { deviceId, request, tokenSans: tokenSans(request) };
  }

  enroll(opts: EnrollOptions): Promise<IdentityStatus> {
    return this.exclusive(async () => {
      const trust = await this.trustFor(opts);
      const { deviceId, request, tokenSans: sans } = await this.requestedSubject();
      const key = await generateDeviceKey(this.config.keyType);
      // Sealing first means a missing keychain is found before the one-time token is spent.
      const sealed = await this.storageFor(this.config.keyStorage).seal(key.pkcs8);
      const csr = await createCsr(key, request);
      const current = await this.presentableIdentity();
      const ott = await opts.token.getToken({
        caUrl: trust.caUrl,
        rootPem: trust.rootPem,
        subject: request.commonName,
        sans,
        deviceId: deviceId.id,
        ...(current ? { current } : {}),
      });
      // Only enrollment reads a token; the long-running daemon need not keep a JWT library resident.
      const { decodeOtt, diagnoseSignRejection, precheckToken } = await import('./token.js');
      const claims = decodeOtt(ott);
      precheckToken(claims, trust.fingerprint);
      const client = this.client(trust.caUrl, trust.rootPem);
      const res = await client.sign(csr, ott, opts.token.notAfter);
      if (!res.parsed) {
        throw diagnoseSignRejection({
          status: res.status,
          body: res.body,
          claims,
          caUrl: trust.caUrl,
          caNow: res.date,
          provisioners: res.status === 401 ? await client.provisioners() : undefined,
        });
      }
      const { leaf, intermediates } = verifyIssued(res.parsed.crt, res.parsed.certChain, trust.rootPem, { spki: key.spki, ...request }, this.now());
      // Pinned only now: an enrollment refused on the way leaves nothing behind.
      if (!trust.pinned) await this.pin(trust);
      const pointer: Pointer = {
        version: 1,
        caUrl: trust.caUrl,
        fingerprint: trust.fingerprint,
        deviceId: deviceId.id,
        deviceIdSource: deviceId.source,
        keyType: key.type,
        keyStorage: this.config.keyStorage,
        keyFile: '',
        certFile: '',
        requested: request,
        enrolledAt: this.now().toISOString(),
      };
      await this.persist(pointer, key, leaf, intermediates, sealed);
      this.resetFailures();
      const info = certInfo(leaf);
      this.log.info('enrolled device certificate', { serial: info.serialHex, notAfter: info.notAfter.toISOString(), deviceId: deviceId.id });
      if (pointer.keyStorage === 'file' && !this.serviceFile) this.log.warn(FILE_STORAGE_WARNING);
      return this.statusUnlocked();
    });
  }

  /**
   * Writes the new key (if any) and certificate under fresh names, reads both back and checks they are the
   * pair just verified, then swaps the pointer. Until the swap the previous pair remains the identity.
   */
  private async persist(pointer: Pointer, key: DeviceKey, leaf: X509Certificate, intermediates: X509Certificate[], sealedKey: Buffer | undefined): Promise<void> {
    const storage = this.storageFor(pointer.keyStorage);
    if (sealedKey) pointer.keyFile = await this.store.writeNew('key', storage.extension, sealedKey, 0o600);
    const chainPem = [leaf, ...intermediates].map((c) => c.toString()).join('');
    pointer.certFile = await this.store.writeNew('cert', '.crt', chainPem, 0o644);
    const keyBack = deviceKeyFromPkcs8(await storage.open(await this.store.read(pointer.keyFile, 'key file'), this.store.path(pointer.keyFile)));
    const certBack = parseCertificate((await this.store.read(pointer.certFile, 'certificate')).toString('utf8'), 'the certificate just written');
    if (!keyBack.spki.equals(key.spki) || !certInfo(certBack).spki.equals(key.spki)) {
      throw new IdentityError('corrupt-state', 'the key and certificate read back from disk do not match what was written; the previous identity is kept');
    }
    await this.store.commit(pointer);
    // A refusal concerns the previous serial only; removing the note is tidiness, not correctness.
    await this.store.clearRevoked();
    this.revoked = undefined;
    this.cached = { pointer, info: certInfo(leaf) };
    this.cachedProblem = undefined;
    this.verifiedPair = `${pointer.keyFile}:${pointer.certFile}`;
  }

  private async loadFull(): Promise<Loaded> {
    try {
      return await this.loadFullUnchecked();
    } catch (err) {
      if (err instanceof IdentityError && err.code === 'corrupt-state') {
        const pointer = await this.store.readPointer().catch(() => undefined);
        if (pointer) this.keyProblem = { keyFile: pointer.keyFile, message: err.message };
        this.cached = undefined;
        this.cachedProblem = err.message;
      }
      throw err;
    }
  }

  private async loadFullUnchecked(): Promise<Loaded> {
    const pointer = await this.store.readPointer();
    if (!pointer) throw new IdentityError('not-enrolled', 'this device is not enrolled; run `vigil enroll --token <token>`');
    const rootPem = await this.store.readRoot(pointer.fingerprint);
    const keyPath = this.store.path(pointer.keyFile);
    const pkcs8 = await this.storageFor(pointer.keyStorage).open(await this.store.read(pointer.keyFile, 'key file'), keyPath);
    let key: DeviceKey;
    try {
      key = deviceKeyFromPkcs8(pkcs8);
    } catch (err) {
      throw new IdentityError('corrupt-state', `the key file ${keyPath} does not hold a usable private key; ${REPAIR}`, { cause: err });
    }
    const { info, chainPem } = await this.loadCert(pointer);
    if (!info.spki.equals(key.spki)) {
      throw new IdentityError('corrupt-state', `the certificate ${this.store.path(pointer.certFile)} does not belong to the stored key; ${REPAIR}`);
    }
    return { pointer, rootPem, key, chainPem, info };
  }

  private async loadCert(pointer: Pointer): Promise<{ info: CertInfo; chainPem: string }> {
    const path = this.store.path(pointer.certFile);
    const chainPem = (await this.store.read(pointer.certFile, 'certificate')).toString('utf8');
    const first = splitPem(chainPem)[0];
    if (first === undefined) throw new IdentityError('corrupt-state', `the certificate file ${path} is truncated or not PEM; ${REPAIR}`);
    const leaf = parseCertificate(first, `the certificate file ${path}`);
    return { info: certInfo(leaf), chainPem };
  }

  /** Re-reads the identity from disk (cheap: no keychain access); the daemon calls it before scheduling. */
  refresh(): Promise<void> {
    return this.exclusive(() => this.refreshUnlocked());
  }

  private async refreshUnlocked(): Promise<void> {
    try {
      const pointer = await this.store.readPointer();
      if (!pointer) {
        this.cached = undefined;
        this.cachedProblem = undefined;
        this.revoked = undefined;
        return;
      }
      // Every file enrollment wrote is checked, so a damaged one is reported now, not at the next renewal.
      await this.store.readTrust();
      await this.store.readRoot(pointer.fingerprint);
      const { info } = await this.loadCert(pointer);
      const keyData = await this.store.read(pointer.keyFile, 'key file');
      this.storageFor(pointer.keyStorage).inspect(keyData, this.store.path(pointer.keyFile));
      if (this.keyProblem?.keyFile === pointer.keyFile) throw new IdentityError('corrupt-state', this.keyProblem.message);
      await this.verifyPairOnce(pointer, keyData, info);
      // Re-links after a crash between commit and link swap. A reader without write access (status run by
      // another user) still gets a correct answer, so failing to link is not an identity problem.
      await this.store.linkStable(pointer).catch((err: unknown) => {
        this.log.debug(`cannot update the stable certificate paths: ${err instanceof Error ? err.message : String(err)}`);
      });
      if (this.cached?.info.serialHex !== info.serialHex) this.resetFailures();
      this.cached = { pointer, info };
      this.cachedProblem = undefined;
      const revoked = await this.store.readRevoked();
      this.revoked = revoked?.serial === info.serialHex ? revoked : undefined;
      this.announceRevoked();
    } catch (err) {
      this.cached = undefined;
      this.cachedProblem = asIdentityError(err).message;
    }
  }

  /**
   * Unseals the key once per pair: the structural check cannot see a garbled ciphertext or a deleted
   * keychain entry. A keychain that cannot be reached right now (locked, no session) proves nothing either
   * way, so the pair stays unverified and is tried again next time.
   */
  private async verifyPairOnce(pointer: Pointer, keyData: Buffer, info: CertInfo): Promise<void> {
    const pair = `${pointer.keyFile}:${pointer.certFile}`;
    if (this.verifiedPair === pair) return;
    const keyPath = this.store.path(pointer.keyFile);
    let pkcs8: Buffer;
    try {
      pkcs8 = await this.storageFor(pointer.keyStorage).open(keyData, keyPath);
    } catch (err) {
      if (err instanceof IdentityError && err.code === 'corrupt-state') this.keyProblem = { keyFile: pointer.keyFile, message: err.message };
      if (err instanceof IdentityError && err.code === 'keychain') return;
      throw err;
    }
    let key: DeviceKey;
    try {
      key = deviceKeyFromPkcs8(pkcs8);
    } catch (err) {
      throw new IdentityError('corrupt-state', `the key file ${keyPath} does not hold a usable private key; ${REPAIR}`, { cause: err });
    }
    if (!info.spki.equals(key.spki)) {
      throw new IdentityError('corrupt-state', `the certificate ${this.store.path(pointer.certFile)} does not belong to the stored key; ${REPAIR}`);
    }
    this.verifiedPair = pair;
  }

  /** Tells listeners about a refusal of the current certificate, once per serial. */
  private announceRevoked(): void {
    const r = this.revoked;
    if (!r || this.announcedRevoked.has(r.serial)) return;
    this.announcedRevoked.add(r.serial);
    for (const l of this.revokedListeners) l(noticeOf(r));
  }

  /**
   * Called once per refused certificate this manager sees: recorded by its own renewal, or found on disk
   * (recorded by another process, or before a restart). Returns the unsubscribe function.
   */
  onRevoked(listener: (notice: RevocationNotice) => void): () => void {
    this.revokedListeners.add(listener);
    // A refusal announced before this listener subscribed (another daemon extension's first run) still reaches it.
    const r = this.revoked;
    if (r && this.announcedRevoked.has(r.serial)) {
      queueMicrotask(() => {
        if (this.revokedListeners.has(listener) && this.revoked === r) listener(noticeOf(r));
      });
    }
    return () => {
      this.revokedListeners.delete(listener);
    };
  }

  /** Notes that the control plane has been told about the refusal of `serial`, so a restart does not tell it again. */
  markRevocationReported(serial: string): Promise<void> {
    return this.exclusive(async () => {
      const r = await this.store.readRevoked();
      if (r?.serial !== serial || r.reportedAt !== undefined) return;
      const updated: Revoked = { ...r, reportedAt: this.now().toISOString() };
      await this.store.writeRevoked(updated);
      if (this.revoked?.serial === serial) this.revoked = updated;
    });
  }

  private resetFailures(): void {
    this.failures = 0;
    this.retryAt = undefined;
    this.lastError = undefined;
  }

  private renewAtFor(info: CertInfo): Date {
    let r = this.jitterBySerial.get(info.serialHex);
    if (r === undefined) {
      r = this.random();
      this.jitterBySerial.set(info.serialHex, r);
    }
    return renewalTime(info.notBefore, info.notAfter, this.config.renewFraction, this.config.renewJitter, r);
  }

  private stateNow(): { state: IdentityState; reason?: string } {
    if (this.cachedProblem !== undefined) return { state: 'needs-enrollment', reason: this.cachedProblem };
    if (!this.cached) return { state: 'not-enrolled' };
    if (this.revoked?.serial === this.cached.info.serialHex) return { state: 'revoked', reason: this.revoked.reason };
    if (this.now() >= this.cached.info.notAfter) {
      const refusal = this.expiredRefusal?.serial === this.cached.info.serialHex ? this.expiredRefusal : undefined;
      return { state: 'needs-enrollment', reason: refusal?.reason ?? `the certificate expired at ${this.cached.info.notAfter.toISOString()}; renewing it after expiry will be tried` };
    }
    return { state: this.renewing ? 'renewing' : 'valid' };
  }

  /** An expired certificate the CA has not (yet) refused to renew: worth asking, as a laptop back from a long absence. */
  private renewableAfterExpiry(): boolean {
    if (this.cachedProblem !== undefined || !this.cached || this.revoked?.serial === this.cached.info.serialHex) return false;
    return this.now() >= this.cached.info.notAfter && this.expiredRefusal?.serial !== this.cached.info.serialHex;
  }

  /**
   * When the daemon should next call renewIfDue: the renewal time, or the retry time after a failure.
   * Undefined when there is nothing to do until someone enrolls.
   */
  nextRunAt(): Date | undefined {
    if (this.renewableAfterExpiry()) return this.retryAt ?? this.now();
    const { state } = this.stateNow();
    if (state === 'not-enrolled' || state === 'needs-enrollment' || state === 'revoked' || !this.cached) return undefined;
    const renewAt = this.renewAtFor(this.cached.info);
    if (this.retryAt && this.retryAt > renewAt) return this.retryAt;
    return renewAt;
  }

  /** The daemon's job: renews when due, records failures with backoff, never throws. */
  renewIfDue(): Promise<RenewOutcome> {
    return this.exclusive(async () => {
      await this.refreshUnlocked();
      const { state, reason } = this.stateNow();
      const afterExpiry = this.renewableAfterExpiry();
      if (!this.cached || (!afterExpiry && (state === 'needs-enrollment' || state === 'not-enrolled' || state === 'revoked'))) {
        return reason === undefined ? { action: 'skipped', state } : { action: 'skipped', state, reason };
      }
      const renewAt = this.renewAtFor(this.cached.info);
      const now = this.now();
      if (now < renewAt) return { action: 'not-due', renewAt };
      if (this.retryAt && now < this.retryAt) return { action: 'not-due', renewAt: this.retryAt };
      try {
        const notAfter = await this.renewUnlocked();
        return { action: 'renewed', notAfter };
      } catch (err) {
        const error = asIdentityError(err);
        if (this.revoked && error.code === 'revoked') return { action: 'revoked', serial: this.revoked.serial, reason: this.revoked.reason };
        const after = this.stateNow();
        if (after.state === 'needs-enrollment' && !this.renewableAfterExpiry()) return { action: 'skipped', state: after.state, ...(after.reason === undefined ? {} : { reason: after.reason }) };
        return { action: 'failed', error, retryAt: this.retryAt ?? now };
      }
    });
  }

  /** `vigil renew [--force]`: renews now if due (or always with force); throws on failure. */
  renew(opts: { force?: boolean } = {}): Promise<RenewOutcome> {
    return this.exclusive(async () => {
      await this.refreshUnlocked();
      // Asking the CA again cannot help: it has already refused this certificate.
      if (this.revoked) throw new IdentityError('revoked', revokedMessage(this.revoked.reason));
      if (!opts.force && this.cached && this.stateNow().state === 'valid') {
        const renewAt = this.renewAtFor(this.cached.info);
        if (this.now() < renewAt) return { action: 'not-due', renewAt };
      }
      const notAfter = await this.renewUnlocked();
      return { action: 'renewed', notAfter };
    });
  }

  /** The stored pair, expired or not, for proving the key while enrolling again; undefined if there is none usable. */
  private async presentableIdentity(): Promise<ClientIdentity | undefined> {
    try {
      return this.clientIdentity(await this.loadFull());
    } catch {
      return undefined;
    }
  }

  private clientIdentity(l: Loaded): ClientIdentity {
    return { certChainPem: l.chainPem, keyPem: privateKeyPem(l.key) };
  }

  private async renewUnlocked(): Promise<Date> {
    const loaded = await this.loadFull();
    const expired = this.now() >= loaded.info.notAfter;
    if (expired && this.expiredRefusal?.serial === loaded.info.serialHex) throw new IdentityError('expired', this.expiredRefusal.reason);
    this.renewing = true;
    try {
      const client = this.client(loaded.pointer.caUrl, loaded.rootPem);
      // mTLS cannot present an expired certificate, so after expiry the key proves itself in a token instead.
      const res = expired ? await client.renewWithToken(await this.renewTokenFor(loaded)) : await client.renew(this.clientIdentity(loaded));
      await this.storeReissued(loaded, loaded.key, res, undefined);
      this.resetFailures();
      const info = this.cached?.info ?? loaded.info;
      this.log.info('renewed device certificate', { serial: info.serialHex, notAfter: info.notAfter.toISOString() });
      return info.notAfter;
    } catch (err) {
      // Only a certificate still within its validity makes a refusal mean revoked (see CaClient.renew).
      if (err instanceof IdentityError && err.code === 'revoked') throw await this.recordRevoked(err, loaded.info);
      if (err instanceof IdentityError && err.code === 'expired') throw this.recordExpiredRefusal(err, loaded.info);
      this.recordFailure(err, loaded.info);
      throw err;
    } finally {
      this.renewing = false;
    }
  }

  private async renewTokenFor(loaded: Loaded): Promise<string> {
    const { renewToken } = await import('./renew-token.js');
    return renewToken({ caUrl: loaded.pointer.caUrl, chainPem: loaded.chainPem, key: loaded.key, now: this.now() });
  }

  /** Renewing this expired certificate is over: the CA said no, so only a new enrollment helps. */
  private recordExpiredRefusal(err: IdentityError, info: CertInfo): IdentityError {
    const reason = `${err.message}: it expired at ${info.notAfter.toISOString()} and its provisioner does not allow renewal after expiry; ${REPAIR}`;
    this.expiredRefusal = { serial: info.serialHex, reason };
    this.retryAt = undefined;
    this.lastError = reason;
    return new IdentityError('expired', reason, { cause: err });
  }

  /** Persists the refusal (keyed by serial), stops retries, logs it once, and tells the listeners. */
  private async recordRevoked(err: IdentityError, info: CertInfo): Promise<IdentityError> {
    const reason = `${err.message.replace(/^the CA refused to renew the certificate/, `the CA refused to renew certificate ${info.serialHex}`)}: it was revoked, or its provisioner no longer allows renewal`;
    const revoked: Revoked = { version: 1, serial: info.serialHex, at: this.now().toISOString(), reason };
    await this.store.writeRevoked(revoked);
    this.revoked = revoked;
    this.retryAt = undefined;
    this.lastError = reason;
    this.log.error(`device certificate revoked: ${reason}`, { serial: info.serialHex, fix: REENROLL_REVOKED });
    this.announceRevoked();
    return new IdentityError('revoked', revokedMessage(reason), { cause: err });
  }

  private recordFailure(err: unknown, info: CertInfo): void {
    this.failures++;
    const delay = backoffDelay(this.failures, this.config.retryInitialSeconds * 1000, this.config.retryMaxSeconds * 1000, this.random());
    this.retryAt = new Date(this.now().getTime() + delay);
    this.lastError = asIdentityError(err).message;
    this.log.warn('certificate renewal failed; keeping the current certificate', {
      error: this.lastError,
      failures: this.failures,
      retryAt: this.retryAt.toISOString(),
      notAfter: info.notAfter.toISOString(),
    });
  }

  private async storeReissued(loaded: Loaded, key: DeviceKey, res: SignResponse, sealedKey: Buffer | undefined): Promise<void> {
    const { leaf, intermediates } = verifyIssued(res.crt, res.certChain, loaded.rootPem, { spki: key.spki, ...loaded.pointer.requested }, this.now());
    const pointer: Pointer = { ...loaded.pointer, keyType: key.type };
    if (sealedKey) pointer.keyStorage = this.config.keyStorage;
    await this.persist(pointer, key, leaf, intermediates, sealedKey);
  }

  /**
   * `vigil rekey`: a new key pair, certified over mTLS with the current certificate (step-ca's /1.0/rekey).
   * A CA without that endpoint needs a fresh enrollment, hence the optional token.
   */
  async rekey(opts: { token?: TokenSource } = {}): Promise<IdentityStatus> {
    const { token } = opts;
    const done = await this.exclusive(async (): Promise<{ status: IdentityStatus } | { enrollWith: TokenSource }> => {
      const loaded = await this.loadFull();
      const key = await generateDeviceKey(this.config.keyType);
      const sealed = await this.storageFor(this.config.keyStorage).seal(key.pkcs8);
      const csr = await createCsr(key, loaded.pointer.requested);
      const client = this.client(loaded.pointer.caUrl, loaded.rootPem);
      const res = await client.call('POST', '/1.0/rekey', { csr }, this.clientIdentity(loaded));
      if (res.status === 404 || res.status === 405) {
        if (!token) throw new IdentityError('ca-rejected', 'this CA cannot rekey; run `vigil rekey --token <token>` to enroll a new key');
        return { enrollWith: token };
      }
      if (res.status !== 201 && res.status !== 200) {
        throw new IdentityError('ca-rejected', `the CA refused the rekey (HTTP ${res.status}); the current key and certificate are kept`);
      }
      await this.storeReissued(loaded, key, parseSignResponse(res.body), sealed);
      this.resetFailures();
      this.log.info('rekeyed device certificate', { keyType: key.type });
      return { status: await this.statusUnlocked() };
    });
    return 'status' in done ? done.status : this.enroll({ token: done.enrollWith });
  }

  /**
   * `vigil unenroll`: revokes at the CA over mTLS, then deletes the key, its keychain entry and the
   * certificate. If revocation fails nothing is deleted unless `force`, so a device is not silently left
   * with a live certificate at the CA.
   */
  unenroll(opts: { force?: boolean } = {}): Promise<{ revoked: boolean; revokeError?: string }> {
    return this.exclusive(async () => {
      const pointer = await this.store.readPointer().catch(() => undefined);
      let revoked = false;
      let revokeError: string | undefined;
      if (this.config.revokeOnUnenroll) {
        try {
          const loaded = await this.loadFull();
          if (this.now() < loaded.info.notAfter) {
            await this.client(loaded.pointer.caUrl, loaded.rootPem).revoke(this.clientIdentity(loaded), loaded.info.serialDecimal);
            revoked = true;
          }
        } catch (err) {
          revokeError = asIdentityError(err).message;
          if (!opts.force && !(err instanceof IdentityError && err.code === 'not-enrolled')) {
            throw new IdentityError(err instanceof IdentityError ? err.code : 'ca-rejected', `${revokeError} (nothing was deleted; use --force to delete without revoking)`, { cause: err });
          }
        }
      }
      await this.store.clearIdentity();
      if (pointer?.keyStorage === 'keychain' || this.config.keyStorage === 'keychain') {
        await this.storageFor('keychain').destroy().catch((err: unknown) => {
          if (pointer?.keyStorage === 'keychain') throw err;
        });
      }
      this.cached = undefined;
      this.cachedProblem = undefined;
      this.resetFailures();
      this.log.info('unenrolled', { revoked });
      return revokeError === undefined ? { revoked } : { revoked, revokeError };
    });
  }

  /**
   * TLS material for other clients of the pinned PKI (the control plane): trust only the pinned root, and
   * present the device certificate. The key PEM is for the TLS stack's memory only; never write it out.
   */
  clientTls(): Promise<{ ca: string; cert: string; key: string }> {
    return this.exclusive(async () => {
      const loaded = await this.loadFull();
      return { ca: loaded.rootPem, cert: loaded.chainPem, key: privateKeyPem(loaded.key) };
    });
  }

  status(): Promise<IdentityStatus> {
    return this.exclusive(async () => {
      await this.refreshUnlocked();
      return this.statusUnlocked();
    });
  }

  private async statusUnlocked(): Promise<IdentityStatus> {
    const { state, reason } = this.stateNow();
    const trust = await this.store.readTrust().catch(() => undefined);
    const pointer = this.cached?.pointer;
    const keyStorage = pointer?.keyStorage ?? this.config.keyStorage;
    const out: IdentityStatus = { state, keyStorage, consecutiveFailures: this.failures };
    if (reason !== undefined) out.reason = reason;
    if (state === 'revoked') out.fix = REENROLL_REVOKED;
    else if (state === 'needs-enrollment' || state === 'not-enrolled') {
      // A damaged file drops the cached pointer; it (or trust.json) may still say which CA to name.
      const named = pointer ?? (await this.store.readPointer().catch(() => undefined)) ?? trust;
      out.fix = enrollCommand(named?.caUrl, named?.fingerprint);
    }
    if (keyStorage === 'file' && this.serviceFile) out.keyStorageNote = SERVICE_KEY_FILE_NOTE;
    else if (keyStorage === 'file') out.keyStorageWarning = FILE_STORAGE_WARNING;
    const caUrl = pointer?.caUrl ?? trust?.caUrl;
    const fp = pointer?.fingerprint ?? trust?.fingerprint;
    if (caUrl !== undefined) out.caUrl = caUrl;
    if (fp !== undefined) out.rootFingerprint = fp;
    const id = pointer ? { id: pointer.deviceId, source: pointer.deviceIdSource } : await this.resolveDeviceId().catch(() => undefined);
    if (id) {
      out.deviceId = id.id;
      out.deviceIdSource = id.source;
    }
    if (this.lastError !== undefined) out.lastError = this.lastError;
    if (this.retryAt) out.nextAttemptAt = this.retryAt.toISOString();
    if (this.cached && pointer) {
      const paths = this.store.stablePaths(pointer);
      if (paths) out.paths = paths;
      const { info } = this.cached;
      const renewAt = this.renewAtFor(info);
      Object.assign(out, {
        keyType: pointer.keyType,
        subject: info.subject,
        dnsNames: info.sans.dnsNames,
        uris: info.sans.uris,
        serial: info.serialHex,
        notBefore: info.notBefore.toISOString(),
        notAfter: info.notAfter.toISOString(),
        renewAt: renewAt.toISOString(),
        timeToRenewalMs: Math.max(0, renewAt.getTime() - this.now().getTime()),
      });
    }
    return out;
  }
}
