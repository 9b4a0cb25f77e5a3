import { randomUUID } from 'node:crypto';
import type { Logger } from '../logging/logger.js';
import { UsageError } from '../config/errors.js';
import { CaClient } from '../identity/ca-client.js';
import { completeResults, evaluate, severityOf } from '../policy/evaluate.js';
import { parsePolicy } from '../policy/load.js';
import { policySchema, type AccessLevel, type Policy } from '../policy/schema.js';
import type { Platform } from '../posture/types.js';
import defaultPolicyJson from '../policy/default-policy.json' with { type: 'json' };
import type {
  AccessLevelEvent,
  ApiTokenCreateRequest,
  ApiTokenInfo,
  CertInfo,
  DecisionDocument,
  DeviceOs,
  DevicePosture,
  DeviceState,
  DeviceSummary,
  SecretCreateRequest,
  SecretInfo,
} from '../protocol/admin.js';
import {
  DEVICE_CN_PREFIX,
  DEVICE_URI_PREFIX,
  PROTOCOL_VERSION,
  type Directives,
  type EnrollRequest,
  type EnrollResponse,
  type ErrorCode,
  type IdentityRevoked,
  type ReportAck,
} from '../protocol/wire.js';
import type { PostureReport } from '../protocol/report.js';
import type { EventHub } from './events.js';
import { mapInSteps, yieldToLoop } from './yield.js';
import type { ReportSummary } from './report-decoder.js';
import { mintOtt, type ProvisionerKey } from './ott.js';
import type { RateLimit } from './rate-limit.js';
import { generateApiToken, generateSecret, secretId, secretMatches } from './secrets.js';
import type {
  Announcement,
  DeviceFilter,
  Page,
  PageQuery,
  Storage,
  StoredApiToken,
  StoredDevice,
  StoredEvent,
  StoredReportMeta,
  StoredSecret,
} from './storage.js';

/** An error the HTTP layer turns into `{error, message}` with this status. */
export class ControlPlaneError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    /** Sent as Retry-After with a 429. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

export interface ServiceOptions {
  storage: Storage;
  hub: EventHub;
  logger: Logger;
  caUrl: string;
  provisioner: string;
  provisionerKey: ProvisionerKey;
  caRootPem: string;
  rootFingerprint: string;
  reportIntervalSeconds: number;
  maxReportAgeSeconds: number;
  /** Report retention (config `history`). */
  history: HistoryRetention;
  eventRetentionCount: number;
  eventRetentionDays: number;
  /** Enrollments per valid secret and per device ID (see config.ts). */
  enrollPerSecret: RateLimit;
  enrollPerDevice: RateLimit;
  deviceDnsSuffix?: string;
  /** Told to enrolling agents as `notAfter`: the lifetime they ask step-ca for. */
  deviceCertDuration?: string;
  now?: () => number;
  /** Revokes a certificate (serial in hex) at the CA; defaults to step-ca's API with a provisioner token. */
  revokeAtCa?: (serialHex: string, reason: string) => Promise<'revoked' | 'already-revoked'>;
}

export interface HistoryRetention {
  maxReports: number;
  maxAgeDays?: number | undefined;
  maxBytesPerDevice?: number | undefined;
}

/** Devices examined per sweep step, and announced per transaction: a few ms of the event loop each. */
const SWEEP_STEP = 250;
/** Reports and events deleted per pruning transaction. */
const PRUNE_BATCH = 200;
/**
 * When the policy changes, devices are read (and their new levels written and announced) 500 at a time: each
 * write is a commit, and on PostgreSQL fewer, larger ones made 100,000 devices take a fifth of the time. They
 * are evaluated 100 at a time, yielding in between: inflating and evaluating a report costs about 0.1 ms.
 */
const POLICY_READ = 500;
const POLICY_EVALUATE = 100;
/** Devices of a list page turned into summaries per event-loop turn. */
const CONVERT_STEP = 250;
/** Per-device "access level changed" lines one sweep logs; past that, one summary line says how many. */
const SWEEP_LOG_DEVICES = 20;

/** What an enrolling client proved over TLS: a certificate from our CA (valid, or only expired) naming a device. */
export interface EnrollProof {
  deviceId: string;
  serial: string;
}

/** What became of the device's certificate at the CA when the control plane revoked or removed the device. */
export type CaRevocation = 'revoked' | 'already-revoked' | 'no-certificate' | `failed: ${string}`;

/** A reconnecting event consumer either replays what it missed or is told to re-read the full state. */
export type EventReplay = { reset: false; events: StoredEvent[] } | { reset: true; reason: string; newest: number };

/** How long an enrollment holds a use of its secret: the token lasts 5 minutes, the rest is for slow devices. */
const RESERVATION_SECONDS = 3600;

/** More than this many missed events is cheaper to recover by re-reading the device list. */
const MAX_REPLAY = 10_000;

