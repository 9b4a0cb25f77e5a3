import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPlatformSupport } from '../../src/posture/platforms.js';
import type { DeepLinkTarget } from '../../src/posture/remediation/deeplinks.js';
import type { DeviceContext } from '../../src/posture/remediation/types.js';
import type { PostureReport } from '../../src/protocol/report.js';
import { APP_ORIGIN, CONTENT_SECURITY_POLICY, resolveAsset } from '../../src/ui/content.js';
import { walkthroughModelSchema } from '../../src/ui/ipc.js';
import { WalkthroughSession } from '../../src/ui/walkthrough.js';
import { ROOT, tempDir } from '../helpers.js';
import { recordedReport, withStatuses } from './reports.js';

/*
 * The walkthrough page, built as for Electron, served on loopback with the app's CSP, and driven in
 * Debian's Chromium. A stand-in for the preload API forwards every call to a real WalkthroughSession in
 * this process, so the page sees exactly what main would send it.
 */

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = process.env.VIGIL_UPDATE_SCREENSHOTS === '1' ? join(ROOT, 'docs', 'screenshots') : tempDir('vigil-shots-');
const device: DeviceContext = { platform: 'linux', desktop: 'gnome', distroFamily: 'debian', osVersion: '12' };
const linux = await loadPlatformSupport('linux');

/** Three failing checks: the recorded report with two of its five problems already solved. */
const start = withStatuses(recordedReport(), { 'os-patched': 'pass', 'edr-running': 'pass' });

class Host {
  report: PostureReport = start;
  readonly session = new WalkthroughSession({ device, remediation: (id) => linux.checks[id]?.remediation }, start, 'screen-lock');
  readonly opened: { checkId: string; target: DeepLinkTarget | undefined }[] = [];
  readonly rechecked: string[] = [];
  /** What the user has fixed on the "device" since the window opened. */
  readonly fixedOnDevice = new Set<string>();
  page?: Page;

  async call(method: string, checkId: unknown): Promise<unknown> {
    const id = String(checkId);
    switch (method) {
      case 'getState':
        return this.session.model();
      case 'openSettings': {
        const target = this.session.settingsTarget(id);
        this.opened.push({ checkId: id, target });
        // Opening the settings page is where the user fixes it.
        if (target) this.fixedOnDevice.add(id);
        return target ? { ok: true } : { ok: false, message: 'There is no settings page for this step on this device.' };
      }
      case 'checkAgain': {
        this.rechecked.push(id);
        if (!this.session.startRecheck(id)) return undefined;
        await this.push();
        // Long enough for the test to see the checking state, as a real one-check scan shows it.
        await new Promise((r) => setTimeout(r, 400));
        this.report = withStatuses(this.report, this.fixedOnDevice.has(id) ? { [id]: 'pass' } : { [id]: 'fail' }, new Date().toISOString());
        this.session.finishRecheck(id, this.report);
        await this.push();
        return undefined;
      }
      default:
        throw new Error(`no such API method ${method}`);
    }
  }

  private async push(): Promise<void> {
    const model = walkthroughModelSchema.parse(this.session.model());
    await this.page?.evaluate((m) => {
      (globalThis as unknown as { __vigilPush: (m: unknown) => void }).__vigilPush(m);
    }, model);
  }
}

/** Stands in for electron/preload.ts: the same four calls, nothing else. */
function fakePreload(): void {
  type Listener = (m: unknown) => void;
  // This runs in the page; the test's tsconfig has no DOM types, so the page's globals are typed here.
  const page = globalThis as unknown as { vigilHost: (method: string, id?: string) => Promise<unknown> };
  const host = page.vigilHost;
  const listeners = new Set<Listener>();
  Object.assign(page, {
    vigil: {
      getState: () => host('getState'),
      checkAgain: (id: string) => host('checkAgain', id),
      openSettings: (id: string) => host('openSettings', id),
      onState: (l: Listener) => {
        listeners.add(l);
        return () => listeners.delete(l);
      },
    },
    __vigilPush: (m: unknown) => {
      for (const l of listeners) l(m);
    },
  });
}

let server: Server;
let origin: string;
let context: BrowserContext;
let page: Page;
const host = new Host();
const cspViolations: string[] = [];

beforeAll(async () => {
  const out = tempDir('vigil-renderer-');
  execFileSync(process.execPath, [join(ROOT, 'scripts', 'build-electron.mjs'), '--renderer-only', '--out', out], { cwd: ROOT });
  server = createServer((req, res) => {
    // The same allow-list the app's protocol handler uses, with our origin swapped in.
    const asset = resolveAsset(`${APP_ORIGIN}${req.url ?? '/'}`);
    if (!asset) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': asset.contentType, 'content-security-policy': CONTENT_SECURITY_POLICY });
    res.end(readFileSync(join(out, asset.file)));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  context = await chromium.launchPersistentContext(tempDir('vigil-chromium-'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
    viewport: { width: 760, height: 900 },
    colorScheme: 'light',
  });
  page = context.pages()[0] ?? (await context.newPage());
  host.page = page;
  page.on('console', (msg) => {
    if (/Content Security Policy|Refused to/i.test(msg.text())) cspViolations.push(msg.text());
  });
  page.on('pageerror', (err) => cspViolations.push(`page error: ${err.message}`));
  await page.exposeFunction('vigilHost', (method: string, id?: string) => host.call(method, id));
  await page.addInitScript(fakePreload);
  await page.goto(`${origin}/index.html`);
}, 120_000);

afterAll(async () => {
  await context.close();
  await new Promise((r) => server.close(r));
});

function section(id: string) {
  return page.locator(`#check-${id}`);
}

async function runAxe(): Promise<{ violations: unknown[]; passes: number }> {
  const source = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  // evaluate, not a <script> tag: the page's CSP (rightly) refuses inline scripts.
  await page.evaluate(source);
  return page.evaluate(async () => {
    const { axe, document } = globalThis as unknown as {
      axe: { run: (ctx: unknown, opts: object) => Promise<{ violations: unknown[]; passes: unknown[] }> };
      document: unknown;
    };
    const result = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } });
    return { violations: result.violations, passes: result.passes.length };
  });
}

