import { describe, expect, it } from 'vitest';
import { NotificationPlanner } from '../../src/ui/notifications.js';
import { allPassing, recordedReport, withStatuses } from './reports.js';

const recorded = recordedReport();
const compliant = allPassing(recorded);
const MIN = 60_000;
const t0 = Date.parse('2026-11-23T19:00:00Z');
const at = (minutes: number): Date => new Date(t0 + minutes * MIN);

function planner(cooldownMinutes = 60, enabled = true): NotificationPlanner {
  return new NotificationPlanner({ enabled, cooldownMs: cooldownMinutes * MIN });
}

/** Limited: one recommended check fails. */
const firewallOff = withStatuses(compliant, { firewall: 'fail' });
/** Blocked: a critical check fails. */
const unencrypted = withStatuses(compliant, { 'disk-encryption': 'fail' });

describe('notification decisions', () => {
  it('says nothing while the device stays compliant', () => {
    const p = planner();
    expect(p.next({ report: compliant, now: at(0) })).toBeUndefined();
    expect(p.next({ report: compliant, now: at(5) })).toBeUndefined();
  });

  it('notifies when the access level drops, pointing at the first issue', () => {
    const p = planner();
    p.next({ report: compliant, now: at(0) });
    expect(p.next({ report: firewallOff, now: at(5) })).toEqual({
      tag: 'vigil',
      title: 'Access limited: action needed',
      body: 'Access from this device is limited. Click to see how to fix it.',
      checkId: 'firewall',
      urgency: 'normal',
    });
    // Still limited on the next scan: nothing new.
    expect(p.next({ report: firewallOff, now: at(10) })).toBeUndefined();
  });

  it('treats the first scan after start as a drop from full access', () => {
    const d = planner().next({ report: recorded, now: at(0) });
    expect(d).toMatchObject({ title: 'Access blocked: action needed', checkId: 'disk-encryption', urgency: 'critical' });
    expect(d?.body).toBe('Access from this device is blocked. Disk encryption on: failed. Click to see how to fix it.');
  });

  it('groups a critical failure and the drop it causes into one notification', () => {
    const p = planner();
    p.next({ report: compliant, now: at(0) });
    const d = p.next({ report: unencrypted, now: at(1) });
    expect(d?.title).toBe('Access blocked: action needed');
    expect(d?.body).toBe('Access from this device is blocked. Disk encryption on: failed. Click to see how to fix it.');
    expect(d?.checkId).toBe('disk-encryption');
  });

  it('notifies a critical check failing even when the level does not drop', () => {
    const p = planner();
    p.next({ report: unencrypted, now: at(0) });
    const d = p.next({ report: withStatuses(unencrypted, { 'os-version': 'fail' }), now: at(1) });
    expect(d).toMatchObject({ title: 'Access blocked: action needed', checkId: 'os-version' });
    expect(d?.body).toBe('Operating system is supported: failed. Click to see how to fix it.');
  });

  it('caps a grouped notification at three lines', () => {
    const p = planner();
    p.next({ report: compliant, now: at(0) });
    const many = withStatuses(compliant, { 'os-version': 'fail', 'os-patched': 'fail', 'disk-encryption': 'fail', 'not-rooted': 'fail' });
    expect(p.next({ report: many, now: at(1) })?.body).toBe(
      'Access from this device is blocked. Operating system is supported: failed. Security updates installed: failed. …and 2 more. Click to see how to fix it.',
    );
  });

  it('rate-limits a check that flaps within the cooldown window', () => {
    const p = planner(60);
    p.next({ report: compliant, now: at(0) });
    const withCritical = withStatuses(firewallOff, { 'disk-encryption': 'fail' });
    expect(p.next({ report: withCritical, now: at(1) })?.checkId).toBe('disk-encryption');
    // Fixed, but the firewall still limits access: no "all fixed", and no news.
    expect(p.next({ report: firewallOff, now: at(2) })).toBeUndefined();
    // Fails again 10 minutes later: same check, same state, inside the window: quiet.
    expect(p.next({ report: withCritical, now: at(11) })).toBeUndefined();
    expect(p.next({ report: firewallOff, now: at(20) })).toBeUndefined();
    // Outside the window it is news again.
    expect(p.next({ report: withCritical, now: at(62) })?.checkId).toBe('disk-encryption');
  });

  it('announces a new state of the same subject inside the window', () => {
    const p = planner(60);
    p.next({ report: compliant, now: at(0) });
    expect(p.next({ report: firewallOff, now: at(1) })?.title).toBe('Access limited: action needed');
    const blocked = withStatuses(firewallOff, { 'disk-encryption': 'fail' });
    // limited -> blocked: the access subject changed state, so the window does not hold it back.
    expect(p.next({ report: blocked, now: at(2) })?.title).toBe('Access blocked: action needed');
  });

  it('a zero cooldown never holds anything back', () => {
    const p = planner(0);
    const withCritical = withStatuses(firewallOff, { 'disk-encryption': 'fail' });
    p.next({ report: firewallOff, now: at(0) });
    expect(p.next({ report: withCritical, now: at(1) })).toBeDefined();
    expect(p.next({ report: firewallOff, now: at(1) })).toBeUndefined();
    expect(p.next({ report: withCritical, now: at(1) })).toBeDefined();
  });

  it('says "all fixed" once, when everything passes after a notification', () => {
    const p = planner();
    p.next({ report: compliant, now: at(0) });
    p.next({ report: firewallOff, now: at(1) });
    expect(p.next({ report: compliant, now: at(2) })).toEqual({
      tag: 'vigil',
      title: 'All fixed',
      body: 'This device meets the security policy again. Thank you!',
      urgency: 'normal',
    });
    expect(p.next({ report: compliant, now: at(3) })).toBeUndefined();
  });

  it('after "all fixed", a new failure is news even inside the window', () => {
    const p = planner(60);
    p.next({ report: compliant, now: at(0) });
    p.next({ report: firewallOff, now: at(1) });
    p.next({ report: compliant, now: at(2) });
    expect(p.next({ report: firewallOff, now: at(3) })?.title).toBe('Access limited: action needed');
  });

  it('does not say "all fixed" when nothing was ever wrong', () => {
    const p = planner();
    expect(p.next({ report: compliant, now: at(0) })).toBeUndefined();
  });

  it('notifies once when the certificate needs enrollment, and not while it still does', () => {
    const p = planner();
    p.next({ report: compliant, identity: { state: 'valid' }, now: at(0) });
    expect(p.next({ report: compliant, identity: { state: 'needs-enrollment' }, now: at(1) })).toEqual({
      tag: 'vigil',
      title: 'Device certificate needs enrollment',
      body: 'The device certificate needs enrollment.',
      urgency: 'critical',
    });
    expect(p.next({ report: compliant, identity: { state: 'needs-enrollment' }, now: at(2) })).toBeUndefined();
    // Enrolled again: everything is fine, and the user was told something was wrong.
    expect(p.next({ report: compliant, identity: { state: 'valid' }, now: at(3) })?.title).toBe('All fixed');
  });

  it('says once that the certificate was revoked, even right after it needed enrollment', () => {
    const p = planner();
    p.next({ report: compliant, identity: { state: 'valid' }, now: at(0) });
    expect(p.next({ report: compliant, identity: { state: 'revoked' }, now: at(1) })).toEqual({
      tag: 'vigil',
      title: 'Device certificate revoked',
      body: 'The device certificate was revoked. Ask IT to enroll this device again.',
      urgency: 'critical',
    });
    expect(p.next({ report: compliant, identity: { state: 'revoked' }, now: at(2) })).toBeUndefined();
    expect(p.next({ report: compliant, identity: { state: 'revoked' }, now: at(200) })).toBeUndefined();

    const q = planner();
    q.next({ report: compliant, identity: { state: 'needs-enrollment' }, now: at(0) });
    expect(q.next({ report: compliant, identity: { state: 'revoked' }, now: at(1) })?.title).toBe('Device certificate revoked');
  });

  it('puts enrollment first when it comes with posture problems', () => {
    const p = planner();
    p.next({ report: compliant, identity: { state: 'valid' }, now: at(0) });
    const d = p.next({ report: unencrypted, identity: { state: 'needs-enrollment' }, now: at(1) });
    expect(d?.title).toBe('Device certificate needs enrollment');
    expect(d?.body).toBe(
      'The device certificate needs enrollment. Access from this device is blocked. Disk encryption on: failed. Click to see how to fix it.',
    );
    expect(d?.checkId).toBe('disk-encryption');
  });

  it('keeps track but shows nothing when notifications are off', () => {
    const p = planner(60, false);
    expect(p.next({ report: recorded, now: at(0) })).toBeUndefined();
    expect(p.next({ report: compliant, now: at(1) })).toBeUndefined();
  });

  it('ignores states with no report yet', () => {
    expect(planner().next({ now: at(0) })).toBeUndefined();
  });
});