export interface Effective {
  state: DeviceState;
  level: AccessLevel;
  compliant: boolean;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** The check whose pass means the device is managed by the organisation (MDM). */
const MDM_CHECK = 'mdm-enrolled';

/** The OS a device runs: from its latest report, else from what it enrolled with. */
export function osOf(d: StoredDevice): DeviceOs {
  return d.posture?.os ?? { platform: d.facts.platform, id: d.facts.os.id, name: d.facts.os.name, version: d.facts.os.version };
}

/**
 * What gateways are told of besides the level: the certificate (they accept the current one only), the OS and
 * the managed flag. A change to any of them is announced like a change of level.
 */
export function gatewayAttrs(d: StoredDevice): string {
  return JSON.stringify([d.cert?.fingerprint_sha256 ?? null, d.cert?.serial ?? null, osOf(d), d.posture?.managed ?? false]);
}

export function effectiveOf(d: StoredDevice, maxReportAgeSeconds: number, now: number): Effective {
  let state: DeviceState;
  if (d.revokedAt !== null) state = 'revoked';
  else if (d.lastSeen === null || d.accessLevel === null) state = 'enrolled';
  else if (now - d.lastSeen > maxReportAgeSeconds * 1000) state = 'stale';
  else state = 'active';
  // Unknown never counts as a pass: no fresh posture means no access.
  const level: AccessLevel = state === 'active' ? (d.accessLevel ?? 'blocked') : 'blocked';
  return { state, level, compliant: state === 'active' && level === 'full' };
}

/** What the server evaluates a device's results against: its enrolled platform, and the one the report names. */
export function platformsOf(device: StoredDevice, reported: Platform): Platform[] {
  return device.facts.platform === reported ? [reported] : [device.facts.platform, reported];
}

/** The control plane's behaviour, independent of HTTP so tests and other front ends can drive it. */
export class ControlPlaneService {
  private policy: Policy;
  private readonly now: () => number;

  private constructor(
    private readonly o: ServiceOptions,
    policy: Policy,
  ) {
    this.policy = policy;
    this.now = o.now ?? Date.now;
  }

  /** Starts from the stored policy, or the bundled default on a fresh database. */
  static async create(o: ServiceOptions): Promise<ControlPlaneService> {
    let policy = await o.storage.getPolicy();
    if (!policy) {
      policy = policySchema.parse(defaultPolicyJson);
      await o.storage.setPolicy(policy, (o.now ?? Date.now)());
    }
    return new ControlPlaneService(o, policy);
  }

  currentPolicy(): Policy {
    return this.policy;
  }

  // ---- another instance changed something (see ClusterPeer) ----

  async directivesOf(deviceId: string): Promise<Directives | null> {
    const d = await this.o.storage.getDevice(deviceId);
    return d && d.revokedAt === null ? this.directivesFor(d) : null;
  }

  /** Another instance stored a new policy: serve it from now on. Versions are unique per content (setPolicy). */
  async reloadPolicy(): Promise<boolean> {
    const stored = await this.o.storage.getPolicy();
    if (!stored || stored.version === this.policy.version) return false;
    this.policy = stored;
    this.o.logger.info('policy changed by another instance', { component: 'control-plane', name: stored.name, version: stored.version });
    return true;
  }

  // ---- enrollment ----