describe('remediation walkthrough in Chromium', () => {
  it('shows the failing checks, most serious first, focused on the one asked for', async () => {
    await expect.poll(() => page.locator('#progress-label').textContent()).toBe('0 of 3 fixed');
    const titles = await page.locator('.check-title').allTextContents();
    expect(titles.map((t) => t.slice(1))).toEqual(['Disk encryption on', 'Firewall on', 'Screen locks when idle']);
    expect(await page.locator('#summary').textContent()).toBe('3 issues need fixing. Work through them from the top; each shows the steps for this device.');
    // A notification for screen-lock opened the window: focus is on that check.
    expect(await page.locator(':focus').getAttribute('id')).toBe('check-screen-lock-title');
    await expect.poll(() => section('screen-lock').locator('ol.steps li').count()).toBeGreaterThan(1);
    expect(await section('screen-lock').locator('.guide-title').textContent()).toBe('How to fix it (GNOME)');
    expect(await section('firewall').locator('.admin-note').isVisible()).toBe(true);
    // Disk encryption has no settings page on the allow-list: no button to open one.
    expect(await section('disk-encryption').getByRole('button', { name: 'Open Settings' }).isVisible()).toBe(false);
    expect(await page.getByRole('progressbar', { name: '0 of 3 fixed' }).getAttribute('aria-valuemax')).toBe('3');
  });

  it('fixes one check with the keyboard alone: Open Settings, then Check again', async () => {
    await page.keyboard.press('Tab');
    expect(await page.locator(':focus').textContent()).toBe('Open Settings');
    await page.keyboard.press('Enter');
    await expect.poll(() => host.opened.length).toBe(1);
    expect(host.opened[0]).toEqual({ checkId: 'screen-lock', target: { kind: 'command', argv: ['gnome-control-center', 'privacy'] } });
    await expect.poll(() => section('screen-lock').locator('.note').textContent()).toBe('Settings opened. Follow the steps, then choose Check again.');

    await page.keyboard.press('Tab');
    expect(await page.locator(':focus').textContent()).toBe('Check again');
    await page.keyboard.press('Enter');
    const again = section('screen-lock').locator('button.primary');
    await expect.poll(() => again.textContent()).toBe('Checking…');
    expect(await again.getAttribute('aria-disabled')).toBe('true');
    expect(await page.locator(':focus').textContent()).toBe('Checking…');
    await expect.poll(() => section('screen-lock').getAttribute('data-status')).toBe('fixed');
    expect(await again.textContent()).toBe('Check again');
    expect(await section('screen-lock').locator('.note').textContent()).toMatch(/^Fixed\. Checked at /);
    expect(await section('screen-lock').locator('ol.steps').isVisible()).toBe(false);
    expect(await page.locator('#progress-label').textContent()).toBe('1 of 3 fixed');
    expect(await page.getByRole('progressbar').getAttribute('aria-valuenow')).toBe('1');
    expect(host.rechecked).toEqual(['screen-lock']);
  });

  it('shows a check that still fails after Check again', async () => {
    await section('disk-encryption').getByRole('button', { name: 'Check again' }).click();
    await expect.poll(() => section('disk-encryption').locator('.note').textContent()).toMatch(/^Still failed\. Checked at /);
    expect(await page.locator('#progress-label').textContent()).toBe('1 of 3 fixed');
  });

  it('has no accessibility violations (axe-core) and no CSP violations', async () => {
    const axe = await runAxe();
    expect(axe.violations).toEqual([]);
    // Guards against a vacuous pass: axe did look at the page (contrast, names, landmarks, …).
    expect(axe.passes).toBeGreaterThan(15);
    expect(cspViolations).toEqual([]);
  });

  it('looks right in light and dark', async () => {
    mkdirSync(SHOTS, { recursive: true });
    await page.emulateMedia({ colorScheme: 'light' });
    await page.screenshot({ path: join(SHOTS, 'walkthrough-light.png'), fullPage: true });
    await page.emulateMedia({ colorScheme: 'dark' });
    expect(await page.evaluate('getComputedStyle(document.body).backgroundColor')).toBe('rgb(13, 17, 23)');
    expect((await runAxe()).violations).toEqual([]);
    await page.screenshot({ path: join(SHOTS, 'walkthrough-dark.png'), fullPage: true });
    await page.emulateMedia({ colorScheme: 'light' });
  });

  it('fixes the second check with the mouse, and progress reads "2 of 3 fixed"', async () => {
    await section('firewall').getByRole('button', { name: 'Open Settings' }).click();
    await expect.poll(() => host.opened.length).toBe(2);
    expect(host.opened[1]).toEqual({ checkId: 'firewall', target: { kind: 'command', argv: ['gufw'] } });
    await section('firewall').getByRole('button', { name: 'Check again' }).click();
    await expect.poll(() => page.locator('#progress-label').textContent()).toBe('2 of 3 fixed');
    expect(await page.getByRole('progressbar').getAttribute('aria-valuetext')).toBe('2 of 3 fixed');
    expect(await page.locator('#summary').textContent()).toBe('1 issue needs fixing. Work through them from the top; each shows the steps for this device.');
    expect(cspViolations).toEqual([]);
  });
});
