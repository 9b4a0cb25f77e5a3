import type { FactStore } from './facts.js';
import type { ExecOptions, ExecResult } from './exec.js';
import type { Observation } from './types.js';
import type { Remediation } from './remediation/types.js';
import type { Thresholds } from '../policy/schema.js';

/** Everything a collector may touch, injected so unit tests can hand it recorded outputs. */
export interface CollectContext {
  facts: FactStore;
  thresholds: Thresholds;
  /** Aborted when the check's timeout fires; pass it on to child processes. */
  signal: AbortSignal;
  run(command: string, args: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  readFile(path: string): Promise<string>;
  readdir(path: string): Promise<string[]>;
  env: NodeJS.ProcessEnv;
  now(): Date;
}

export type Collector = (ctx: CollectContext) => Promise<Observation>;

/** A check's implementation on one platform: its one collector and the fix-it content shown beside it. */
export interface PlatformCheck {
  collect: Collector;
  remediation: Remediation;
}

/** Keyed by check id (see catalog.ts). */
export type PlatformChecks = Readonly<Record<string, PlatformCheck>>;
