import { describe, expect, it } from 'vitest';
import { MAX_MENU_ISSUES, trayIconState, trayModel, type TrayInput, type TrayMenuItem } from '../../src/ui/tray.js';
import { allPassing, recordedReport, withStatuses } from './reports.js';

const display = { now: new Date('2026-11-23T19:00:00Z'), locale: 'en-GB', timeZone: 'UTC' };
const blocked = recordedReport();
const compliant = allPassing(blocked);
const limited = withStatuses(blocked, { 'disk-encryption': 'pass' });

function input(over: Partial<TrayInput>): TrayInput {
  return { report: compliant, checking: false, allowQuit: true, display, ...over };
}

function item(menu: readonly TrayMenuItem[], id: string): Extract<TrayMenuItem, { type: 'item' }> | undefined {
  return menu.find((m): m is Extract<TrayMenuItem, { type: 'item' }> => m.type === 'item' && m.id === id);
}

describe('tray icon state', () => {
  it('follows the access level of the recorded report and its derived states', () => {
    expect(blocked.accessLevel).toBe('blocked');
    expect(limited.accessLevel).toBe('limited');
    expect(compliant.accessLevel).toBe('full');
    expect(trayIconState(input({ report: blocked }))).toBe('blocked');
    expect(trayIconState(input({ report: limited }))).toBe('limited');
    expect(trayIconState(input({ report: compliant }))).toBe('compliant');
  });

  it('shows checking before the first report and while the user waits for a scan', () => {
    expect(trayIconState(input({ report: undefined }))).toBe('checking');
    expect(trayIconState(input({ report: blocked, checking: true }))).toBe('checking');
  });

  it('puts a missing certificate above posture, and an unreachable server below it', () => {
    const needs = { state: 'needs-enrollment' } as const;
    expect(trayIconState(input({ report: blocked, identity: needs }))).toBe('needs-enrollment');
    expect(trayIconState(input({ report: compliant, identity: { state: 'not-enrolled' } }))).toBe('needs-enrollment');
    expect(trayIconState(input({ report: compliant, identity: { state: 'renewing' } }))).toBe('compliant');
    expect(trayIconState(input({ report: limited, reporting: { online: false } }))).toBe('limited');
    expect(trayIconState(input({ report: compliant, reporting: { online: false } }))).toBe('offline');
    expect(trayIconState(input({ report: compliant, reporting: { online: true } }))).toBe('compliant');
  });
});

describe('tray tooltip', () => {
  it('gives the state and the time of the last check', () => {
    expect(trayModel(input({ report: blocked })).tooltip).toBe('Vigil: Access blocked\nLast check: 18:45');
    expect(trayModel(input({ report: undefined })).tooltip).toBe('Vigil: Checking…\nLast check: not yet');
  });

  it('adds the day when the last check was not today', () => {
    const later = { ...display, now: new Date('2026-11-25T09:00:00Z') };
    expect(trayModel(input({ report: compliant, display: later })).tooltip).toBe('Vigil: Compliant\nLast check: 23 Nov, 18:45');
  });
});

