import { describe, expect, it } from 'vitest';
import { FactStore } from '../../src/posture/facts.js';

describe('versioned facts', () => {
  it('reload when the version changes, and keep only the newest version of a family', async () => {
    const facts = new FactStore(1000);
    let loads = 0;
    const load = () => Promise.resolve(++loads);
    expect(await facts.versioned('lsblk', 'v1', load)).toBe(1);
    facts.beginScan();
    expect(await facts.versioned('lsblk', 'v1', load)).toBe(1);
    expect(await facts.versioned('lsblk', 'v2', load)).toBe(2);
    // v1 was dropped when v2 arrived: a family holds one value however often its inputs change.
    expect(await facts.versioned('lsblk', 'v1', load)).toBe(3);
    expect(await facts.versioned('other', 'v1', load)).toBe(4);
    expect(await facts.versioned('lsblk', 'v1', load)).toBe(3);
  });

  it('hand a value `keep` refuses to its callers without remembering it', async () => {
    const facts = new FactStore(1000);
    let loads = 0;
    const load = () => Promise.resolve(++loads);
    const even = (n: number) => n % 2 === 0;
    const [a, b] = await Promise.all([facts.versioned('rules', 'v', load, even), facts.versioned('rules', 'v', load, even)]);
    expect([a, b]).toEqual([1, 1]);
    expect(await facts.versioned('rules', 'v', load, even)).toBe(2);
    expect(await facts.versioned('rules', 'v', load, even)).toBe(2);
  });

  it('do not cache a failed load', async () => {
    const facts = new FactStore(1000);
    await expect(facts.versioned('x', 'v', () => Promise.reject(new Error('no')))).rejects.toThrow('no');
    expect(await facts.versioned('x', 'v', () => Promise.resolve(7))).toBe(7);
  });
});

describe('persistent facts in memory', () => {
  it('keep only the newest version of a family', async () => {
    const facts = new FactStore(1000);
    let loads = 0;
    const load = () => Promise.resolve(++loads);
    expect(await facts.persistent('apt', 'v1', load)).toBe(1);
    expect(await facts.persistent('apt', 'v2', load)).toBe(2);
    expect(await facts.persistent('apt', 'v1', load)).toBe(3);
  });
});
