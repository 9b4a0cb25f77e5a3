import { randomBytes } from 'node:crypto';
import { checkPolicy } from '../policy/load.js';
import { evaluate } from '../policy/evaluate.js';
import type { AccessLevel, Policy } from '../policy/schema.js';
import { CHECKS } from '../posture/catalog.js';
import { DEVICE_STATES, type DeviceState, type FleetOverview as Overview, type PolicyPreviewErrors, type PolicyPreviewResult, type SessionInfo } from '../protocol/admin.js';
import type { Logger } from '../logging/logger.js';
import { newSessionValue, sessionIdHash, verifyPassword } from './accounts.js';
import type { RateLimit } from './rate-limit.js';
import { tokensEqual } from './secrets.js';
import { ControlPlaneError, effectiveOf, platformsOf } from './service.js';
import type { FleetSnapshot, NewAuditEntry, Storage, StoredAuditEntry, StoredDevice, StoredSession } from './storage.js';
import type { EvaluatedResult } from '../policy/evaluate.js';
import type { Platform } from '../posture/types.js';

export interface ConsoleOptions {
  storage: Storage;
  /** The policy in force, which previews are compared with. */
  currentPolicy: () => Policy;
  logger: Logger;
  idleTimeoutMinutes: number;
  absoluteLifetimeHours: number;
  maxReportAgeSeconds: number;
  /** Taken once per failed sign-in, per name and per client address. */
  signinPerName: RateLimit;
  signinPerIp: RateLimit;
  now?: () => number;
}

export type PolicyPreview = PolicyPreviewResult | PolicyPreviewErrors;

/** Devices read per query when the whole fleet is re-evaluated, or counted (yielding between pages). */
const PAGE = 200;
const COUNT_PAGE = 500;
const CHECK_TITLES = new Map<string, string>(CHECKS.map((c) => [c.id, c.title]));
const HOUR = 3_600_000;
/** Hourly fleet counts are kept this long. */
const SNAPSHOT_RETENTION_MS = 90 * 24 * HOUR;
/** A session's last use is written at most this often, not on every request. */
const TOUCH_EVERY_MS = 10_000;
const TOP_FAILING = 10;
const PREVIEW_EXAMPLES = 20;

/** Work done between two yields to the event loop when reports are read. */
const SLICE_MS = 10;

/**
 * What evaluation needs of a report: its platform and each check's status, as `id=s,id=s` (s: p, f, u or e),
 * about 200 bytes a device. Titles and reasons are left out: only the level is computed from them.
 */
interface CompactResults {
  reportId: string;
  platform: Platform;
  statuses: string;
}

const STATUS_LETTER = { pass: 'p', fail: 'f', unknown: 'u', error: 'e' } as const;
const LETTER_STATUS: Record<string, EvaluatedResult['status']> = { p: 'pass', f: 'fail', u: 'unknown', e: 'error' };

function compactOf(reportId: string, r: { platform: Platform; results: EvaluatedResult[] }): CompactResults {
  return { reportId, platform: r.platform, statuses: r.results.map((x) => `${x.id}=${STATUS_LETTER[x.status]}`).join(',') };
}

function expand(c: CompactResults): { platform: Platform; results: EvaluatedResult[] } {
  const results: EvaluatedResult[] = [];
  for (const pair of c.statuses === '' ? [] : c.statuses.split(',')) {
    const eq = pair.lastIndexOf('=');
    const id = pair.slice(0, eq);
    results.push({ id, title: CHECK_TITLES.get(id) ?? id, status: LETTER_STATUS[pair.slice(eq + 1)] ?? 'unknown' });
  }
  return { platform: c.platform, results };
}

const yieldToEventLoop = (): Promise<void> =>
  new Promise((resolve) => {
    setImmediate(resolve);
  });

/**
 * The admin console's server side beside the admin API: named accounts signing in to sessions, the audit log,
 * the fleet overview and the policy preview. HTTP-independent like ControlPlaneService.
 */
export class ConsoleService {
  private readonly now: () => number;
  /** Each device's latest results as of the last complete pass over the fleet (see fleet()). */
  private resultsCache = new Map<string, CompactResults>();

  constructor(private readonly o: ConsoleOptions) {
    this.now = o.now ?? Date.now;
  }

  get idleTimeoutSeconds(): number {
    return this.o.idleTimeoutMinutes * 60;
  }

  // ---- sessions ----

