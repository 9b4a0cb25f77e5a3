import { readFile, readdir } from 'node:fs/promises';
import { run } from './exec.js';
import type { CollectContext, PlatformChecks } from './collector.js';
import type { FactStore } from './facts.js';
import type { CheckDefinition, CheckResult } from './types.js';
import type { Thresholds } from '../policy/schema.js';

export interface ScanOptions {
  checks: readonly CheckDefinition[];
  implementations: PlatformChecks;
  facts: FactStore;
  thresholds: Thresholds;
  /** Collectors running at once; probes are processes, and a laptop has other work to do. */
  concurrency: number;
  timeoutMs: number;
  /** Overrides for tests; default to the real thing. */
  context?: Partial<Pick<CollectContext, 'run' | 'readFile' | 'readdir' | 'env' | 'now'>>;
}

class CheckTimeoutError extends Error {
  constructor(ms: number) {
    super(`timed out after ${ms} ms`);
  }
}

/**
 * Runs every check's collector with a concurrency bound. A collector that throws, hangs past its timeout
 * or is missing yields `error` for that check alone; the scan always completes.
 */
export async function runScan(opts: ScanOptions): Promise<CheckResult[]> {
  opts.facts.beginScan();
  const results = new Array<CheckResult>(opts.checks.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < opts.checks.length; i = next++) {
      const check = opts.checks[i];
      if (check) results[i] = await runOne(check, opts);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency, opts.checks.length)) }, worker));
  return results;
}

async function runOne(check: CheckDefinition, opts: ScanOptions): Promise<CheckResult> {
  const now = opts.context?.now ?? (() => new Date());
  const started = now();
  const t0 = performance.now();
  const base = { id: check.id, title: check.title, checkedAt: started.toISOString() };
  const collector = opts.implementations[check.id]?.collect;
  if (!collector) {
    return { ...base, status: 'error', evidence: {}, reason: 'no collector for this platform', durationMs: 0 };
  }
  const abort = new AbortController();
  const ctx: CollectContext = {
    facts: opts.facts,
    thresholds: opts.thresholds,
    signal: abort.signal,
    run: opts.context?.run ?? ((cmd, args, o) => run(cmd, args, { timeoutMs, ...o, signal: abort.signal })),
    readFile: opts.context?.readFile ?? ((p) => readFile(p, 'utf8')),
    readdir: opts.context?.readdir ?? ((p) => readdir(p)),
    env: opts.context?.env ?? process.env,
    now,
  };
  const timeoutMs = check.timeoutMs ?? opts.timeoutMs;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new CheckTimeoutError(timeoutMs));
      abort.abort();
    }, timeoutMs);
  });
  try {
    const obs = await Promise.race([collector(ctx), timeout]);
    const result: CheckResult = { ...base, status: obs.status, evidence: obs.evidence, durationMs: elapsed(t0) };
    if (obs.reason !== undefined) result.reason = obs.reason;
    return result;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return { ...base, status: 'error', evidence: {}, reason: message, durationMs: elapsed(t0) };
  } finally {
    clearTimeout(timer);
  }
}

function elapsed(t0: number): number {
  return Math.round((performance.now() - t0) * 10) / 10;
}
