import { randomUUID } from 'node:crypto';
import type { Logger } from '../logging/logger.js';
import { evaluate, severityOf } from '../policy/evaluate.js';
import { policySchema, type AccessLevel, type Policy } from '../policy/schema.js';
import defaultPolicyJson from '../policy/default-policy.json' with { type: 'json' };
import type {
  AccessLevelEvent,
  CertInfo,
  DecisionDocument,
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
  type ReportAck,
} from '../protocol/wire.js';
import type { PostureReport } from '../protocol/report.js';
import type { EventHub } from './events.js';
import type { ReportSummary } from './report-decoder.js';
import { mintOtt, type ProvisionerKey } from './ott.js';
import { generateSecret, secretId, secretMatches } from './secrets.js';
import type { Storage, StoredDevice, StoredReportMeta, StoredSecret } from './storage.js';

/** An error the HTTP layer turns into `{error, message}` with this status. */
export class ControlPlaneError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
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
  rootFingerprint: string;
  reportIntervalSeconds: number;
  maxReportAgeSeconds: number;
  historyPerDevice: number;
  now?: () => number;
}

export interface Effective {
  state: DeviceState;
  level: AccessLevel;
  compliant: boolean;
}

const iso = (ms: number): string => new Date(ms).toISOString();

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

  // ---- enrollment ----

  async enroll(req: EnrollRequest): Promise<EnrollResponse> {
    const invalid = new ControlPlaneError(401, 'enrollment-secret-invalid', 'the enrollment secret is not valid');
    const id = secretId(req.enrollmentSecret);
    if (id === null) throw invalid;
    const secret = await this.o.storage.getSecret(id);
    if (!secret || !secretMatches(req.enrollmentSecret, secret.hash)) throw invalid;
    // Past this point the caller has proven it holds the secret, so telling it why it fails leaks nothing.
    const existing = await this.o.storage.getDevice(req.deviceId);
    if (existing?.revokedAt != null) {
      throw new ControlPlaneError(403, 'device-revoked', `device ${req.deviceId} was revoked; an administrator must remove it first`);
    }
    const outcome = await this.o.storage.consumeSecret(id, this.now());
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
    await this.o.storage.enrollDevice({ id: req.deviceId, facts: req.facts, secretId: id, now: this.now() });
    const subject = `${DEVICE_CN_PREFIX}${req.deviceId}`;
    const sans = [`${DEVICE_URI_PREFIX}${req.deviceId}`];
    const { token, expiresAt } = await mintOtt(this.o.provisionerKey, {
      caUrl: this.o.caUrl,
      provisioner: this.o.provisioner,
      rootFingerprint: this.o.rootFingerprint,
      subject,
      sans,
      now: new Date(this.now()),
    });
    this.o.logger.info('device enrolled', { component: 'control-plane', device: req.deviceId, secretId: id, hostname: req.facts.hostname });
    return {
      protocolVersion: PROTOCOL_VERSION,
      deviceId: req.deviceId,
      ott: token,
      caUrl: this.o.caUrl,
      rootFingerprint: this.o.rootFingerprint,
      subject,
      sans,
      expiresAt: expiresAt.toISOString(),
    };
  }

  // ---- device-facing ----

  /** The device behind a verified client certificate, if it may talk to us. */
  async authorizeDevice(deviceId: string): Promise<StoredDevice> {
    const device = await this.o.storage.getDevice(deviceId);
    if (!device) throw new ControlPlaneError(403, 'device-not-enrolled', `device ${deviceId} is not enrolled here`);
    if (device.revokedAt !== null) throw new ControlPlaneError(403, 'device-revoked', `device ${deviceId} was revoked`);
    return device;
  }

  /** `body` is the envelope as received (see NewReport.body); `env` must be the summary of those bytes. */
  async ingest(device: StoredDevice, cert: CertInfo, env: ReportSummary, body: Buffer | string): Promise<ReportAck> {
    // Recomputed from the statuses: the server's policy decides, not what the agent concluded.
    const { accessLevel } = evaluate(this.policy, env.results);
    const receivedAt = this.now();
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
      body,
    });
    let current = device;
    if (res.inserted) {
      if (env.dropped > 0) {
        this.o.logger.warn('agent dropped reports from its full outbox', { component: 'control-plane', device: device.id, dropped: env.dropped });
      }
      // What the transaction just wrote, without reading the row back.
      current = {
        ...device,
        lastSeen: Math.max(device.lastSeen ?? 0, receivedAt),
        cert,
        droppedReports: device.droppedReports + env.dropped,
        ...(res.becameLatest ? { lastSeq: env.seq, accessLevel } : {}),
        ...(env.inResponseTo !== undefined && device.recheck?.requestId === env.inResponseTo ? { recheck: null } : {}),
      };
      await this.announce(current, 'report');
    }
    return {
      protocolVersion: PROTOCOL_VERSION,
      reportId: env.reportId,
      duplicate: !res.inserted,
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
    const e = this.effective(d);
    if (e.level === d.announcedLevel && e.state === d.announcedState) return;
    await this.o.storage.setAnnouncedLevel(d.id, e.level, e.state);
    this.o.hub.publishAccess({
      device: d.id,
      previous: d.announcedLevel,
      current: e.level,
      compliant: e.compliant,
      state: e.state,
      cause: e.state === 'stale' ? 'stale' : cause,
      at: iso(this.now()),
    });
    if (e.level !== d.announcedLevel) {
      this.o.logger.info('access level changed', { component: 'control-plane', device: d.id, from: d.announcedLevel, to: e.level, state: e.state });
    }
  }

  /** Finds devices that went stale; run periodically. */
  async sweep(): Promise<void> {
    for (const d of await this.o.storage.listDevices()) await this.announce(d, 'stale');
  }

  async prune(): Promise<number> {
    return this.o.storage.pruneReports(this.o.historyPerDevice);
  }

  async decision(deviceId: string): Promise<DecisionDocument> {
    const d = await this.requireDevice(deviceId);
    const latest = await this.o.storage.getLatestReport(d.id);
    const e = this.effective(d);
    const checks: DecisionDocument['device']['checks'] = {};
    for (const r of latest?.report.results ?? []) {
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
    };
  }

  async listDevices(): Promise<DeviceSummary[]> {
    return (await this.o.storage.listDevices()).map((d) => this.summary(d));
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

  async history(id: string, limit: number): Promise<StoredReportMeta[]> {
    await this.requireDevice(id);
    return this.o.storage.listReports(id, limit);
  }

  async requestRecheck(id: string): Promise<string> {
    const d = await this.requireDevice(id);
    if (d.revokedAt !== null) throw new ControlPlaneError(409, 'conflict', `device ${id} is revoked`);
    const recheck = { requestId: randomUUID(), requestedAt: this.now() };
    await this.o.storage.setRecheck(id, recheck);
    this.o.hub.publishDirectives(id, this.directivesFor({ ...d, recheck }));
    return recheck.requestId;
  }

  async revokeDevice(id: string): Promise<void> {
    await this.requireDevice(id);
    await this.o.storage.revokeDevice(id, this.now());
    this.o.hub.disconnectDevice(id);
    await this.announce(await this.requireDevice(id), 'revoked');
    this.o.logger.warn('device revoked', { component: 'control-plane', device: id });
  }

  /**
   * Replaces the policy. A changed document must carry a new version: agents compare versions, so reusing
   * one would leave some of them on the old rules forever.
   */
  async setPolicy(input: unknown): Promise<Policy> {
    const parsed = policySchema.safeParse(input);
    if (!parsed.success) {
      throw new ControlPlaneError(400, 'bad-request', `invalid policy: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    }
    const policy = parsed.data;
    if (policy.version === this.policy.version) {
      if (JSON.stringify(policy) === JSON.stringify(this.policy)) return policy;
      throw new ControlPlaneError(409, 'conflict', `policy version ${policy.version} is already in use with different content; bump the version`);
    }
    await this.o.storage.setPolicy(policy, this.now());
    this.policy = policy;
    this.o.logger.info('policy changed', { component: 'control-plane', name: policy.name, version: policy.version });
    for (const d of await this.o.storage.listDevices()) {
      const latest = await this.o.storage.getLatestReport(d.id);
      if (latest) {
        const level = evaluate(policy, latest.report.results).accessLevel;
        await this.o.storage.setDeviceLevel(d.id, level);
        await this.announce({ ...d, accessLevel: level }, 'policy');
      }
    }
    for (const id of this.o.hub.connectedDevices()) {
      const d = await this.o.storage.getDevice(id);
      if (d) this.o.hub.publishDirectives(id, this.directivesFor(d));
    }
    return policy;
  }

  async createSecret(req: SecretCreateRequest): Promise<SecretInfo & { secret: string }> {
    const created = await createEnrollmentSecret(this.o.storage, req, this.now());
    this.o.logger.info('enrollment secret created', { component: 'control-plane', secretId: created.id, uses: req.uses });
    return created;
  }

  async listSecrets(): Promise<SecretInfo[]> {
    return (await this.o.storage.listSecrets()).map(secretInfo);
  }

  async revokeSecret(id: string): Promise<void> {
    if (!(await this.o.storage.revokeSecret(id))) throw new ControlPlaneError(404, 'not-found', `no enrollment secret ${id}`);
  }
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