  /**
   * Checks the password and opens a session; returns the cookie value (never stored: only its SHA-256 is).
   * An unknown name and a wrong password take the same time and get the same answer.
   */
  async signIn(name: string, password: string, ip: string, userAgent: string | null): Promise<{ cookie: string; session: SessionInfo }> {
    const wait = Math.max(await this.o.signinPerIp.wait(ip), await this.o.signinPerName.wait(name));
    if (wait > 0) throw new ControlPlaneError(429, 'rate-limited', `too many failed sign-ins for this name or from ${ip}; retry in ${wait} s`, wait);
    const admin = await this.o.storage.getAdmin(name);
    const ok = await verifyPassword(password, admin?.passwordHash ?? null);
    if (!ok || !admin || admin.disabled) {
      await Promise.all([this.o.signinPerIp.take(ip), this.o.signinPerName.take(name)]);
      await this.audit({ actor: 'anonymous', action: 'session.signin-failed', target: name, ip, detail: null });
      this.o.logger.warn('console sign-in failed', { component: 'control-plane', name, ip });
      throw new SignInError();
    }
    const cookie = newSessionValue();
    const csrf = randomBytes(32).toString('base64url');
    await this.o.storage.createSession({ idHash: sessionIdHash(cookie), admin: admin.name, csrf, createdAt: this.now(), ip, userAgent });
    await this.audit({ actor: `admin:${admin.name}`, action: 'session.signin', target: null, ip, detail: userAgent === null ? null : { userAgent } });
    this.o.logger.info('console sign-in', { component: 'control-plane', name: admin.name, ip });
    return { cookie, session: this.info(admin.name, csrf) };
  }

  private info(name: string, csrf: string): SessionInfo {
    return { name, csrf, idleTimeoutSeconds: this.idleTimeoutSeconds };
  }

  /** The live session behind a cookie value, its idle timer refreshed; null when unknown, expired or its account gone. */
  async authenticate(cookie: string): Promise<StoredSession | null> {
    const idHash = sessionIdHash(cookie);
    const s = await this.valid(idHash);
    if (s === null) return null;
    const now = this.now();
    if (now - s.lastSeen >= TOUCH_EVERY_MS) await this.o.storage.touchSession(idHash, now);
    return s;
  }

  /** The session if it is still valid, without refreshing it; an expired one is deleted. */
  async valid(idHash: Buffer): Promise<StoredSession | null> {
    const s = await this.o.storage.getSession(idHash);
    if (s === null) return null;
    const now = this.now();
    if (now - s.lastSeen > this.o.idleTimeoutMinutes * 60_000 || now - s.createdAt > this.o.absoluteLifetimeHours * HOUR) {
      await this.o.storage.deleteSession(idHash);
      return null;
    }
    const admin = await this.o.storage.getAdmin(s.admin);
    return admin && !admin.disabled ? s : null;
  }

  sessionInfo(s: StoredSession): SessionInfo {
    return this.info(s.admin, s.csrf);
  }

  csrfMatches(s: StoredSession, given: string | undefined): boolean {
    return given !== undefined && tokensEqual(given, s.csrf);
  }

  async signOut(s: StoredSession, ip: string): Promise<void> {
    await this.o.storage.deleteSession(s.idHash);
    await this.audit({ actor: `admin:${s.admin}`, action: 'session.signout', target: null, ip, detail: null });
  }

  // ---- audit ----

  async audit(e: Omit<NewAuditEntry, 'at'>): Promise<void> {
    await this.o.storage.appendAudit({ ...e, at: this.now() });
  }

  /** Newest first; `cursor` is the `next` of the previous page. */
  async listAudit(limit: number, cursor: number | null): Promise<{ entries: StoredAuditEntry[]; next: string | null }> {
    const entries = await this.o.storage.listAudit(limit, cursor);
    const last = entries.at(-1);
    return { entries, next: entries.length === limit && last !== undefined ? String(last.id) : null };
  }

  // ---- fleet ----

  /**
   * Every device with its latest results, a page at a time. Inflating and parsing a report is what costs, so
   * the event loop is yielded to every SLICE_MS of it, and what a report says is kept in compact form keyed by
   * its id: a second preview of the fleet (the admin editing a draft) reads only the reports that are new.
   */
  private async *fleet(): AsyncGenerator<{ device: StoredDevice; latest: { platform: Platform; results: EvaluatedResult[] } | null }> {
    const seen = new Map<string, CompactResults>();
    let after = '';
    let slice = performance.now();
    for (;;) {
      const page = await this.o.storage.latestResultsPage(after, PAGE);
      for (const { device, latest } of page) {
        let compact: CompactResults | null = null;
        if (latest !== null) {
          const cached = this.resultsCache.get(device.id);
          compact = cached?.reportId === latest.reportId ? cached : compactOf(latest.reportId, latest.read());
          seen.set(device.id, compact);
        }
        yield { device, latest: compact === null ? null : expand(compact) };
        if (performance.now() - slice > SLICE_MS) {
          await yieldToEventLoop();
          slice = performance.now();
        }
      }
      const last = page.at(-1);
      if (page.length < PAGE || last === undefined) break;
      after = last.device.id;
    }
    // Only a complete pass replaces the cache, so that removed devices leave it.
    this.resultsCache = seen;
  }