  /**
   * `proof` is the client certificate the caller presented, if it chains to our root. Taking over an ID that
   * already belongs to a device that has reported needs that device's certificate or an admin's permission:
   * an enrollment secret is shared across a fleet and must not let one laptop become another.
   */
  async enroll(req: EnrollRequest, proof: EnrollProof | null = null): Promise<EnrollResponse> {
    const invalid = new ControlPlaneError(401, 'enrollment-secret-invalid', 'the enrollment secret is not valid');
    const id = secretId(req.enrollmentSecret);
    if (id === null) throw invalid;
    const secret = await this.o.storage.getSecret(id);
    if (!secret || !secretMatches(req.enrollmentSecret, secret.hash)) throw invalid;
    // Past this point the caller has proven it holds the secret, so telling it why it fails leaks nothing.
    for (const [limiter, key, what] of [
      [this.o.enrollPerSecret, id, 'with this enrollment secret'],
      [this.o.enrollPerDevice, req.deviceId, `for device ${req.deviceId}`],
    ] as const) {
      const wait = await limiter.take(key);
      if (wait > 0) throw new ControlPlaneError(429, 'rate-limited', `too many enrollments ${what}; retry in ${wait} s`, wait);
    }
    const existing = await this.o.storage.getDevice(req.deviceId);
    if (existing?.revokedAt != null) {
      throw new ControlPlaneError(
        403,
        'device-revoked',
        `device ${req.deviceId} was revoked; an administrator must re-admit it first (vigil-control-plane device readmit ${req.deviceId})`,
      );
    }
    const dnsNames = this.deviceDnsNames(req);
    const replaced = existing?.cert ?? null;
    if (existing && replaced !== null && !existing.reenrollAllowed) {
      const proven = proof !== null && proof.deviceId === req.deviceId && proof.serial !== existing.revokedSerial;
      if (!proven) {
        this.o.logger.warn('enrollment refused: the device ID belongs to an enrolled device', {
          component: 'control-plane',
          device: req.deviceId,
          secretId: id,
          hostname: req.facts.hostname,
          enrolledHostname: existing.facts.hostname,
        });
        throw new ControlPlaneError(
          409,
          'conflict',
          `device ${req.deviceId} is already enrolled; enroll with its current certificate, or an administrator must allow it (vigil-control-plane device allow-reenroll ${req.deviceId})`,
        );
      }
    }
    // Held, not spent: the use is spent when the device first shows the certificate (confirmEnrollment), so an
    // enrollment that fails at the CA costs nothing and leaves no device behind.
    const outcome = await this.o.storage.reserveEnrollment({
      deviceId: req.deviceId,
      secretId: id,
      facts: req.facts,
      now: this.now(),
      expiresAt: this.now() + RESERVATION_SECONDS * 1000,
      refuseSerial: replaced?.serial ?? null,
    });
    switch (outcome) {
      case 'ok':
        break;
      case 'unknown':
        throw invalid;
      case 'expired':
        throw new ControlPlaneError(401, 'enrollment-secret-expired', 'the enrollment secret has expired; ask an administrator for a new one');
      case 'used-up':
        throw new ControlPlaneError(401, 'enrollment-secret-used-up', 'the enrollment secret has no uses left; ask an administrator for a new one');
      case 'revoked':
        throw new ControlPlaneError(401, 'enrollment-secret-revoked', 'the enrollment secret was revoked');
    }
    const subject = `${DEVICE_CN_PREFIX}${req.deviceId}`;
    const sans = [...dnsNames, `${DEVICE_URI_PREFIX}${req.deviceId}`];
    const { token, expiresAt } = await mintOtt(this.o.provisionerKey, {
      caUrl: this.o.caUrl,
      provisioner: this.o.provisioner,
      rootFingerprint: this.o.rootFingerprint,
      subject,
      sans,
      now: new Date(this.now()),
    });
    this.o.logger.info('enrollment token issued; the device is enrolled once it presents its certificate', {
      component: 'control-plane',
      device: req.deviceId,
      secretId: id,
      hostname: req.facts.hostname,
    });
    return {
      protocolVersion: PROTOCOL_VERSION,
      deviceId: req.deviceId,
      ott: token,
      caUrl: this.o.caUrl,
      rootFingerprint: this.o.rootFingerprint,
      subject,
      sans,
      expiresAt: expiresAt.toISOString(),
      ...(this.o.deviceCertDuration === undefined ? {} : { notAfter: this.o.deviceCertDuration }),
    };
  }

  /**
   * The DNS SANs a device may have: names under its own ID (`<id>.<domain>`), and under the configured suffix
   * when there is one. Checked before anything is spent, so that a mismatch costs no use of the secret.
   */
  private deviceDnsNames(req: EnrollRequest): string[] {
    const names = [...new Set((req.dnsNames ?? []).map((n) => n.toLowerCase()))];
    const label = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
    for (const name of names) {
      const rest = name.startsWith(`${req.deviceId}.`) ? name.slice(req.deviceId.length + 1) : null;
      const suffix = this.o.deviceDnsSuffix;
      if (rest === null || rest.split('.').length < 2 || !rest.split('.').every((l) => label.test(l))) {
        throw new ControlPlaneError(400, 'bad-request', `dnsNames: "${name}" is not a name under this device (expected ${req.deviceId}.<domain>)`);
      }
      if (suffix !== undefined && rest !== suffix) {
        throw new ControlPlaneError(
          400,
          'bad-request',
          `dnsNames: "${name}" is not under ${suffix}, the domain this control plane issues device names in; set identity.domain to match`,
        );
      }
    }
    return names;
  }

  // ---- device-facing ----

  /**
   * The device behind a verified client certificate, if it may talk to us. A certificate the server has not
   * seen for this device may complete an enrollment (see confirmEnrollment); renewals are the common case
   * and cost one lookup each.
   */
  async authorizeDevice(deviceId: string, cert: CertInfo, certValidFrom: number): Promise<StoredDevice> {
    let device = await this.o.storage.getDevice(deviceId);
    if (device?.cert?.serial !== cert.serial && device?.revokedAt == null) {
      const confirmed = await this.o.storage.confirmEnrollment(deviceId, cert, certValidFrom, this.now());
      if (confirmed) {
        const replaced = device?.cert ?? null;
        this.o.logger.info('device enrolled', { component: 'control-plane', device: deviceId, serial: cert.serial, hostname: confirmed.facts.hostname });
        if (replaced !== null) {
          // The certificate it replaced must not speak for the device any more, here (refuseSerial) or at the CA.
          void this.revokeCertificate(replaced.serial, `vigil: device ${deviceId} enrolled again`).then((r) => {
            this.o.logger.info('replaced certificate revoked at the CA', { component: 'control-plane', device: deviceId, serial: replaced.serial, outcome: r });
          });
        }
        await this.announce(confirmed, 'report');
        device = confirmed;
      }
    }
    if (!device) throw new ControlPlaneError(403, 'device-not-enrolled', `device ${deviceId} is not enrolled here`);
    if (device.revokedAt !== null) throw new ControlPlaneError(403, 'device-revoked', `device ${deviceId} was revoked`);
    if (device.revokedSerial !== null && device.revokedSerial === cert.serial) {
      throw new ControlPlaneError(403, 'device-revoked', `this certificate of device ${deviceId} was revoked or replaced; enroll again`);
    }
    return device;
  }