describe('tray menu', () => {
  it('lists failing checks most serious first, each opening its step', () => {
    const { menu } = trayModel(input({ report: blocked }));
    const issues = menu.filter((m) => m.type === 'item' && m.id.startsWith('issue:'));
    expect(issues.map((m) => (m.type === 'item' ? m.label : ''))).toEqual([
      'Disk encryption on: failed',
      'Security updates installed: could not be checked',
      'Antivirus or EDR running: failed',
      'Firewall on: failed',
      'Screen locks when idle: could not be verified',
    ]);
    expect(item(menu, 'issue:disk-encryption')?.action).toEqual({ kind: 'open-walkthrough', checkId: 'disk-encryption' });
    expect(item(menu, 'status')).toMatchObject({ label: 'Access blocked: 5 issues to fix', enabled: false });
    expect(item(menu, 'fix')).toMatchObject({ label: 'Fix issues…', enabled: true, action: { kind: 'open-walkthrough' } });
  });

  it(`shows at most ${MAX_MENU_ISSUES} checks and a "more" entry`, () => {
    const six = withStatuses(blocked, { 'os-version': 'fail' });
    const { menu } = trayModel(input({ report: six }));
    expect(menu.filter((m) => m.type === 'item' && m.id.startsWith('issue:') && m.id !== 'issue:more')).toHaveLength(MAX_MENU_ISSUES);
    expect(item(menu, 'issue:more')).toMatchObject({ label: '1 more…', action: { kind: 'open-walkthrough' } });
  });

  it('has no issue entries and a disabled "Fix issues…" when compliant', () => {
    const { menu } = trayModel(input({ report: compliant }));
    expect(menu.some((m) => m.type === 'item' && m.id.startsWith('issue:'))).toBe(false);
    expect(item(menu, 'fix')?.enabled).toBe(false);
    expect(item(menu, 'status')?.label).toBe('Compliant: this device meets the security policy');
  });

  it('turns "Check now" into a disabled "Checking…" while a scan runs, and back', () => {
    expect(item(trayModel(input({ checking: false })).menu, 'check-now')).toMatchObject({ label: 'Check now', enabled: true });
    expect(item(trayModel(input({ checking: true })).menu, 'check-now')).toMatchObject({ label: 'Checking…', enabled: false });
    expect(item(trayModel(input({ checking: true })).menu, 'status')?.label).toBe('Checking your device…');
    expect(item(trayModel(input({ checking: true, report: undefined })).menu, 'status')?.label).toBe('Checking your device for the first time…');
  });

  it('shows the certificate line once identity is known', () => {
    expect(item(trayModel(input({})).menu, 'certificate')).toBeUndefined();
    const valid = trayModel(input({ identity: { state: 'valid', notAfter: '2027-03-01T00:00:00Z' } }));
    expect(item(valid.menu, 'certificate')).toMatchObject({ label: 'Device certificate valid until 1 March 2027', enabled: false });
    expect(item(trayModel(input({ identity: { state: 'needs-enrollment' } })).menu, 'certificate')?.label).toBe('Device certificate needs enrollment');
    expect(item(trayModel(input({ identity: { state: 'renewing' } })).menu, 'certificate')?.label).toBe('Device certificate renewing…');
  });

  it('shows a revoked certificate with the needs-enrollment icon but its own words', () => {
    const m = trayModel(input({ report: blocked, identity: { state: 'revoked' } }));
    expect(m.icon).toBe('needs-enrollment');
    expect(m.tooltip).toMatch(/^Vigil: Certificate revoked\n/);
    expect(item(m.menu, 'status')?.label).toBe('This device’s certificate was revoked: it needs enrollment again before it gets access');
    expect(item(m.menu, 'certificate')?.label).toBe('Device certificate revoked: ask IT to enroll this device again');
  });

  it('says when the server is unreachable and when a report last got through', () => {
    const m = trayModel(input({ reporting: { online: false, lastDeliveredAt: '2026-11-23T17:30:00Z' } }));
    expect(item(m.menu, 'reporting')?.label).toBe('Vigil server unreachable (last report delivered 17:30)');
    expect(item(m.menu, 'status')?.label).toBe('Compliant, but the Vigil server cannot be reached');
    expect(item(trayModel(input({ reporting: { online: true } })).menu, 'reporting')).toBeUndefined();
  });

  it('hides Quit when managed config forbids quitting', () => {
    expect(item(trayModel(input({ allowQuit: true })).menu, 'quit')).toMatchObject({ action: { kind: 'quit' } });
    expect(item(trayModel(input({ allowQuit: false })).menu, 'quit')).toBeUndefined();
  });

  it('always offers logs and About', () => {
    const { menu } = trayModel(input({}));
    expect(item(menu, 'open-logs')?.action).toEqual({ kind: 'open-logs' });
    expect(item(menu, 'about')?.action).toEqual({ kind: 'about' });
  });
});
