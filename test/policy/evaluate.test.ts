import { describe, expect, it } from 'vitest';
import { evaluate } from '../../src/policy/evaluate.js';
import { bundledPolicy, parsePolicy } from '../../src/policy/load.js';
import type { CheckResult, CheckStatus } from '../../src/posture/types.js';
import type { Policy } from '../../src/policy/schema.js';

const policy: Policy = parsePolicy('test', {
  schemaVersion: 1,
  name: 't',
  version: '1',
  checks: { 'disk-encryption': 'critical', firewall: 'recommended', 'ssh-server': 'info', 'guest-account': 'off' },
});

const r = (id: string, status: CheckStatus): CheckResult => ({ id, title: id, status, evidence: {}, checkedAt: new Date(0).toISOString(), durationMs: 1 });

describe('policy evaluation', () => {
  it.each<[string, CheckStatus, CheckStatus, string]>([
    ['all pass', 'pass', 'pass', 'full'],
    ['recommended fails', 'pass', 'fail', 'limited'],
    ['recommended unknown', 'pass', 'unknown', 'limited'],
    ['recommended error', 'pass', 'error', 'limited'],
    ['critical fails', 'fail', 'pass', 'blocked'],
    ['critical fails and recommended fails', 'fail', 'fail', 'blocked'],
    ['critical unknown (default: limited)', 'unknown', 'pass', 'limited'],
    ['critical error (default: limited)', 'error', 'pass', 'limited'],
  ])('%s', (_name, disk, fw, level) => {
    expect(evaluate(policy, [r('disk-encryption', disk), r('firewall', fw)], ['linux']).accessLevel).toBe(level);
  });

  it('lets the policy make unknown on a critical check block', () => {
    const strict = { ...policy, unknownOnCritical: 'blocked' as const };
    expect(evaluate(strict, [r('disk-encryption', 'unknown'), r('firewall', 'pass')], ['linux']).accessLevel).toBe('blocked');
  });

  it('ignores info, off and unlisted checks', () => {
    const d = evaluate(
      policy,
      [r('disk-encryption', 'pass'), r('firewall', 'pass'), r('ssh-server', 'fail'), r('guest-account', 'fail'), r('not-in-policy', 'fail')],
      ['linux'],
    );
    expect(d).toEqual({ accessLevel: 'full', reasons: [] });
  });

  it('gives reasons, the most severe first', () => {
    const d = evaluate(policy, [r('firewall', 'fail'), r('disk-encryption', 'fail')], ['linux']);
    expect(d.reasons.map((x) => [x.checkId, x.effect])).toEqual([
      ['disk-encryption', 'blocked'],
      ['firewall', 'limited'],
    ]);
    expect(d.reasons[0]?.message).toBe('critical check "disk-encryption" failed');
  });

  it('counts an enforced check of the platform that has no result as unknown, never as a pass', () => {
    const d = evaluate(policy, [r('firewall', 'pass')], ['linux']);
    expect(d.accessLevel).toBe('limited');
    expect(d.reasons).toEqual([
      expect.objectContaining({ checkId: 'disk-encryption', status: 'unknown', effect: 'limited', message: 'critical check "Disk encryption on" could not be verified: not in the report' }),
    ]);
    expect(evaluate({ ...policy, unknownOnCritical: 'blocked' }, [], ['linux']).accessLevel).toBe('blocked');
    // A check the platform does not have is not expected of it.
    const darwinOnly = parsePolicy('t', { schemaVersion: 1, name: 't', version: '1', checks: { gatekeeper: 'critical' } });
    expect(evaluate(darwinOnly, [], ['linux']).accessLevel).toBe('full');
    expect(evaluate(darwinOnly, [], ['darwin']).accessLevel).toBe('limited');
  });

  it('bundles a default policy with the required severities', () => {
    const p = bundledPolicy();
    expect(p.checks).toMatchObject({
      'os-patched': 'critical',
      'disk-encryption': 'critical',
      'not-rooted': 'critical',
      'os-version': 'critical',
      'edr-running': 'recommended',
      firewall: 'recommended',
      'screen-lock': 'recommended',
    });
    expect(p.thresholds).toMatchObject({ maxPatchAgeDays: 30, maxScreenLockIdleSeconds: 300 });
    expect(p.thresholds.minimumOsVersions).toMatchObject({ macos: '13', ubuntu: '22.04', debian: '12', fedora: '39' });
  });

  it('rejects a policy naming an unknown check, suggesting the nearest', () => {
    expect(() => parsePolicy('p.json', { schemaVersion: 1, name: 'x', version: '1', checks: { firewal: 'critical' } })).toThrow(
      'p.json: checks.firewal: unknown check id (did you mean "firewall"?); see `vigil checks`',
    );
  });

  it('rejects a bad severity naming the key and the allowed values', () => {
    expect(() => parsePolicy('p.json', { schemaVersion: 1, name: 'x', version: '1', checks: { firewall: 'high' } })).toThrow(
      'p.json: checks.firewall: expected one of "critical", "recommended", "info", "off", got "high"',
    );
  });
});