  /** `body` is the envelope as received (see NewReport.body); `env` must be the summary of those bytes. */
  async ingest(device: StoredDevice, cert: CertInfo, env: ReportSummary, body: Buffer | string): Promise<ReportAck> {
    // Recomputed from the statuses: the server's policy decides, not what the agent concluded, and a check the
    // report leaves out is unknown.
    if (env.platform !== device.facts.platform) {
      this.o.logger.warn('report names another platform than the device enrolled with', {
        component: 'control-plane',
        device: device.id,
        enrolled: device.facts.platform,
        reported: env.platform,
      });
    }
    const { accessLevel } = evaluate(this.policy, env.results, platformsOf(device, env.platform));
    const receivedAt = this.now();
    const posture: DevicePosture = {
      os: { platform: env.platform, ...env.os },
      managed: env.results.some((r) => r.id === MDM_CHECK && r.status === 'pass'),
    };
    const res = await this.o.storage.ingestReport({
      reportId: env.reportId,
      deviceId: device.id,
      seq: env.seq,
      receivedAt,
      accessLevel,
      dropped: env.dropped,
      cert,
      answersRecheck: env.inResponseTo ?? null,
      generatedAt: env.generatedAt,
      posture,
      failingChecks: env.results.filter((r) => r.status === 'fail').map((r) => r.id),
      body,
    });
    let current = device;
    if (res.inserted) {
      if (env.dropped > 0) {
        this.o.logger.warn('agent dropped reports from its full outbox', { component: 'control-plane', device: device.id, dropped: env.dropped });
      }
      const anomalies = device.seqAnomalies + 1;
      // Not trusted either way: the posture follows this report because it is the newest received. Logged at
      // the 1st, 2nd, 4th, 8th... anomaly of a device, so that a device sending nothing but cannot flood the log.
      if (res.seqAnomaly && (anomalies & (anomalies - 1)) === 0) {
        this.o.logger.warn(res.previousSeq !== null && env.seq <= res.previousSeq ? 'report sequence went back' : 'report sequence jumped', {
          component: 'control-plane',
          device: device.id,
          seq: env.seq,
          previousSeq: res.previousSeq,
          dropped: env.dropped,
          anomalies,
        });
      }
      // What the transaction just wrote, without reading the row back.
      current = {
        ...device,
        lastSeen: Math.max(device.lastSeen ?? 0, receivedAt),
        cert,
        posture,
        droppedReports: device.droppedReports + env.dropped,
        seqAnomalies: device.seqAnomalies + (res.seqAnomaly ? 1 : 0),
        ...(res.becameLatest ? { lastSeq: env.seq, accessLevel } : {}),
        ...(env.inResponseTo !== undefined && device.recheck?.requestId === env.inResponseTo ? { recheck: null } : {}),
      };
      await this.announce(current, 'report');
    }
    return {
      protocolVersion: PROTOCOL_VERSION,
      reportId: env.reportId,
      duplicate: !res.inserted,
      previousSeq: res.previousSeq,
      accessLevel,
      directives: this.directivesFor(current),
    };
  }

  directivesFor(device: StoredDevice): Directives {
    return {
      reportIntervalSeconds: this.o.reportIntervalSeconds,
      policyVersion: this.policy.version,
      recheck: device.recheck ? { requestId: device.recheck.requestId, requestedAt: iso(device.recheck.requestedAt) } : null,
    };
  }

  // ---- evaluation and events ----

  effective(d: StoredDevice): Effective {
    return effectiveOf(d, this.o.maxReportAgeSeconds, this.now());
  }

  private async announce(d: StoredDevice, cause: AccessLevelEvent['cause']): Promise<void> {
    const a = this.announcementFor(d, cause);
    if (a) await this.publish([a], true);
  }

  /** What to announce of the device now, or null when gateways already know it. */
  private announcementFor(d: StoredDevice, cause: AccessLevelEvent['cause']): Announcement | null {
    const e = this.effective(d);
    const attrs = gatewayAttrs(d);
    const levelChanged = e.level !== d.announcedLevel || e.state !== d.announcedState;
    if (!levelChanged && attrs === d.announcedAttrs) return null;
    const event: AccessLevelEvent = {
      device: d.id,
      previous: d.announcedLevel,
      current: e.level,
      compliant: e.compliant,
      state: e.state,
      // Only reports and enrollments change the certificate, OS or management (and an upgrade to schema 5, whose
      // first sweep announces them once): the sweep's "stale" would mislabel such an event.
      cause: e.state === 'stale' && levelChanged ? 'stale' : levelChanged ? cause : cause === 'stale' ? 'report' : cause,
      at: iso(this.now()),
      cert: d.cert,
      os: osOf(d),
      managed: d.posture?.managed ?? false,
    };
    return { id: d.id, level: e.level, state: e.state, attrs, event };
  }

