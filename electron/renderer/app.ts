import type { VigilApi } from '../../src/ui/ipc-channels.js';
import type { RecheckState, WalkthroughCheck, WalkthroughModel } from '../../src/ui/walkthrough.js';

/*
 * The walkthrough page. It only renders the model main sends and forwards two button presses; every
 * decision (order, steps, what may be opened) was made in src/ui. Elements are kept per check and updated
 * in place, so keyboard focus stays where it was when a new state arrives.
 */

declare global {
  interface Window {
    vigil: VigilApi;
  }
}

interface CheckView {
  root: HTMLElement;
  heading: HTMLHeadingElement;
  badge: HTMLSpanElement;
  status: HTMLParagraphElement;
  why: HTMLParagraphElement;
  guideHeading: HTMLHeadingElement;
  steps: HTMLOListElement;
  admin: HTMLParagraphElement;
  openSettings: HTMLButtonElement;
  checkAgain: HTMLButtonElement;
  note: HTMLParagraphElement;
  stepsKey: string;
  recheckKey: string;
}

const api = window.vigil;
const views = new Map<string, CheckView>();
let appliedFocus: string | undefined;

function byId(id: string): HTMLElement {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page has no #${id}`);
  return found;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Steps mark commands with backticks; they become <code>, built as text nodes (no HTML from data). */
function stepContent(step: string): Node[] {
  return step.split('`').map((part, i) => (i % 2 === 1 ? el('code', undefined, part) : document.createTextNode(part)));
}

const BADGE: Record<WalkthroughCheck['status'], string> = { pass: '✓', fail: '✕', unknown: '?', error: '!' };

function announce(text: string): void {
  const region = byId('announcer');
  // Clearing first makes screen readers repeat an identical message.
  region.textContent = '';
  setTimeout(() => {
    region.textContent = text;
  }, 50);
}

function timeOf(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}

function recheckText(check: WalkthroughCheck, r: RecheckState): string {
  switch (r.phase) {
    case 'idle':
      return '';
    case 'checking':
      return 'Checking…';
    case 'failed':
      return r.message;
    case 'result': {
      const when = timeOf(r.at);
      const at = when ? ` Checked at ${when}.` : '';
      return r.status === 'pass' ? `Fixed.${at}` : `Still ${check.statusText}.${at}`;
    }
  }
}

function createView(check: WalkthroughCheck): CheckView {
  const root = el('section', 'check');
  root.id = `check-${check.id}`;
  root.setAttribute('aria-labelledby', `check-${check.id}-title`);
  const heading = el('h2', 'check-title');
  heading.id = `check-${check.id}-title`;
  heading.tabIndex = -1;
  const badge = el('span', 'badge');
  badge.setAttribute('aria-hidden', 'true');
  heading.append(badge, document.createTextNode(check.title));
  const status = el('p', 'status');
  const why = el('p', 'why');
  const guideHeading = el('h3', 'guide-title');
  const steps = el('ol', 'steps');
  const admin = el('p', 'admin-note');
  admin.setAttribute('role', 'note');
  const actions = el('div', 'actions');
  const openSettings = el('button', 'button secondary', 'Open Settings');
  openSettings.type = 'button';
  const checkAgain = el('button', 'button primary', 'Check again');
  checkAgain.type = 'button';
  const note = el('p', 'note');
  note.id = `check-${check.id}-note`;
  note.setAttribute('role', 'status');
  checkAgain.setAttribute('aria-describedby', note.id);
  actions.append(openSettings, checkAgain);
  root.append(heading, status, why, guideHeading, steps, admin, actions, note);

  const id = check.id;
  openSettings.addEventListener('click', () => {
    note.textContent = 'Opening settings…';
    api.openSettings(id).then(
      (r) => {
        note.textContent = r.ok ? 'Settings opened. Follow the steps, then choose Check again.' : (r.message ?? 'Could not open settings.');
      },
      () => {
        note.textContent = 'Could not open settings.';
      },
    );
  });
  checkAgain.addEventListener('click', () => {
    // aria-disabled rather than disabled: a disabled button drops keyboard focus mid-check.
    if (checkAgain.getAttribute('aria-disabled') === 'true') return;
    api.checkAgain(id).catch(() => {
      note.textContent = 'The check could not run. Try again in a moment.';
    });
  });
  return { root, heading, badge, status, why, guideHeading, steps, admin, openSettings, checkAgain, note, stepsKey: '', recheckKey: '' };
}

function updateView(v: CheckView, check: WalkthroughCheck): void {
  v.root.dataset.status = check.fixed ? 'fixed' : check.status;
  v.root.dataset.severity = check.severity;
  v.badge.textContent = BADGE[check.status];
  v.status.textContent = '';
  const state = el('strong', 'status-word', check.fixed ? 'Fixed' : `${check.statusText.charAt(0).toUpperCase()}${check.statusText.slice(1)}`);
  v.status.append(state, document.createTextNode(check.severity === 'critical' ? ' · critical' : ' · recommended'));
  if (check.reason && !check.fixed) v.status.append(document.createTextNode(` · ${check.reason}`));
  v.why.textContent = '';
  v.why.append(el('strong', undefined, 'Why it matters: '), document.createTextNode(check.why));

  const stepsKey = JSON.stringify(check.guide ?? null);
  if (stepsKey !== v.stepsKey) {
    v.stepsKey = stepsKey;
    v.guideHeading.textContent = check.guide ? `How to fix it (${check.guide.label})` : 'How to fix it';
    v.steps.replaceChildren(...(check.guide?.steps ?? ['Ask IT for help with this check.']).map((s) => {
      const li = el('li');
      li.append(...stepContent(s));
      return li;
    }));
  }
  // A fixed check keeps its place but folds its instructions away.
  v.guideHeading.hidden = check.fixed;
  v.steps.hidden = check.fixed;
  v.admin.hidden = check.fixed || !check.adminNote;
  v.admin.textContent = check.adminNote ?? '';
  v.openSettings.hidden = check.fixed || !check.canOpenSettings;

  const checking = check.recheck.phase === 'checking';
  v.checkAgain.textContent = checking ? 'Checking…' : 'Check again';
  v.checkAgain.setAttribute('aria-disabled', String(checking));
  v.checkAgain.classList.toggle('busy', checking);
  const recheckKey = JSON.stringify(check.recheck);
  if (recheckKey !== v.recheckKey) {
    v.recheckKey = recheckKey;
    const text = recheckText(check, check.recheck);
    v.note.textContent = text;
    if (check.recheck.phase === 'result' || check.recheck.phase === 'failed') announce(`${check.title}: ${text}`);
  }
}

function summaryText(m: WalkthroughModel): string {
  if (m.waiting) return 'Waiting for the first check of this device to finish…';
  const open = m.progress.total - m.progress.fixed;
  if (m.progress.total === 0) return 'Nothing needs fixing: this device meets the security policy.';
  if (open === 0) return 'Everything is fixed. Thank you! You can close this window.';
  return `${open} ${open === 1 ? 'issue needs' : 'issues need'} fixing. Work through them from the top; each shows the steps for this device.`;
}

function render(m: WalkthroughModel): void {
  byId('summary').textContent = summaryText(m);
  const bar = byId('progress');
  bar.setAttribute('aria-valuemax', String(m.progress.total));
  bar.setAttribute('aria-valuenow', String(m.progress.fixed));
  bar.setAttribute('aria-valuetext', m.progress.label);
  byId('progress-bar').style.width = m.progress.total === 0 ? '100%' : `${(100 * m.progress.fixed) / m.progress.total}%`;
  byId('progress-label').textContent = m.progress.label;

  const container = byId('checks');
  const keep = new Set(m.checks.map((c) => c.id));
  for (const [id, v] of views) {
    if (!keep.has(id)) {
      v.root.remove();
      views.delete(id);
    }
  }
  m.checks.forEach((check, i) => {
    let v = views.get(check.id);
    if (!v) {
      v = createView(check);
      views.set(check.id, v);
    }
    updateView(v, check);
    const at = container.children.item(i);
    if (at !== v.root) container.insertBefore(v.root, at);
  });
  if (m.focus !== undefined && m.focus !== appliedFocus) {
    appliedFocus = m.focus;
    const target = views.get(m.focus);
    target?.heading.focus();
    target?.root.scrollIntoView({ block: 'start' });
  }
}

document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape') window.close();
});

api.onState(render);
api.getState().then(render, () => {
  byId('summary').textContent = 'Could not load the state of this device. Close this window and try again.';
});
