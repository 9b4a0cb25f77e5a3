import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CommandNotFoundError, type ExecResult } from '../../../src/posture/exec.js';
import type { CollectContext } from '../../../src/posture/collector.js';
import { FactStore } from '../../../src/posture/facts.js';
import { thresholdsSchema } from '../../../src/policy/schema.js';

export function fixture(path: string): string {
  return readFileSync(fileURLToPath(new URL(`../../fixtures/linux/${path}`, import.meta.url)), 'utf8');
}

export function fixtureBytes(path: string): Uint8Array {
  return readFileSync(fileURLToPath(new URL(`../../fixtures/linux/${path}`, import.meta.url)));
}

export interface FakeSetup {
  /** Keyed by "command arg1 arg2"; a missing key means the program is not installed. */
  commands?: Record<string, ExecResult>;
  files?: Record<string, string>;
  dirs?: Record<string, string[]>;
  env?: NodeJS.ProcessEnv;
}

/** A collect context that answers only from recorded outputs, and lists what was run. */
export function fakeContext(setup: FakeSetup): CollectContext & { ran: string[] } {
  const ran: string[] = [];
  const notFound = (p: string) => Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' });
  return {
    ran,
    facts: new FactStore(60_000),
    thresholds: thresholdsSchema.parse({}),
    signal: new AbortController().signal,
    run: (cmd, args) => {
      const key = [cmd, ...args].join(' ');
      ran.push(key);
      const res = setup.commands?.[key];
      return res ? Promise.resolve(res) : Promise.reject(new CommandNotFoundError(cmd));
    },
    readFile: (p) => {
      const text = setup.files?.[p];
      return text === undefined ? Promise.reject(notFound(p)) : Promise.resolve(text);
    },
    readdir: (p) => {
      const list = setup.dirs?.[p];
      return list === undefined ? Promise.reject(notFound(p)) : Promise.resolve(list);
    },
    env: setup.env ?? {},
    now: () => new Date('2025-01-01T00:00:00Z'),
  };
}

export const ok = (stdout: string): ExecResult => ({ code: 0, stdout, stderr: '' });