  /** Stores the announcements in one transaction and tells subscribers; returns how many were made. */
  private async publish(items: Announcement[], log: boolean): Promise<number> {
    const ids = await this.o.storage.announceMany(items);
    let made = 0;
    items.forEach((a, i) => {
      const id = ids[i];
      // Null: the device changed under the announcement (a report came in), and announced that itself.
      if (id === null || id === undefined) return;
      made += 1;
      this.o.hub.publishAccess(id, a.event);
      if (log && a.event.current !== a.event.previous) {
        this.o.logger.info('access level changed', { component: 'control-plane', device: a.id, from: a.event.previous, to: a.level, state: a.state });
      }
    });
    return made;
  }

  /** Resolves while the storage answers and can take writes (GET /ready). */
  ping(): Promise<void> {
    return this.o.storage.ping();
  }

  /**
   * Announces the devices whose effective state changed with time passing (went stale); run periodically. The
   * storage finds them a step at a time and each step's announcements share one transaction, yielding to the
   * event loop in between, so 100,000 devices going stale at once stall nothing and cost one flush per step.
   * Returns how many devices were announced.
   */
  async sweep(): Promise<number> {
    let after: string | null = null;
    let announced = 0;
    const sample: string[] = [];
    do {
      const step: { devices: StoredDevice[]; next: string | null } = await this.o.storage.devicesNeedingAnnouncement({
        after,
        limit: SWEEP_STEP,
        staleBefore: this.now() - this.o.maxReportAgeSeconds * 1000,
      });
      const items: Announcement[] = [];
      for (const d of step.devices) {
        const a = this.announcementFor(d, 'stale');
        // The sweep read these rows a moment ago; a report or revocation since then announced itself, and must
        // not be overwritten by what the sweep concluded from the older row.
        const ifUnchanged = { lastSeen: d.lastSeen, revokedAt: d.revokedAt, announcedLevel: d.announcedLevel, announcedState: d.announcedState };
        if (a) items.push({ ...a, ifUnchanged });
      }
      if (items.length > 0) {
        // A handful of lines per sweep, not one per device when a whole fleet goes stale at once.
        const log = announced + items.length <= SWEEP_LOG_DEVICES;
        announced += await this.publish(items, log);
        if (!log && sample.length < SWEEP_LOG_DEVICES) sample.push(...items.slice(0, SWEEP_LOG_DEVICES - sample.length).map((a) => a.id));
      }
      after = step.next;
      await yieldToLoop();
    } while (after !== null);
    if (sample.length > 0) {
      this.o.logger.info('access levels changed by the stale sweep', { component: 'control-plane', devices: announced, some: sample });
    }
    return announced;
  }

  /** Applies report retention (history config) and event retention; returns how many reports went. */
  async prune(): Promise<number> {
    const h = this.o.history;
    const reports = await this.o.storage.pruneReports(
      {
        keep: h.maxReports,
        olderThan: h.maxAgeDays === undefined ? null : this.now() - h.maxAgeDays * 86_400_000,
        maxBytesPerDevice: h.maxBytesPerDevice ?? null,
      },
      PRUNE_BATCH,
    );
    await this.o.storage.pruneEvents(this.o.eventRetentionCount, this.now() - this.o.eventRetentionDays * 86_400_000, PRUNE_BATCH);
    return reports;
  }

  /** The events a consumer that last saw `lastId` missed, or a reset when they are no longer all kept. */
  async eventsAfter(lastId: number): Promise<EventReplay> {
    const { oldest, newest } = await this.o.storage.eventBounds();
    if (lastId > newest) return { reset: true, reason: `event ${lastId} is newer than any this server has sent; its history was reset`, newest };
    if (lastId === newest) return { reset: false, events: [] };
    if (oldest === null || lastId < oldest - 1) return { reset: true, reason: `events after ${lastId} are no longer kept`, newest };
    const events = await this.o.storage.eventsSince(lastId, MAX_REPLAY + 1);
    if (events.length > MAX_REPLAY) return { reset: true, reason: `more than ${MAX_REPLAY} events were missed`, newest };
    return { reset: false, events };
  }

