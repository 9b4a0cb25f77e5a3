import { EventEmitter } from 'node:events';
import { CHECKS } from '../posture/catalog.js';
import { runScan } from '../posture/engine.js';
import { FactStore } from '../posture/facts.js';
import { jsonFactCache } from '../state/fact-cache.js';
import { run } from '../posture/exec.js';
import { readFile } from 'node:fs/promises';
import type { PlatformSupport } from '../posture/platforms.js';
import type { CheckResult, Platform } from '../posture/types.js';
import type { DeviceContext } from '../posture/remediation/types.js';
import { evaluate, severityOf } from '../policy/evaluate.js';
import type { AccessLevel, Policy } from '../policy/schema.js';
import { REPORT_SCHEMA_VERSION, type PostureReport } from '../protocol/report.js';
import { AGENT_VERSION } from '../version.js';

export interface ScanSettings {
  concurrency: number;
  timeoutMs: number;
  staticFactsTtlSeconds: number;
  /** Keeps costly facts (package-manager simulations) across restarts; none when unset. */
  factCacheFile?: string;
}

export interface CheckChange {
  id: string;
  title: string;
  from: CheckResult['status'] | 'none';
  to: CheckResult['status'];
}

export interface ScanOutcome {
  report: PostureReport;
  changes: CheckChange[];
  level?: { from: AccessLevel | 'none'; to: AccessLevel };
}

export interface AgentEvents {
  'scan-started': [only: readonly string[] | undefined];
  scanned: [outcome: ScanOutcome];
  'policy-changed': [policy: Policy];
}

/**
 * The posture loop shared by `vigil check`, the daemon and the tray: runs the policy's checks for this
 * platform, evaluates them, and says what changed since the previous scan.
 */
export class Agent extends EventEmitter<AgentEvents> {
  private readonly facts: FactStore;
  private last?: PostureReport;
  private inFlight?: Promise<ScanOutcome>;

  constructor(
    private policyDoc: Policy,
    private readonly platform: Platform,
    private readonly support: PlatformSupport,
    private readonly settings: ScanSettings,
  ) {
    super();
    this.facts = new FactStore(settings.staticFactsTtlSeconds * 1000, Date.now, settings.factCacheFile ? jsonFactCache(settings.factCacheFile) : undefined);
  }

  get policy(): Policy {
    return this.policyDoc;
  }

  get report(): PostureReport | undefined {
    return this.last;
  }

  get scanning(): boolean {
    return this.inFlight !== undefined;
  }

  setPolicy(policy: Policy): void {
    this.policyDoc = policy;
    this.emit('policy-changed', policy);
  }

  /** Forgets cached static facts, so the next scan re-reads everything. */
  invalidate(): void {
    this.facts.clear();
  }

  deviceContext(): Promise<DeviceContext> {
    return this.support.deviceContext(this.factsContext());
  }

  /**
   * A full scan, or with `only` a re-check of some checks merged into the last report. Concurrent full
   * scans share one run; a partial one waits for the full one in flight first.
   */
  async scan(only?: readonly string[]): Promise<ScanOutcome> {
    if (this.inFlight) {
      const pending = this.inFlight;
      if (!only) return pending;
      await pending.catch(() => undefined);
    }
    const p = this.doScan(only);
    this.inFlight = p;
    try {
      return await p;
    } finally {
      if (this.inFlight === p) this.inFlight = undefined;
    }
  }

  private factsContext() {
    return { facts: this.facts, readFile: (p: string) => readFile(p, 'utf8'), run, env: process.env };
  }

  private async doScan(only: readonly string[] | undefined): Promise<ScanOutcome> {
    this.emit('scan-started', only);
    const policy = this.policyDoc;
    const checks = CHECKS.filter(
      (c) => (c.platforms as readonly Platform[]).includes(this.platform) && severityOf(policy, c.id) !== 'off' && (!only || only.includes(c.id)),
    );
    const [results, device] = await Promise.all([
      runScan({
        checks,
        implementations: this.support.checks,
        facts: this.facts,
        thresholds: policy.thresholds,
        concurrency: this.settings.concurrency,
        timeoutMs: Math.max(this.settings.timeoutMs, this.support.minCheckTimeoutMs ?? 0),
      }),
      this.support.deviceFacts(this.factsContext()),
    ]);
    const previous = this.last;
    const merged = only && previous ? mergeResults(previous.results, results) : results;
    const decision = evaluate(policy, merged, [this.platform]);
    const report: PostureReport = {
      schemaVersion: REPORT_SCHEMA_VERSION,
      agentVersion: AGENT_VERSION,
      generatedAt: new Date().toISOString(),
      device,
      policy: { name: policy.name, version: policy.version },
      accessLevel: decision.accessLevel,
      reasons: decision.reasons,
      results: merged.map((r) => ({ ...r, severity: severityOf(policy, r.id) })),
    };
    const outcome = diff(previous, report);
    this.last = report;
    this.emit('scanned', outcome);
    return outcome;
  }
}

function mergeResults(previous: readonly CheckResult[], fresh: readonly CheckResult[]): CheckResult[] {
  const byId = new Map(fresh.map((r) => [r.id, r]));
  const merged = previous.map((r) => byId.get(r.id) ?? r);
  for (const r of fresh) if (!previous.some((p) => p.id === r.id)) merged.push(r);
  return merged;
}

function diff(previous: PostureReport | undefined, report: PostureReport): ScanOutcome {
  const before = new Map(previous?.results.map((r) => [r.id, r.status]));
  const changes: CheckChange[] = [];
  for (const r of report.results) {
    const from = before.get(r.id) ?? 'none';
    if (from !== r.status) changes.push({ id: r.id, title: r.title, from, to: r.status });
  }
  const outcome: ScanOutcome = { report, changes };
  if (previous?.accessLevel !== report.accessLevel) outcome.level = { from: previous?.accessLevel ?? 'none', to: report.accessLevel };
  return outcome;
}
