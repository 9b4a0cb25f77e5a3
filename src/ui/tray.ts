import type { PostureReport } from '../protocol/report.js';
import { formatDate, formatWhen } from './format.js';
import { issuesOf, statusWord } from './issues.js';
import { needsEnrollment, type DisplayOptions, type IdentityStatus, type ReportingStatus } from './types.js';

export const TRAY_ICON_STATES = ['compliant', 'limited', 'blocked', 'checking', 'needs-enrollment', 'offline'] as const;
export type TrayIconState = (typeof TRAY_ICON_STATES)[number];

export type TrayAction =
  | { kind: 'open-walkthrough'; checkId?: string }
  | { kind: 'check-now' }
  | { kind: 'open-logs' }
  | { kind: 'about' }
  | { kind: 'restart-to-update' }
  | { kind: 'quit' };

export type TrayMenuItem =
  | { type: 'separator' }
  | { type: 'item'; id: string; label: string; enabled: boolean; action?: TrayAction };

export interface TrayModel {
  icon: TrayIconState;
  tooltip: string;
  menu: TrayMenuItem[];
}

export interface TrayInput {
  report?: PostureReport;
  /** A scan the user is waiting for (the first one, or "Check now"); scheduled re-scans stay quiet. */
  checking: boolean;
  identity?: IdentityStatus;
  reporting?: ReportingStatus;
  /** Set while the tray cannot reach the device's agent: nothing else it knows is current then. */
  agentDown?: { hint: string };
  /** False when managed config forbids quitting: the menu then has no Quit. */
  allowQuit: boolean;
  /** A tray update is downloaded and verified: the menu offers to restart into it. */
  updateReady?: { version: string };
  display: DisplayOptions;
}

export const MAX_MENU_ISSUES = 5;

const STATE_LABEL: Record<TrayIconState, string> = {
  compliant: 'Compliant',
  limited: 'Limited access',
  blocked: 'Access blocked',
  checking: 'Checking…',
  'needs-enrollment': 'Needs enrollment',
  offline: 'Offline',
};

/**
 * One icon for the most important thing: a scan the user waits for, then a missing certificate (nothing
 * works without it and no posture fix helps), then posture, and last an unreachable control plane, which
 * the user cannot fix and which does not change what the device may do locally.
 */
export function trayIconState(input: Pick<TrayInput, 'report' | 'checking' | 'identity' | 'reporting' | 'agentDown'>): TrayIconState {
  // Without the agent there is no posture to show; a stale one would claim more than the tray knows.
  if (input.agentDown) return 'offline';
  if (input.checking || !input.report) return 'checking';
  if (needsEnrollment(input.identity)) return 'needs-enrollment';
  if (input.report.accessLevel === 'blocked') return 'blocked';
  if (input.report.accessLevel === 'limited') return 'limited';
  if (input.reporting && !input.reporting.online) return 'offline';
  return 'compliant';
}

function statusLine(icon: TrayIconState, input: TrayInput, issueCount: number): string {
  const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
  switch (icon) {
    case 'checking':
      return input.report ? 'Checking your device…' : 'Checking your device for the first time…';
    case 'needs-enrollment':
      return input.identity?.state === 'revoked'
        ? 'This device’s certificate was revoked: it needs enrollment again before it gets access'
        : 'This device needs enrollment before it gets access';
    case 'blocked':
      return `Access blocked: ${plural(issueCount, 'issue')} to fix`;
    case 'limited':
      return `Limited access: ${plural(issueCount, 'issue')} to fix`;
    case 'offline':
      return input.agentDown ? 'Vigil agent is not running' : 'Compliant, but the Vigil server cannot be reached';
    case 'compliant':
      return 'Compliant: this device meets the security policy';
  }
}

function certificateLine(identity: IdentityStatus, display: DisplayOptions): string {
  switch (identity.state) {
    case 'valid':
      return identity.notAfter ? `Device certificate valid until ${formatDate(identity.notAfter, display)}` : 'Device certificate valid';
    case 'renewing':
      return 'Device certificate renewing…';
    case 'needs-enrollment':
    case 'not-enrolled':
      return 'Device certificate needs enrollment';
    case 'revoked':
      return 'Device certificate revoked: ask IT to enroll this device again';
  }
}