  async decision(deviceId: string): Promise<DecisionDocument> {
    const d = await this.requireDevice(deviceId);
    const latest = await this.o.storage.getLatestReport(d.id);
    const e = this.effective(d);
    const checks: DecisionDocument['device']['checks'] = {};
    const results = latest ? completeResults(this.policy, latest.report.results, platformsOf(d, latest.report.device.platform)) : [];
    for (const r of results) {
      checks[r.id] = { status: r.status, severity: severityOf(this.policy, r.id), ...(r.reason ? { reason: r.reason } : {}) };
    }
    return {
      device: {
        id: d.id,
        compliant: e.compliant,
        access_level: e.level,
        state: e.state,
        checks,
        cert: d.cert,
        os: osOf(d),
        managed: d.posture?.managed ?? false,
        last_seen: d.lastSeen === null ? null : iso(d.lastSeen),
        policy_version: this.policy.version,
      },
    };
  }

  // ---- admin ----

  private async requireDevice(id: string): Promise<StoredDevice> {
    const d = await this.o.storage.getDevice(id);
    if (!d) throw new ControlPlaneError(404, 'not-found', `no device ${id}`);
    return d;
  }

  summary(d: StoredDevice): DeviceSummary {
    return ControlPlaneService.summarize(d, this.o.maxReportAgeSeconds, this.now());
  }

  static summarize(d: StoredDevice, maxReportAgeSeconds: number, now: number): DeviceSummary {
    const e = effectiveOf(d, maxReportAgeSeconds, now);
    return {
      id: d.id,
      state: e.state,
      accessLevel: e.level,
      compliant: e.compliant,
      hostname: d.facts.hostname,
      platform: d.facts.platform,
      enrolledAt: iso(d.enrolledAt),
      lastSeen: d.lastSeen === null ? null : iso(d.lastSeen),
      lastSeq: d.lastSeq,
      droppedReports: d.droppedReports,
      seqAnomalies: d.seqAnomalies,
      revokedReason: d.revokedAt === null ? null : d.revokedReason,
      cert: d.cert,
      os: osOf(d),
      managed: d.posture?.managed ?? false,
    };
  }

  /** A page of the device list in id order; `after` is the previous page's `next`. */
  async listDevices(q: { after: string | null; limit: number; filter: DeviceFilter }): Promise<{ devices: DeviceSummary[]; next: string | null }> {
    const page = await this.o.storage.listDevicesPage({ ...q, staleBefore: this.now() - this.o.maxReportAgeSeconds * 1000 });
    return { devices: await mapInSteps(page.devices, CONVERT_STEP, (d) => this.summary(d)), next: page.next };
  }

  async deviceDetail(id: string): Promise<{
    device: DeviceSummary;
    decision: DecisionDocument;
    latestReport: PostureReport | null;
    directives: Directives;
  }> {
    const d = await this.requireDevice(id);
    const latest = await this.o.storage.getLatestReport(id);
    return { device: this.summary(d), decision: await this.decision(id), latestReport: latest?.report ?? null, directives: this.directivesFor(d) };
  }

  async history(id: string, page: PageQuery): Promise<Page<StoredReportMeta>> {
    await this.requireDevice(id);
    return this.o.storage.listReports(id, page);
  }

  async requestRecheck(id: string): Promise<string> {
    const d = await this.requireDevice(id);
    if (d.revokedAt !== null) throw new ControlPlaneError(409, 'conflict', `device ${id} is revoked`);
    const recheck = { requestId: randomUUID(), requestedAt: this.now() };
    await this.o.storage.setRecheck(id, recheck);
    this.o.hub.publishDirectives(id, this.directivesFor({ ...d, recheck }));
    return recheck.requestId;
  }

  /**
   * Revokes the device here and its current certificate at the CA, so that it can neither talk to us nor
   * renew. The CA being unreachable does not undo the first part; the outcome says what happened there.
   */
  async revokeDevice(id: string, reason = 'revoked by an administrator'): Promise<{ ca: CaRevocation }> {
    const d = await this.requireDevice(id);
    const ca = d.cert ? await this.revokeCertificate(d.cert.serial, `vigil: ${reason}`) : 'no-certificate';
    if (d.revokedAt === null) await this.markRevoked(id, reason);
    this.o.logger.warn('device revoked', { component: 'control-plane', device: id, reason, ca });
    return { ca };
  }

  /**
   * The device says its certificate no longer speaks for it: the CA refused to renew it (step-ca does that for
   * a revoked one), or `vigil unenroll` gave it up. Believing a device that denies itself access is safe; the
   * reverse is never taken from a device. A device that unenrolled may enroll again; a refused one waits for
   * an administrator.
   */
  async deviceGivesUpCertificate(device: StoredDevice, serial: string, reason: IdentityRevoked['reason']): Promise<void> {
    if (reason === 'unenrolled') {
      this.o.logger.info('device unenrolled itself; its certificate is refused and it may enroll again', { component: 'control-plane', device: device.id, serial });
      await this.markRevoked(device.id, 'unenrolled');
      await this.o.storage.readmitDevice(device.id);
      await this.announce(await this.requireDevice(device.id), 'revoked');
      return;
    }
    this.o.logger.warn('device reports that the CA refused to renew its certificate; marking it revoked', {
      component: 'control-plane',
      device: device.id,
      serial,
    });
    await this.markRevoked(device.id, 'the CA refused to renew its certificate');
  }

