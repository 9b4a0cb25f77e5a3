import { describe, expect, it } from 'vitest';
import { decodeTaint, judgeIntegrity, parseLdSoPreload, parseLockdown } from '../../../src/posture/linux/not-rooted.js';
import { fixture } from './fixture.js';

describe('decodeTaint', () => {
  it('decodes this machine (untainted)', () => {
    expect(decodeTaint(Number(fixture('kernel-tainted.debian12.txt').trim()))).toEqual([]);
  });

  it('names bits', () => {
    // 4097 = proprietary + out-of-tree module (e.g. the NVIDIA driver built by DKMS).
    expect(decodeTaint(4097)).toEqual(['PROPRIETARY_MODULE', 'OOT_MODULE']);
    expect(decodeTaint(2 + 8192)).toEqual(['FORCED_MODULE', 'UNSIGNED_MODULE']);
    expect(decodeTaint(2 ** 20)).toEqual(['BIT_20']);
  });
});

describe('judgeIntegrity', () => {
  const clean = { preload: null, taint: 0, lockdown: null };

  it('passes a clean system', () => {
    expect(judgeIntegrity(clean).status).toBe('pass');
  });

  it('fails on a preload hook', () => {
    const o = judgeIntegrity({ ...clean, preload: parseLdSoPreload('# hook\n/usr/local/lib/libprocesshider.so\n') });
    expect(o).toMatchObject({ status: 'fail', evidence: { ldSoPreload: ['/usr/local/lib/libprocesshider.so'] } });
  });

  it('passes an existing but empty preload file', () => {
    expect(judgeIntegrity({ ...clean, preload: parseLdSoPreload('\n# nothing\n') }).status).toBe('pass');
  });

  it('fails on forced or unsigned modules only', () => {
    expect(judgeIntegrity({ ...clean, taint: 8192 }).status).toBe('fail');
    expect(judgeIntegrity({ ...clean, taint: 2 }).status).toBe('fail');
    expect(judgeIntegrity({ ...clean, taint: 4097 }).status).toBe('pass');
  });

  it('is unknown when taint is unreadable', () => {
    expect(judgeIntegrity({ ...clean, taint: null }).status).toBe('unknown');
  });
});

describe('parseLockdown', () => {
  it('picks the selected mode', () => {
    expect(parseLockdown('none [integrity] confidentiality\n')).toBe('integrity');
  });
});