export function trayTooltip(icon: TrayIconState, input: Pick<TrayInput, 'report' | 'display' | 'identity' | 'agentDown'>): string {
  if (input.agentDown) return 'Vigil: Agent not running';
  const last = input.report ? formatWhen(input.report.generatedAt, input.display) : 'not yet';
  // Revoked shares the needs-enrollment icon (same remedy; the icon set has no shape for it), not its words.
  const label = icon === 'needs-enrollment' && input.identity?.state === 'revoked' ? 'Certificate revoked' : STATE_LABEL[icon];
  return `Vigil: ${label}\nLast check: ${last}`;
}

export function trayModel(input: TrayInput): TrayModel {
  if (input.agentDown) return agentDownModel(input, input.agentDown);
  const icon = trayIconState(input);
  const issues = issuesOf(input.report);
  const menu: TrayMenuItem[] = [{ type: 'item', id: 'status', label: statusLine(icon, input, issues.length), enabled: false }];
  if (input.identity) menu.push({ type: 'item', id: 'certificate', label: certificateLine(input.identity, input.display), enabled: false });
  if (input.reporting && !input.reporting.online) {
    const since = input.reporting.lastDeliveredAt ? ` (last report delivered ${formatWhen(input.reporting.lastDeliveredAt, input.display)})` : '';
    menu.push({ type: 'item', id: 'reporting', label: `Vigil server unreachable${since}`, enabled: false });
  }
  if (issues.length > 0) {
    menu.push({ type: 'separator' });
    for (const issue of issues.slice(0, MAX_MENU_ISSUES)) {
      menu.push({
        type: 'item',
        id: `issue:${issue.checkId}`,
        label: `${issue.title}: ${statusWord(issue.status)}`,
        enabled: true,
        action: { kind: 'open-walkthrough', checkId: issue.checkId },
      });
    }
    const more = issues.length - MAX_MENU_ISSUES;
    if (more > 0) menu.push({ type: 'item', id: 'issue:more', label: `${more} more…`, enabled: true, action: { kind: 'open-walkthrough' } });
  }
  menu.push(
    { type: 'separator' },
    { type: 'item', id: 'fix', label: 'Fix issues…', enabled: issues.length > 0, action: { kind: 'open-walkthrough' } },
    { type: 'item', id: 'check-now', label: input.checking ? 'Checking…' : 'Check now', enabled: !input.checking, action: { kind: 'check-now' } },
    { type: 'separator' },
    { type: 'item', id: 'open-logs', label: 'Open logs folder', enabled: true, action: { kind: 'open-logs' } },
    { type: 'item', id: 'about', label: 'About Vigil', enabled: true, action: { kind: 'about' } },
  );
  if (input.updateReady) menu.push({ type: 'item', id: 'update', label: `Restart to update (${input.updateReady.version})`, enabled: true, action: { kind: 'restart-to-update' } });
  if (input.allowQuit) menu.push({ type: 'item', id: 'quit', label: 'Quit Vigil', enabled: true, action: { kind: 'quit' } });
  return { icon, tooltip: trayTooltip(icon, input), menu };
}

/** The agent cannot be reached: say so, say how to start it, and offer nothing that needs it. */
function agentDownModel(input: TrayInput, down: { hint: string }): TrayModel {
  const menu: TrayMenuItem[] = [
    { type: 'item', id: 'status', label: 'Vigil agent is not running', enabled: false },
    { type: 'item', id: 'agent-hint', label: `Start it: ${down.hint}`, enabled: false },
    { type: 'item', id: 'agent-retry', label: 'Reconnecting by itself when it starts', enabled: false },
    { type: 'separator' },
    { type: 'item', id: 'check-now', label: 'Check now', enabled: false, action: { kind: 'check-now' } },
    { type: 'separator' },
    { type: 'item', id: 'open-logs', label: 'Open logs folder', enabled: true, action: { kind: 'open-logs' } },
    { type: 'item', id: 'about', label: 'About Vigil', enabled: true, action: { kind: 'about' } },
  ];
  if (input.updateReady) menu.push({ type: 'item', id: 'update', label: `Restart to update (${input.updateReady.version})`, enabled: true, action: { kind: 'restart-to-update' } });
  if (input.allowQuit) menu.push({ type: 'item', id: 'quit', label: 'Quit Vigil', enabled: true, action: { kind: 'quit' } });
  return { icon: 'offline', tooltip: trayTooltip('offline', input), menu };
}