  private async markRevoked(id: string, reason: string): Promise<void> {
    await this.o.storage.revokeDevice(id, this.now(), reason);
    this.o.hub.disconnectDevice(id);
    await this.announce(await this.requireDevice(id), 'revoked');
  }

  /** Lifts a revocation: the device must enroll again (with a secret) before it reports. */
  async readmitDevice(id: string): Promise<void> {
    const d = await this.requireDevice(id);
    if (d.revokedAt === null) throw new ControlPlaneError(409, 'conflict', `device ${id} is not revoked`);
    await this.o.storage.readmitDevice(id);
    await this.announce(await this.requireDevice(id), 'revoked');
    this.o.logger.warn('device re-admitted; it may enroll again', { component: 'control-plane', device: id });
  }

  /** Lets the next enrollment of this ID replace the device (a reinstalled laptop that lost its key). */
  async allowReenroll(id: string): Promise<void> {
    const d = await this.requireDevice(id);
    if (d.revokedAt !== null) throw new ControlPlaneError(409, 'conflict', `device ${id} is revoked; re-admit it instead`);
    await this.o.storage.allowReenroll(id);
    this.o.logger.warn('re-enrollment allowed without proof of the device key', { component: 'control-plane', device: id });
  }

  /** Deletes the device and its history, revoking its certificate at the CA first. */
  async removeDevice(id: string): Promise<{ ca: CaRevocation }> {
    const d = await this.requireDevice(id);
    const ca = d.cert && d.revokedAt === null ? await this.revokeCertificate(d.cert.serial, `vigil: device ${id} removed`) : 'no-certificate';
    this.o.hub.disconnectDevice(id);
    if (d.revokedAt === null) await this.markRevoked(id, 'removed');
    await this.o.storage.deleteDevice(id);
    this.o.logger.warn('device removed', { component: 'control-plane', device: id, ca });
    return { ca };
  }

  private async revokeCertificate(serialHex: string, reason: string): Promise<CaRevocation> {
    try {
      return await (this.o.revokeAtCa ?? ((s, r) => this.revokeWithStepCa(s, r)))(serialHex, reason);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      this.o.logger.error('could not revoke the certificate at the CA', { component: 'control-plane', serial: serialHex, error: why });
      return `failed: ${why}`;
    }
  }

  private async revokeWithStepCa(serialHex: string, reason: string): Promise<'revoked' | 'already-revoked'> {
    // step-ca names certificates by their decimal serial; Node gives hex.
    const serial = BigInt(`0x${serialHex}`).toString(10);
    const { token } = await mintOtt(this.o.provisionerKey, {
      caUrl: this.o.caUrl,
      provisioner: this.o.provisioner,
      rootFingerprint: this.o.rootFingerprint,
      subject: serial,
      sans: [],
      endpoint: 'revoke',
      now: new Date(this.now()),
    });
    return new CaClient(this.o.caUrl, this.o.caRootPem, 15_000).revokeWithToken(serial, token, reason);
  }

  /**
   * Replaces the policy. A changed document must carry a new version: agents compare versions, so reusing
   * one would leave some of them on the old rules forever.
   */
  async setPolicy(input: unknown): Promise<Policy> {
    let policy: Policy;
    try {
      // The agents' own parser: what they would refuse, the server refuses with the same words.
      policy = parsePolicy('policy', input);
    } catch (err) {
      if (err instanceof UsageError) throw new ControlPlaneError(400, 'bad-request', err.message.split('\n').join('; '));
      throw err;
    }
    if (policy.version === this.policy.version) {
      if (JSON.stringify(policy) === JSON.stringify(this.policy)) return policy;
      throw new ControlPlaneError(409, 'conflict', `policy version ${policy.version} is already in use with different content; bump the version`);
    }
    await this.o.storage.setPolicy(policy, this.now());
    this.policy = policy;
    this.o.logger.info('policy changed', { component: 'control-plane', name: policy.name, version: policy.version });
    await this.reevaluate(policy);
    for (const id of this.o.hub.connectedDevices()) {
      const d = await this.o.storage.getDevice(id);
      if (d) this.o.hub.publishDirectives(id, this.directivesFor(d));
    }
    return policy;
  }

