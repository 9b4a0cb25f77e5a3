import { describe, expect, it } from 'vitest';
import { loadPlatformSupport } from '../../src/posture/platforms.js';
import type { DeviceContext, Remediation } from '../../src/posture/remediation/types.js';
import { walkthroughModelSchema } from '../../src/ui/ipc.js';
import { WalkthroughSession, type WalkthroughDeps } from '../../src/ui/walkthrough.js';
import { allPassing, recordedReport, withStatuses } from './reports.js';

const recorded = recordedReport();
const linux = await loadPlatformSupport('linux');
const remediation = (id: string): Remediation | undefined => linux.checks[id]?.remediation;
const gnomeDebian: DeviceContext = { platform: 'linux', desktop: 'gnome', distroFamily: 'debian', osVersion: '12' };

function session(device: DeviceContext = gnomeDebian, focus?: string): WalkthroughSession {
  const deps: WalkthroughDeps = { device, remediation };
  return new WalkthroughSession(deps, recorded, focus);
}

describe('walkthrough model', () => {
  it('lists the failing checks, critical first, with why and the steps for this OS', () => {
    const m = session().model();
    expect(m.checks.map((c) => c.id)).toEqual(['disk-encryption', 'os-patched', 'edr-running', 'firewall', 'screen-lock']);
    expect(m.progress).toEqual({ fixed: 0, total: 5, label: '0 of 5 fixed' });
    const firewall = m.checks.find((c) => c.id === 'firewall');
    expect(firewall?.why).toBe('A firewall stops other machines on the same network reaching services you did not mean to share.');
    expect(firewall?.guide?.label).toBe('Ubuntu / Debian');
    expect(firewall?.guide?.steps[0]).toContain('sudo ufw enable');
    expect(firewall?.statusText).toBe('failed');
    expect(firewall?.recheck).toEqual({ phase: 'idle' });
    expect(m.waiting).toBe(false);
    expect(walkthroughModelSchema.safeParse(m).success).toBe(true);
  });

  it('notes when a fix needs an administrator', () => {
    const m = session().model();
    expect(m.checks.find((c) => c.id === 'firewall')?.adminNote).toMatch(/administrator password/);
    const screenLock = m.checks.find((c) => c.id === 'screen-lock');
    expect(screenLock?.guide?.label).toBe('GNOME');
    expect(screenLock?.adminNote).toBeUndefined();
  });

  it('offers Open Settings only for allow-listed links of this platform', () => {
    const s = session();
    const m = s.model();
    expect(m.checks.find((c) => c.id === 'screen-lock')?.canOpenSettings).toBe(true);
    expect(s.settingsTarget('screen-lock')).toEqual({ kind: 'command', argv: ['gnome-control-center', 'privacy'] });
    expect(s.settingsTarget('firewall')).toEqual({ kind: 'command', argv: ['gufw'] });
    // Disk encryption has no settings page to open.
    expect(m.checks.find((c) => c.id === 'disk-encryption')?.canOpenSettings).toBe(false);
    expect(s.settingsTarget('disk-encryption')).toBeUndefined();
    // Not in this walkthrough: never opened, whatever the renderer asks.
    expect(s.settingsTarget('ssh-server')).toBeUndefined();
  });

  it('refuses deep links that are not on the allow-list, or are for another OS', () => {
    const rogue: Remediation = { guides: [{ label: 'x', steps: ['x'], deepLink: 'https://evil.example', needsAdmin: false }] };
    const mac: Remediation = { guides: [{ label: 'x', steps: ['x'], deepLink: 'gnome-privacy', needsAdmin: false }] };
    const withRogue = new WalkthroughSession({ device: gnomeDebian, remediation: () => rogue }, recorded);
    expect(withRogue.settingsTarget('firewall')).toBeUndefined();
    expect(withRogue.model().checks.every((c) => !c.canOpenSettings)).toBe(true);
    const onMac = new WalkthroughSession({ device: { platform: 'darwin' }, remediation: () => mac }, recorded);
    expect(onMac.settingsTarget('firewall')).toBeUndefined();
  });

  it('runs Check again idle -> checking -> result, and counts the fix', () => {
    const s = session();
    expect(s.startRecheck('firewall')).toBe(true);
    expect(s.model().checks.find((c) => c.id === 'firewall')?.recheck).toEqual({ phase: 'checking' });
    // A second press while checking is ignored.
    expect(s.startRecheck('firewall')).toBe(false);
    const after = withStatuses(recorded, { firewall: 'pass' }, '2026-11-23T19:00:00.000Z');
    s.finishRecheck('firewall', after);
    const m = s.model();
    const firewall = m.checks.find((c) => c.id === 'firewall');
    expect(firewall).toMatchObject({ fixed: true, statusText: 'fixed', canOpenSettings: false, recheck: { phase: 'result', status: 'pass', at: '2026-11-23T19:00:00.000Z' } });
    expect(firewall?.reason).toBeUndefined();
    expect(m.progress.label).toBe('1 of 5 fixed');
    // The fixed check stays in place.
    expect(m.checks.map((c) => c.id)).toEqual(['disk-encryption', 'os-patched', 'edr-running', 'firewall', 'screen-lock']);
  });

  it('shows a result that still fails, and can check again', () => {
    const s = session();
    s.startRecheck('disk-encryption');
    s.finishRecheck('disk-encryption', withStatuses(recorded, {}, '2026-11-23T19:01:00.000Z'));
    const dc = s.model().checks.find((c) => c.id === 'disk-encryption');
    expect(dc).toMatchObject({ fixed: false, statusText: 'failed', recheck: { phase: 'result', status: 'fail' } });
    expect(s.startRecheck('disk-encryption')).toBe(true);
  });

  it('reports a Check again that could not run', () => {
    const s = session();
    s.startRecheck('firewall');
    s.failRecheck('firewall', 'the agent is stopping');
    expect(s.model().checks.find((c) => c.id === 'firewall')?.recheck).toEqual({ phase: 'failed', message: 'the agent is stopping' });
  });

  it('ignores Check again for a check that is not in the walkthrough', () => {
    expect(session().startRecheck('ssh-server')).toBe(false);
  });

  it('keeps fixed checks and adds new failures as scans come in', () => {
    const s = session();
    s.update(allPassing(recorded));
    expect(s.model().progress).toEqual({ fixed: 5, total: 5, label: '5 of 5 fixed' });
    s.update(withStatuses(allPassing(recorded), { 'os-version': 'fail' }));
    const m = s.model();
    expect(m.checks[0]?.id).toBe('os-version');
    expect(m.progress.label).toBe('5 of 6 fixed');
  });

  it('drops a check the policy stopped running', () => {
    const s = session();
    const without = { ...recorded, results: recorded.results.filter((r) => r.id !== 'firewall'), reasons: recorded.reasons.filter((r) => r.checkId !== 'firewall') };
    s.update(without);
    expect(s.model().checks.map((c) => c.id)).not.toContain('firewall');
    expect(s.model().progress.total).toBe(4);
  });

  it('keeps the focus a notification asked for, if that check is in the walkthrough', () => {
    expect(session(gnomeDebian, 'firewall').model().focus).toBe('firewall');
    expect(session(gnomeDebian, 'ssh-server').model().focus).toBeUndefined();
  });

  it('waits for the first scan, with nothing to fix yet', () => {
    const s = new WalkthroughSession({ device: gnomeDebian, remediation });
    expect(s.model()).toEqual({ checks: [], progress: { fixed: 0, total: 0, label: 'Nothing to fix' }, waiting: true });
  });

  it('shows the general guide where no specific one applies', () => {
    const m = session({ platform: 'linux' }).model();
    expect(m.checks.find((c) => c.id === 'firewall')?.guide?.label).toBe('Other distributions');
  });
});
