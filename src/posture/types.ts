export const PLATFORMS = ['linux', 'darwin', 'win32'] as const;
export type Platform = (typeof PLATFORMS)[number];

export type Severity = 'critical' | 'recommended';
export type CheckStatus = 'pass' | 'fail' | 'unknown' | 'error';
export type Category = 'os' | 'updates' | 'encryption' | 'integrity' | 'malware' | 'network' | 'access' | 'identity';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type Evidence = Record<string, JsonValue>;

/** What a collector saw. `error` is never returned by a collector: the engine assigns it when one throws or hangs. */
export interface Observation {
  status: 'pass' | 'fail' | 'unknown';
  /** Observed values, so a reviewer can see why without re-running the probe. */
  evidence: Evidence;
  /** One short human sentence; for `unknown`, why we could not tell (e.g. "requires-admin: ..."). */
  reason?: string;
}

export interface CheckDefinition {
  id: string;
  title: string;
  category: Category;
  /** Severity when a policy does not say otherwise. */
  severity: Severity;
  platforms: readonly Platform[];
  /** One sentence an employee can read: why this matters. */
  why: string;
  /** For the few checks whose probe is slow by nature (a package-manager simulation); else scan.timeoutMs. */
  timeoutMs?: number;
}

export interface CheckResult {
  id: string;
  title: string;
  status: CheckStatus;
  evidence: Evidence;
  reason?: string;
  /** ISO-8601 time the collector started. */
  checkedAt: string;
  durationMs: number;
}