  /**
   * Evaluates every device's latest report under the new policy, a page at a time: the page's changed levels
   * in one transaction, its announcements in another, yielding often, so that 100,000 devices cost a few
   * hundred commits and no long stall (bench/control-plane-scale.ts measures it). A report that arrives
   * meanwhile is evaluated under the new policy by itself; the stored level of a device whose latest report
   * changed under the page is left alone (setDeviceLevels), and so is its announcement (ifUnchanged).
   */
  private async reevaluate(policy: Policy): Promise<void> {
    let after = '';
    let evaluated = 0;
    let announced = 0;
    for (;;) {
      const page = await this.o.storage.latestResultsPage(after, POLICY_READ);
      const changed: { d: StoredDevice; level: AccessLevel; reportId: string }[] = [];
      for (const [i, { device: d, latest }] of page.entries()) {
        if (i > 0 && i % POLICY_EVALUATE === 0) await yieldToLoop();
        if (!latest) continue;
        evaluated += 1;
        const r = latest.read();
        const level = evaluate(policy, r.results, platformsOf(d, r.platform)).accessLevel;
        if (level !== d.accessLevel) changed.push({ d, level, reportId: latest.reportId });
      }
      if (changed.length > 0) {
        const applied = await this.o.storage.setDeviceLevels(changed.map((c) => ({ id: c.d.id, level: c.level, reportId: c.reportId })));
        const items: Announcement[] = [];
        changed.forEach(({ d, level }, i) => {
          if (applied[i] !== true) return;
          const a = this.announcementFor({ ...d, accessLevel: level }, 'policy');
          if (a) items.push({ ...a, ifUnchanged: { lastSeen: d.lastSeen, revokedAt: d.revokedAt, announcedLevel: d.announcedLevel, announcedState: d.announcedState } });
        });
        // One line per device for a handful; a fleet-wide change is the summary below.
        if (items.length > 0) announced += await this.publish(items, announced + items.length <= SWEEP_LOG_DEVICES);
      }
      const last = page.at(-1);
      if (!last || page.length < POLICY_READ) break;
      after = last.device.id;
      await yieldToLoop();
    }
    this.o.logger.info('fleet re-evaluated under the new policy', { component: 'control-plane', version: policy.version, evaluated, changed: announced });
  }

  async createSecret(req: SecretCreateRequest): Promise<SecretInfo & { secret: string }> {
    const created = await createEnrollmentSecret(this.o.storage, req, this.now());
    this.o.logger.info('enrollment secret created', { component: 'control-plane', secretId: created.id, uses: req.uses });
    return created;
  }

  async listSecrets(page: PageQuery): Promise<Page<SecretInfo>> {
    const p = await this.o.storage.listSecrets(page);
    return { items: p.items.map(secretInfo), next: p.next };
  }

  async revokeSecret(id: string): Promise<void> {
    if (!(await this.o.storage.revokeSecret(id))) throw new ControlPlaneError(404, 'not-found', `no enrollment secret ${id}`);
  }

  async createApiToken(req: ApiTokenCreateRequest): Promise<ApiTokenInfo & { token: string }> {
    const created = await createApiToken(this.o.storage, req, this.now());
    this.o.logger.info('API token created', { component: 'control-plane', tokenId: created.id, scope: created.scope, name: created.name });
    return created;
  }

  /** The stored token with this id, for authentication (the HTTP layer compares the hash). */
  apiToken(id: string): Promise<StoredApiToken | null> {
    return this.o.storage.getApiToken(id);
  }

  async listApiTokens(page: PageQuery): Promise<Page<ApiTokenInfo>> {
    const p = await this.o.storage.listApiTokens(page);
    return { items: p.items.map(apiTokenInfo), next: p.next };
  }

  async revokeApiToken(id: string): Promise<void> {
    if (!(await this.o.storage.revokeApiToken(id, this.now()))) {
      throw new ControlPlaneError(404, 'not-found', `no API token ${id} that is not already revoked`);
    }
    this.o.logger.warn('API token revoked', { component: 'control-plane', tokenId: id });
  }
}

/** Shared by the admin API and `vigil-control-plane token create`, which works on the database directly. */
export async function createApiToken(storage: Storage, req: ApiTokenCreateRequest, now: number): Promise<ApiTokenInfo & { token: string }> {
  const g = generateApiToken();
  const rec = { id: g.id, hash: g.hash, scope: req.scope, name: req.name, createdAt: now };
  await storage.createApiToken(rec);
  return { ...apiTokenInfo({ ...rec, revokedAt: null }), token: g.secret };
}

export function apiTokenInfo(t: StoredApiToken): ApiTokenInfo {
  return { id: t.id, name: t.name, scope: t.scope, createdAt: iso(t.createdAt), revokedAt: t.revokedAt === null ? null : iso(t.revokedAt) };
}

/** Shared by the admin API and `vigil-control-plane secret create`, which works on the database directly. */
export async function createEnrollmentSecret(
  storage: Storage,
  req: SecretCreateRequest,
  now: number,
): Promise<SecretInfo & { secret: string }> {
  const g = generateSecret();
  const rec = { id: g.id, hash: g.hash, label: req.label ?? null, createdAt: now, expiresAt: now + req.expiresInSeconds * 1000, usesTotal: req.uses };
  await storage.createSecret(rec);
  return { ...secretInfo({ ...rec, usesLeft: req.uses, revoked: false }), secret: g.secret };
}

export function secretInfo(s: StoredSecret): SecretInfo {
  return {
    id: s.id,
    label: s.label,
    createdAt: iso(s.createdAt),
    expiresAt: iso(s.expiresAt),
    usesTotal: s.usesTotal,
    usesLeft: s.usesLeft,
    revoked: s.revoked,
  };
}
