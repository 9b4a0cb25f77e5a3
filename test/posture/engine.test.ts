import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { jsonFactCache } from '../../src/state/fact-cache.js';
import { runScan } from '../../src/posture/engine.js';
import { FactStore } from '../../src/posture/facts.js';
import type { PlatformCheck } from '../../src/posture/collector.js';
import type { CheckDefinition } from '../../src/posture/types.js';
import { bundledPolicy } from '../../src/policy/load.js';

const def = (id: string): CheckDefinition => ({ id, title: id, category: 'os', severity: 'critical', platforms: ['linux'], why: '' });
const impl = (collect: PlatformCheck['collect']): PlatformCheck => ({ collect, remediation: { guides: [] } });
const base = { facts: new FactStore(60_000), thresholds: bundledPolicy().thresholds, concurrency: 4, timeoutMs: 200 };

describe('scan engine', () => {
  it('isolates a collector that throws or hangs: error for that check only', async () => {
    let aborted = false;
    const results = await runScan({
      ...base,
      checks: [def('ok'), def('throws'), def('hangs'), def('missing')],
      implementations: {
        ok: impl(() => Promise.resolve({ status: 'pass', evidence: { x: 1 } })),
        throws: impl(() => Promise.reject(new Error('probe exploded'))),
        hangs: impl((ctx) => {
          ctx.signal.addEventListener('abort', () => (aborted = true));
          return new Promise(() => undefined);
        }),
      },
    });
    expect(results.map((r) => [r.id, r.status, r.reason])).toEqual([
      ['ok', 'pass', undefined],
      ['throws', 'error', 'probe exploded'],
      ['hangs', 'error', 'timed out after 200 ms'],
      ['missing', 'error', 'no collector for this platform'],
    ]);
    expect(aborted).toBe(true);
    expect(results[0]?.evidence).toEqual({ x: 1 });
    expect(results[2]?.durationMs).toBeGreaterThanOrEqual(150);
  });

  it('never runs more collectors at once than the bound', async () => {
    let running = 0;
    let peak = 0;
    const slow = impl(async () => {
      peak = Math.max(peak, ++running);
      await new Promise((r) => setTimeout(r, 20));
      running--;
      return { status: 'pass', evidence: {} };
    });
    const ids = Array.from({ length: 10 }, (_, i) => `c${i}`);
    await runScan({ ...base, concurrency: 3, checks: ids.map(def), implementations: Object.fromEntries(ids.map((id) => [id, slow])) });
    expect(peak).toBe(3);
  });
});

describe('fact store', () => {
  it('keeps static facts for the TTL and scan facts for one scan', async () => {
    let now = 0;
    const facts = new FactStore(1000, () => now);
    let loads = 0;
    const load = () => Promise.resolve(++loads);
    expect(await facts.static('a', load)).toBe(1);
    expect(await facts.static('a', load)).toBe(1);
    now = 1500;
    expect(await facts.static('a', load)).toBe(2);
    expect(await facts.scan('b', load)).toBe(3);
    expect(await facts.scan('b', load)).toBe(3);
    facts.beginScan();
    expect(await facts.scan('b', load)).toBe(4);
    expect(await facts.static('a', load)).toBe(2);
  });

  it('does not cache a failed load', async () => {
    const facts = new FactStore(1000);
    await expect(facts.static('x', () => Promise.reject(new Error('no')))).rejects.toThrow('no');
    expect(await facts.static('x', () => Promise.resolve(7))).toBe(7);
  });
});

describe('persistent facts', () => {
  it('survive a new store (a restart) while their version holds, and reload when it changes', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'vigil-facts-')), 'facts-cache.json');
    let loads = 0;
    const load = () => Promise.resolve({ pending: ++loads });
    expect(await new FactStore(0, Date.now, jsonFactCache(file)).persistent('apt', 'v1', load)).toEqual({ pending: 1 });
    expect(await new FactStore(0, Date.now, jsonFactCache(file)).persistent('apt', 'v1', load)).toEqual({ pending: 1 });
    expect(await new FactStore(0, Date.now, jsonFactCache(file)).persistent('apt', 'v2', load)).toEqual({ pending: 2 });
    writeFileSync(file, '{"agentVersion": "0.1.0", "facts": {"apt": {"vers');
    expect(await new FactStore(0, Date.now, jsonFactCache(file)).persistent('apt', 'v2', load)).toEqual({ pending: 3 });
  });
});