  /**
   * The fleet counted a page of COUNT_PAGE devices per query (set-based within the page), yielding between
   * pages: one query over 100,000 rows held the event loop for about half a second.
   */
  private async counts(): Promise<{
    total: number;
    byLevel: Record<AccessLevel, number>;
    byState: Record<DeviceState, number>;
    byOs: Map<string, number>;
    failing: Map<string, number>;
  }> {
    const staleBefore = this.now() - this.o.maxReportAgeSeconds * 1000;
    const out = {
      total: 0,
      byLevel: { full: 0, limited: 0, blocked: 0 },
      byState: Object.fromEntries(DEVICE_STATES.map((st) => [st, 0])) as Record<DeviceState, number>,
      byOs: new Map<string, number>(),
      failing: new Map<string, number>(),
    };
    let after = '';
    for (;;) {
      const page = await this.o.storage.fleetCountsPage(staleBefore, after, COUNT_PAGE);
      for (const g of page.groups) {
        out.total += g.count;
        out.byLevel[g.level] += g.count;
        out.byState[g.state] += g.count;
        out.byOs.set(g.os, (out.byOs.get(g.os) ?? 0) + g.count);
      }
      for (const f of page.failing) out.failing.set(f.check, (out.failing.get(f.check) ?? 0) + f.count);
      if (page.lastId === null) return out;
      after = page.lastId;
      await yieldToEventLoop();
    }
  }

  async overview(): Promise<Overview> {
    const [c, history] = await Promise.all([this.counts(), this.o.storage.listFleetSnapshots(this.now() - SNAPSHOT_RETENTION_MS)]);
    return {
      total: c.total,
      byLevel: c.byLevel,
      stale: c.byState.stale,
      needsEnrollment: c.byState.enrolled,
      revoked: c.byState.revoked,
      byOs: [...c.byOs].map(([os, count]) => ({ os, count })).sort((a, b) => b.count - a.count || a.os.localeCompare(b.os)),
      // Failed (not unknown) in the latest report of a device that is not revoked.
      topFailing: [...c.failing]
        .map(([check, count]) => ({ check, title: CHECK_TITLES.get(check) ?? check, count }))
        .sort((a, b) => b.count - a.count || a.check.localeCompare(b.check))
        .slice(0, TOP_FAILING),
      history,
    };
  }

  /** Records this hour's counts (replacing an earlier snapshot of the same hour) and drops those past 90 days. */
  async snapshot(): Promise<FleetSnapshot> {
    const now = this.now();
    const c = await this.counts();
    const snap = { at: Math.floor(now / HOUR) * HOUR, full: c.byLevel.full, limited: c.byLevel.limited, blocked: c.byLevel.blocked, stale: c.byState.stale };
    await this.o.storage.putFleetSnapshot(snap);
    await this.o.storage.pruneFleetSnapshots(now - SNAPSHOT_RETENTION_MS);
    return snap;
  }

  /** Deletes sessions past their idle timeout or absolute lifetime. */
  pruneSessions(): Promise<number> {
    const now = this.now();
    return this.o.storage.pruneSessions(now - this.o.idleTimeoutMinutes * 60_000, now - this.o.absoluteLifetimeHours * HOUR);
  }

  /**
   * What saving `draft` would do: each device's latest report evaluated against it, as the server does when the
   * policy changes. A device that is stale, revoked or has not reported stays blocked whatever the policy.
   * Thresholds are applied by the agents when they check, so a change to them shows only after they report.
   */
  async previewPolicy(draft: unknown): Promise<PolicyPreview> {
    const checked = checkPolicy(draft);
    if (!checked.ok) return { valid: false, errors: checked.issues };
    const policy = checked.policy;
    const changes = { total: 0, unchanged: 0, toFull: 0, toLimited: 0, toBlocked: 0 };
    const examples: { id: string; hostname: string; from: AccessLevel; to: AccessLevel }[] = [];
    const key = { full: 'toFull', limited: 'toLimited', blocked: 'toBlocked' } as const;
    const now = this.now();
    for await (const { device, latest } of this.fleet()) {
      changes.total += 1;
      const e = effectiveOf(device, this.o.maxReportAgeSeconds, now);
      const to = e.state === 'active' && latest !== null ? evaluate(policy, latest.results, platformsOf(device, latest.platform)).accessLevel : e.level;
      if (to === e.level) {
        changes.unchanged += 1;
        continue;
      }
      changes[key[to]] += 1;
      if (examples.length < PREVIEW_EXAMPLES) examples.push({ id: device.id, hostname: device.facts.hostname, from: e.level, to });
    }
    return { valid: true, current: this.o.currentPolicy(), changes, examples };
  }
}

/** A wrong name or password: the contract's body, the same for both. */
export class SignInError extends Error {
  constructor() {
    super('wrong name or password');
  }
}
