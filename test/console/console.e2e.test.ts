import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer, type Server } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Policy } from '../../src/policy/schema.js';
import type { PostureReport } from '../../src/protocol/report.js';
import { AGENT_CLI, CONTROL_PLANE_CLI, httpsCall, issueDeviceCert, startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { isolatedEnv, ROOT, runCliProcess, tempDir, waitFor, type RunResult } from '../helpers.js';
import { sampleReport } from '../helpers/report.js';

/*
 * The admin console in Debian's Chromium against real processes: step-ca, the control plane from its CLI
 * (serving dist/console), a real `vigil daemon` connected to the directives stream, and devices that
 * enrolled like any holder of a secret (a real certificate from step-ca) and sent recorded reports.
 * VIGIL_UPDATE_SCREENSHOTS=1 writes the screenshots into docs/screenshots.
 */

const CHROMIUM = '/usr/bin/chromium';
const CONSOLE_BUILT = join(ROOT, 'dist', 'console', 'index.html');
const built = existsSync(AGENT_CLI) && existsSync(CONTROL_PLANE_CLI) && existsSync(CONSOLE_BUILT) && existsSync(CHROMIUM);
const SHOTS = process.env.VIGIL_UPDATE_SCREENSHOTS === '1' ? join(ROOT, 'docs', 'screenshots') : tempDir('vigil-console-shots-');
const ADMIN = { name: 'alice', password: 'correct horse battery staple 42' };
const XSS = '<img src=x onerror=alert(1)><script>alert(2)</script>';

/** The recorded fleet: hostnames, what fails, and an OS other than the sample's Debian for one. */
const RECORDED: { id: string; host: string; failing?: string[]; unknown?: string[]; user?: string; ubuntu?: boolean }[] = [
  { id: 'ws-berlin-01', host: 'ws-berlin-01' },
  { id: 'ws-berlin-02', host: 'ws-berlin-02', failing: ['not-rooted'] },
  { id: 'ws-paris-03', host: 'ws-paris-03', unknown: ['os-version'], ubuntu: true },
  { id: 'ws-lyon-04', host: 'ws-lyon-04', failing: ['ssh-server'] },
  { id: 'ws-evil-05', host: XSS, user: XSS },
];

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

describe.skipIf(!built)('admin console in Chromium against a real control plane', () => {
  let ca: StepCa;
  let cp: ControlPlane;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let args: string[];
  let daemon: ChildProcess | undefined;
  let daemonLog = '';
  let liveId = '';
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const dialogs: string[] = [];
  const pageErrors: string[] = [];

  const vigil = (more: string[], timeoutMs = 90_000): Promise<RunResult> => runCliProcess([...args, ...more], env, timeoutMs);
  const adminJson = async <T,>(method: string, path: string, body?: unknown): Promise<T> => {
    const r = await cp.admin(method, path, body);
    expect(r.status, `${method} ${path}: ${r.body}`).toBeLessThan(300);
    return JSON.parse(r.body) as T;
  };
  const reportCount = async (id: string): Promise<number> => (await adminJson<{ reports: unknown[] }>('GET', `/v1/admin/devices/${id}/reports?limit=1000`)).reports.length;
  const url = (hash: string): string => `${cp.url}/console/#${hash}`;

  /** What any holder of an enrollment secret does: enroll an id, get its certificate from step-ca, report. */
  const recordedDevice = async (d: (typeof RECORDED)[number]): Promise<void> => {
    const base = sampleReport({ failing: d.failing ?? [], unknown: d.unknown ?? [] });
    const facts: PostureReport['device'] = {
      ...base.device,
      hostname: d.host,
      user: d.user ?? 'alice',
      ...(d.ubuntu === true ? { os: { name: 'Ubuntu 24.04.1 LTS', id: 'ubuntu', version: '24.04', kernel: '6.8.0-45-generic' } } : {}),
    };
    const secret = (await adminJson<{ secret: string }>('POST', '/v1/admin/secrets', { uses: 1 })).secret;
    const r = await httpsCall(`${cp.url}/v1/enroll`, {
      method: 'POST',
      ca: ca.rootPem,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ protocolVersion: 1, enrollmentSecret: secret, deviceId: d.id, facts }),
    });
    expect(r.status, r.body).toBe(200);
    const issued = await issueDeviceCert(ca, dir, d.id, JSON.parse(r.body) as { ott: string; subject: string; sans: string[] });
    const tls = { cert: issued.certPem, key: issued.keyPem };
    const report = { protocolVersion: 1, reportId: randomUUID(), seq: 0, dropped: 0, report: { ...base, device: facts } };
    const sent = await httpsCall(`${cp.url}/v1/reports`, {
      method: 'POST',
      ca: ca.rootPem,
      ...tls,
      agent: false,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(report),
    });
    expect(sent.status, sent.body).toBe(200);
  };

  const signIn = async (p: Page): Promise<void> => {
    await p.goto(url('/'));
    await p.getByLabel('Name').fill(ADMIN.name);
    await p.getByLabel('Password').fill(ADMIN.password);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.getByRole('heading', { name: 'Fleet overview' }).waitFor();
  };

  const newPage = async (c: BrowserContext): Promise<Page> => {
    const p = await c.newPage();
    p.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    p.on('pageerror', (err) => pageErrors.push(err.message));
    p.on('console', (msg) => {
      if (/Content Security Policy|Refused to/i.test(msg.text())) pageErrors.push(msg.text());
    });
    return p;
  };

  const runAxe = async (p: Page): Promise<{ id: string; help: string; nodes: string[] }[]> => {
    const source = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
    // evaluate, not a <script> tag: the console's CSP (rightly) refuses inline scripts.
    await p.evaluate(source);
    return p.evaluate(async () => {
      const { axe, document } = globalThis as unknown as {
        axe: { run: (ctx: unknown, opts: object) => Promise<{ violations: { id: string; help: string; nodes: { target: string[] }[] }[] }> };
        document: unknown;
      };
      const result = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } });
      return result.violations.map((v) => ({ id: v.id, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')) }));
    });
  };

  beforeAll(async () => {
    ca = await startStepCa({ claims: { defaultTLSCertDuration: '1h' } });
    dir = await mkdtemp(join(tmpdir(), 'vigil-e2e-console-'));
    // No heartbeats: every report has a cause the test can attribute.
    cp = await startControlPlane(ca, dir, { reportIntervalSeconds: 3600 });

    // A lenient policy in force: this container lacks disk encryption, patches, EDR, firewall and screen lock,
    // so with those off the real agent is at full access and a change of its posture shows.
    const bundled = JSON.parse(await readFile(join(ROOT, 'src/policy/default-policy.json'), 'utf8')) as Policy;
    await adminJson('PUT', '/v1/admin/policy', {
      ...bundled,
      name: 'acme',
      version: 'console-1',
      checks: { ...bundled.checks, 'os-patched': 'off', 'disk-encryption': 'off', 'edr-running': 'off', firewall: 'off', 'screen-lock': 'off' },
    });

    // As an operator does it on the server host: the password piped on stdin, never on the command line.
    const added = await new Promise<RunResult>((resolve, reject) => {
      const child = spawn(process.execPath, [CONTROL_PLANE_CLI, 'admin', 'add', '--data-dir', cp.dataDir, '--name', ADMIN.name], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => {
        resolve({ code, stdout, stderr });
      });
      child.stdin.end(`${ADMIN.password}\n`);
    });
    expect(added.code, added.stderr).toBe(0);

    for (const d of RECORDED) await recordedDevice(d);

    env = isolatedEnv(join(dir, 'home'));
    await writeFile(
      join(dir, 'agent.json'),
      JSON.stringify({ identity: { keyStorage: 'file' }, reporting: { controlPlaneUrl: cp.url, debounceMs: 200 }, scan: { intervalSeconds: 3600 } }),
    );
    args = ['--config', join(dir, 'agent.json'), '--state-dir', join(dir, 'agent-state')];
    const enrolled = await vigil(['enroll', '--control-plane', cp.url, '--enrollment-secret', await cp.secret(), '--ca-url', ca.url, '--fingerprint', ca.rootFingerprint]);
    expect(enrolled.code, `${enrolled.stderr}\n${cp.log()}`).toBe(0);
    liveId = (JSON.parse((await vigil(['identity', '--json'])).stdout) as { deviceId: string }).deviceId;
    const proc = spawn(process.execPath, [AGENT_CLI, ...args, 'daemon'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    daemon = proc;
    proc.stdout.on('data', (d: Buffer) => (daemonLog += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (daemonLog += d.toString()));
    await waitFor(async () => ((await reportCount(liveId)) >= 1 ? true : undefined), 60_000, `a report from the daemon:\n${daemonLog}`);

    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 }, colorScheme: 'light' });
    page = await newPage(context);
    mkdirSync(SHOTS, { recursive: true });
  }, 240_000);

  afterAll(async () => {
    await browser.close();
    daemon?.kill('SIGKILL');
    await cp.stop();
    await ca.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('without a session every page leads to sign-in, and the API refuses', async () => {
    const fresh = await browser.newContext({ ignoreHTTPSErrors: true });
    const p = await newPage(fresh);
    await p.goto(url('/devices'));
    await p.getByRole('heading', { name: 'Sign in to Vigil' }).waitFor();
    expect(new URL(p.url()).hash).toBe('#/sign-in?next=%2Fdevices');
    expect(await p.evaluate(async () => (await fetch('/v1/admin/devices')).status)).toBe(401);
    // A wrong password: the same message as an unknown name.
    await p.getByLabel('Name').fill(ADMIN.name);
    await p.getByLabel('Password').fill('not the password');
    const answer = p.waitForResponse((r) => r.url().endsWith('/console/api/session') && r.request().method() === 'POST');
    await p.getByRole('button', { name: 'Sign in' }).click();
    expect((await answer).status()).toBe(401);
    await expect.poll(() => p.getByRole('alert').textContent()).toBe('wrong name or password');
    await fresh.close();
  }, 60_000);

  it('signs in with a session cookie the page cannot read, and the overview counts the fleet', async () => {
    await signIn(page);
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === '__Host-vigil_session');
    expect(session).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Strict', path: '/' });
    expect(await page.evaluate<string>('document.cookie')).toBe('');
    expect(new URL(page.url()).search).toBe('');

    const count = (k: string) => page.locator(`[data-count="${k}"]`).textContent();
    await expect.poll(() => count('total')).toBe(String(RECORDED.length + 1));
    // ws-berlin-02 fails a critical check; ws-paris-03 cannot tell one (unknown on critical: limited).
    expect(await count('blocked')).toBe('1');
    expect(await count('limited')).toBe('1');
    expect(await count('full')).toBe(String(RECORDED.length - 1));
    expect(await page.getByRole('heading', { name: 'Checks that fail most' }).isVisible()).toBe(true);
    await page.screenshot({ path: join(SHOTS, 'console-overview-light.png'), fullPage: true });
  }, 60_000);

  it('finds the failing devices with the filters', async () => {
    await page.getByRole('link', { name: 'Devices', exact: true }).click();
    await page.getByRole('heading', { name: 'Devices' }).waitFor();
    await expect.poll(() => page.locator('tbody tr').count()).toBe(RECORDED.length + 1);
    await page.getByLabel('Access level').selectOption('blocked');
    await expect.poll(() => page.locator('tbody tr th').allTextContents()).toEqual(['ws-berlin-02']);
    await page.getByLabel('Access level').selectOption('');
    await page.getByLabel('Failing check').selectOption('ssh-server');
    await expect.poll(() => page.locator('tbody tr th').allTextContents()).toEqual(['ws-lyon-04']);
    await page.getByLabel('Failing check').selectOption('');
    await page.getByLabel('Operating system').selectOption('ubuntu');
    await expect.poll(() => page.locator('tbody tr th').allTextContents()).toEqual(['ws-paris-03']);
    await page.getByRole('link', { name: 'Clear' }).click();
    await expect.poll(() => page.locator('tbody tr').count()).toBe(RECORDED.length + 1);
    await page.getByLabel('Search').fill('berlin');
    await page.getByLabel('Search').press('Enter');
    await expect.poll(async () => (await page.locator('tbody tr th').allTextContents()).sort()).toEqual(['ws-berlin-01', 'ws-berlin-02']);
    await page.screenshot({ path: join(SHOTS, 'console-devices-light.png'), fullPage: true });

    // Pages by cursor: four rows, then the other two, then back.
    await page.goto(url('/devices?size=4'));
    const hosts = () => page.locator('tbody tr th').allTextContents();
    await expect.poll(async () => (await hosts()).length).toBe(4);
    const first = await hosts();
    await page.getByRole('button', { name: 'Next' }).click();
    await expect.poll(() => page.locator('caption').textContent()).toBe(`Devices 5–${RECORDED.length + 1}`);
    expect((await hosts()).filter((h) => first.includes(h))).toEqual([]);
    expect(await page.getByRole('button', { name: 'Previous' }).isDisabled()).toBe(false);
    await page.getByRole('button', { name: 'Previous' }).click();
    await expect.poll(hosts).toEqual(first);
    expect(await page.getByRole('button', { name: 'Previous' }).isDisabled()).toBe(true);
    await page.goto(url('/devices?q=berlin'));
    await page.getByRole('link', { name: 'ws-berlin-02' }).click();
    await page.getByRole('heading', { name: 'ws-berlin-02' }).waitFor();
    const row = page.locator('tr[data-check="not-rooted"]');
    expect(await row.locator('.badge').textContent()).toBe('fail');
    expect(await row.locator('.evidence').textContent()).toContain('kernelTainted');
    await page.screenshot({ path: join(SHOTS, 'console-device-light.png'), fullPage: true });
  }, 60_000);

  it('drafts a stricter policy: the agents\' parser refuses a bad one, the preview counts the change, then it is saved', async () => {
    await page.getByRole('link', { name: 'Policy' }).click();
    const editor = page.getByLabel('Policy (JSON)');
    await expect.poll(() => editor.inputValue()).toContain('"version": "console-1"');
    const current = await editor.inputValue();

    await editor.fill(current.replace('"ssh-server": "info"', '"ssh-server": "fatal"').replace('"console-1"', '"console-2"'));
    await page.getByRole('button', { name: 'Validate and preview' }).click();
    await expect.poll(() => page.locator('.errors li').allTextContents()).toEqual([expect.stringMatching(/^checks\.ssh-server: /)]);
    expect(await page.getByRole('button', { name: 'Save policy' }).isDisabled()).toBe(true);

    await editor.fill(current.replace('"ssh-server": "info"', '"ssh-server": "critical"').replace('"console-1"', '"console-2"'));
    await page.getByRole('button', { name: 'Validate and preview' }).click();
    // Only ws-lyon-04 listens for SSH: it alone would go from full to blocked.
    await expect.poll(() => page.locator('[data-preview-changed]').getAttribute('data-preview-changed')).toBe('1');
    expect(await page.locator('[data-preview-changed]').textContent()).toContain(`1 of ${RECORDED.length + 1} devices would change level: 0 to full, 0 to limited, 1 to blocked.`);
    expect(await page.locator('.preview tbody tr').allTextContents()).toEqual(['ws-lyon-04fullblocked']);
    expect(await page.locator('.diff .del').allTextContents()).toEqual(['-   "version": "console-1",\n', '-     "ssh-server": "info",\n']);
    expect(await page.locator('.diff .add').allTextContents()).toEqual(['+   "version": "console-2",\n', '+     "ssh-server": "critical",\n']);
    await page.screenshot({ path: join(SHOTS, 'console-policy-light.png'), fullPage: true });

    const savedAt = Date.now();
    const reportsBefore = await reportCount(liveId);
    await page.getByRole('button', { name: 'Save policy' }).click();
    await expect.poll(() => page.getByRole('status').filter({ hasText: 'now in force' }).count()).toBe(1);
    const inForce = JSON.parse((await cp.admin('GET', '/v1/policy')).body) as Policy;
    expect([inForce.version, inForce.checks['ssh-server']]).toEqual(['console-2', 'critical']);
    expect((await adminJson<{ device: { access_level: string } }>('GET', '/v1/decision/ws-lyon-04')).device.access_level).toBe('blocked');
    // The daemon rescans under the pushed policy; wait for that report so the re-check below is the next one.
    await waitFor(async () => ((await reportCount(liveId)) > reportsBefore ? true : undefined), 60_000, `the daemon's report under console-2:\n${daemonLog}`);
    expect(Date.now() - savedAt).toBeLessThan(60_000);
  }, 120_000);

  it('re-checks the real agent and its row changes live, then revokes it', async () => {
    const level = (await adminJson<{ device: { access_level: string } }>('GET', `/v1/decision/${liveId}`)).device.access_level;
    expect(level, 'the agent must start at full access for a change to show').toBe('full');

    const list = await newPage(context);
    await list.goto(url(`/devices?q=${encodeURIComponent(liveId)}`));
    const row = list.locator(`tr[data-device="${liveId}"]`);
    await expect.poll(() => row.locator('.badge').textContent()).toBe('full');
    // A marker that a reload would wipe: the row must change in place.
    await list.evaluate(() => {
      (globalThis as unknown as { marker: number }).marker = 42;
    });

    await page.goto(url(`/devices/${liveId}`));
    await page.getByRole('heading', { name: hostname() }).waitFor();
    // Something on the device changes: an SSH server starts listening (the policy now calls that critical).
    const ssh: Server = createServer();
    await new Promise<void>((resolve, reject) => {
      ssh.once('error', reject);
      ssh.listen(22, '0.0.0.0', resolve);
    });
    try {
      await page.getByRole('button', { name: 'Re-check now' }).click();
      await page.getByRole('dialog').getByRole('button', { name: 'Re-check now' }).click();
      await expect.poll(() => page.getByRole('status').filter({ hasText: 'Re-check requested' }).count()).toBe(1);
      await expect.poll(() => row.locator('.badge').textContent(), { timeout: 60_000 }).toBe('blocked');
    } finally {
      await new Promise((r) => ssh.close(r));
    }
    expect(await row.getAttribute('class')).toBe('changed');
    expect(await list.evaluate(() => (globalThis as unknown as { marker?: number }).marker)).toBe(42);
    await expect.poll(() => page.locator('tr[data-check="ssh-server"] .badge').textContent(), { timeout: 15_000 }).toBe('fail');

    await page.getByRole('button', { name: 'Revoke' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Revoke' }).click();
    await expect.poll(() => row.locator('.badge').textContent(), { timeout: 15_000 }).toBe('revoked');
    expect((await adminJson<{ device: { state: string } }>('GET', `/v1/decision/${liveId}`)).device.state).toBe('revoked');
    await list.close();

    // The live page has kept the stream's events since sign-in: the re-check's change and the revocation.
    await page.getByRole('link', { name: 'Live events' }).click();
    const entries = page.locator('ol.events li', { hasText: liveId });
    await expect.poll(() => entries.allTextContents()).toEqual([expect.stringMatching(/blocked.*revoked.*\(revoked\)$/), expect.stringMatching(/full.*blocked.*\(report\)$/)]);
    await page.screenshot({ path: join(SHOTS, 'console-events-light.png') });

    await page.getByRole('link', { name: 'Audit log' }).click();
    await expect.poll(() => page.locator('tbody tr').count()).toBeGreaterThan(3);
    const rows = await page.locator('tbody tr').allTextContents();
    for (const action of ['device.revoke', 'device.recheck', 'policy.update', 'session.signin']) {
      expect(rows.some((r) => r.includes('admin:alice') && r.includes(action)), action).toBe(true);
    }
    await page.screenshot({ path: join(SHOTS, 'console-audit-light.png'), fullPage: true });
  }, 120_000);

  it('creates an enrollment secret shown once, and revokes it', async () => {
    await page.getByRole('link', { name: 'Enrollment secrets' }).click();
    await page.getByLabel('Label').fill('Lyon laptops');
    await page.getByLabel('Uses').fill('3');
    await page.getByRole('button', { name: 'Create secret' }).click();
    const dialog = page.getByRole('dialog', { name: 'Enrollment secret created' });
    const secret = await dialog.getByLabel('Secret').inputValue();
    expect(secret.length).toBeGreaterThan(20);
    await dialog.getByRole('button', { name: 'Done' }).click();
    expect(await page.locator('body').textContent()).not.toContain(secret);
    const row = page.locator('tr', { hasText: 'Lyon laptops' });
    await page.screenshot({ path: join(SHOTS, 'console-secrets-light.png') });
    expect(await row.textContent()).toContain('3 of 3');
    await row.getByRole('button', { name: /Revoke/ }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Revoke' }).click();
    await expect.poll(() => row.textContent()).toContain('revoked');

    // Fifty newer secrets push it to the second page.
    for (let i = 0; i < 50; i++) expect((await cp.admin('POST', '/v1/admin/secrets', { uses: 1, label: `batch ${i}` })).status).toBe(201);
    await page.reload();
    await page.getByRole('heading', { name: 'Enrollment secrets', level: 1 }).waitFor();
    await expect.poll(() => page.locator('tbody tr').count()).toBe(50);
    expect(await page.locator('tr', { hasText: 'Lyon laptops' }).count()).toBe(0);
    await page.getByRole('button', { name: 'Next' }).click();
    await expect.poll(() => page.locator('tr', { hasText: 'Lyon laptops' }).count()).toBe(1);
    expect(await page.getByRole('button', { name: 'Next' }).isDisabled()).toBe(true);
    await page.getByRole('button', { name: 'Previous' }).click();
    await expect.poll(() => page.locator('tr', { hasText: 'batch 49' }).count()).toBe(1);
  }, 60_000);

  it('refuses a state-changing request without the CSRF token or from another origin', async () => {
    const status = (headers: Record<string, string>) =>
      page.evaluate(async (h) => {
        const r = await fetch('/v1/admin/devices/ws-berlin-01/recheck', { method: 'POST', headers: h });
        return { status: r.status, body: await r.text() };
      }, headers);
    const attempts: Record<string, string>[] = [{}, { 'x-csrf-token': 'not-the-token' }];
    for (const h of attempts) {
      const r = await status(h);
      expect(r.status).toBe(403);
      expect(JSON.parse(r.body)).toMatchObject({ error: 'missing or wrong CSRF token' });
    }
    // The right token from another origin (the cookie would ride along with a cross-site form or fetch).
    const session = await page.evaluate(async () => (await (await fetch('/console/api/session')).json()) as { csrf: string });
    const cookie = (await context.cookies()).find((c) => c.name === '__Host-vigil_session');
    const foreign = await httpsCall(`${cp.url}/v1/admin/devices/ws-berlin-01/recheck`, {
      method: 'POST',
      ca: ca.rootPem,
      headers: { cookie: `__Host-vigil_session=${cookie?.value ?? ''}`, 'x-csrf-token': session.csrf, origin: 'https://evil.example' },
    });
    expect(foreign.status).toBe(403);
    const same = await httpsCall(`${cp.url}/v1/admin/devices/ws-berlin-01/recheck`, {
      method: 'POST',
      ca: ca.rootPem,
      headers: { cookie: `__Host-vigil_session=${cookie?.value ?? ''}`, 'x-csrf-token': session.csrf, origin: cp.url },
    });
    expect(same.status, same.body).toBe(202);
  }, 60_000);

  it('renders HTML and script in device facts as text, and removes that device', async () => {
    await page.goto(url(`/devices?q=evil`));
    await expect.poll(() => page.locator('tbody tr th').allTextContents()).toEqual([XSS]);
    await page.locator('tbody tr th a').click();
    await page.getByRole('heading', { name: XSS }).waitFor();
    expect(await page.locator('.facts').first().textContent()).toContain(`User${XSS}`);
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.locator('body script').count()).toBe(0);
    expect(dialogs).toEqual([]);

    // Removed from its page, behind a confirmation: back on the list, it is gone.
    await page.getByRole('button', { name: 'Remove' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Remove' }).click();
    await page.getByRole('heading', { name: 'Devices', level: 1 }).waitFor();
    await expect.poll(() => page.locator('tbody tr th').allTextContents()).not.toContain(XSS);
    expect((await cp.admin('GET', '/v1/admin/devices/ws-evil-05')).status).toBe(404);
  }, 60_000);

  it('passes axe on every page in both themes, and the toggle is remembered', async () => {
    const pages: [string, string][] = [
      ['/', 'Fleet overview'],
      ['/devices', 'Devices'],
      [`/devices/ws-berlin-02`, 'ws-berlin-02'],
      ['/policy', 'Policy'],
      ['/secrets', 'Enrollment secrets'],
      ['/events', 'Live events'],
      ['/audit', 'Audit log'],
    ];
    const found: Record<string, unknown> = {};
    for (const scheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      for (const [hash, title] of pages) {
        await page.goto(url(hash));
        await page.getByRole('heading', { name: title, exact: true, level: 1 }).waitFor();
        // Let the page's data arrive: axe checks what is shown.
        await page.waitForLoadState('networkidle').catch(() => undefined);
        await page.waitForTimeout(300);
        const v = await runAxe(page);
        if (v.length > 0) found[`${scheme} ${hash}`] = v;
        if (scheme === 'dark' && ['/', '/devices', `/devices/ws-berlin-02`, '/policy'].includes(hash)) {
          const name = hash === '/' ? 'overview' : hash === '/devices' ? 'devices' : hash === '/policy' ? 'policy' : 'device';
          await page.screenshot({ path: join(SHOTS, `console-${name}-dark.png`), fullPage: true });
        }
      }
    }
    const signin = await browser.newContext({ ignoreHTTPSErrors: true, colorScheme: 'dark' });
    const sp = await newPage(signin);
    await sp.goto(url('/'));
    await sp.getByRole('heading', { name: 'Sign in to Vigil' }).waitFor();
    const sv = await runAxe(sp);
    if (sv.length > 0) found['dark sign-in'] = sv;
    await sp.screenshot({ path: join(SHOTS, 'console-signin-dark.png') });
    await sp.emulateMedia({ colorScheme: 'light' });
    const lv = await runAxe(sp);
    if (lv.length > 0) found['light sign-in'] = lv;
    await signin.close();
    expect(found).toEqual({});

    // The toggle overrides the OS preference and survives a reload.
    await page.emulateMedia({ colorScheme: 'light' });
    await page.goto(url('/'));
    await page.getByRole('button', { name: 'Dark theme' }).click();
    expect(await page.evaluate<string | undefined>('document.documentElement.dataset.theme')).toBe('dark');
    await page.reload();
    await page.getByRole('heading', { name: 'Fleet overview' }).waitFor();
    expect(await page.evaluate<string>('getComputedStyle(document.body).backgroundColor')).toBe('rgb(20, 23, 27)');
    expect(await page.getByRole('button', { name: 'Dark theme' }).getAttribute('aria-pressed')).toBe('true');
    await page.getByRole('button', { name: 'Dark theme' }).click();
    expect(pageErrors).toEqual([]);
  }, 180_000);

  it('is usable with the keyboard alone (sign in, filter, open a device, a confirmation with Escape) and returns to sign-in when the session ends', async () => {
    const kc = await browser.newContext({ ignoreHTTPSErrors: true });
    const p = await newPage(kc);
    await p.goto(url('/'));
    await p.getByRole('heading', { name: 'Sign in to Vigil' }).waitFor();
    // "tag#id:text" of the focused element (a string expression: the tests compile without the DOM lib).
    const focused = () =>
      p.evaluate<string>(`(() => {
        const a = document.activeElement;
        return a ? a.tagName.toLowerCase() + (a.id ? '#' + a.id : '') + ':' + (a.textContent ?? '').trim() : '';
      })()`);
    const tabTo = async (want: RegExp, max = 40): Promise<void> => {
      for (let i = 0; i < max; i++) {
        await p.keyboard.press('Tab');
        if (want.test(await focused())) return;
      }
      throw new Error(`Tab never reached ${String(want)}; last ${await focused()}`);
    };
    expect(await focused()).toMatch(/^input#signin-name/);
    await p.keyboard.type(ADMIN.name);
    await p.keyboard.press('Tab');
    await p.keyboard.type(ADMIN.password);
    await p.keyboard.press('Enter');
    await p.getByRole('heading', { name: 'Fleet overview' }).waitFor();

    // On a page loaded from the address bar the skip link comes first, and moves focus to the content.
    await p.reload();
    await p.getByRole('heading', { name: 'Fleet overview' }).waitFor();
    await p.keyboard.press('Tab');
    expect(await focused()).toBe('a:Skip to content');
    expect(await p.evaluate<string>("getComputedStyle(document.querySelector('.skip-link')).outlineStyle")).not.toBe('none');
    await p.keyboard.press('Enter');
    expect(await focused()).toMatch(/^main#main:/);
    await tabTo(/^a:Devices$/, 80);
    await p.keyboard.press('Enter');
    await p.getByRole('heading', { name: 'Devices' }).waitFor();
    await tabTo(/^select#f-level/);
    await p.keyboard.press('ArrowDown');
    await expect.poll(() => new URL(p.url()).hash).toBe('#/devices?level=full');
    await p.keyboard.press('ArrowDown');
    await expect.poll(() => new URL(p.url()).hash).toBe('#/devices?level=limited');
    await expect.poll(() => p.locator('tbody tr th').allTextContents()).toEqual(['ws-paris-03']);
    await tabTo(/^a:ws-paris-03$/);
    await p.keyboard.press('Enter');
    await p.getByRole('heading', { name: 'ws-paris-03' }).waitFor();
    await tabTo(/^button:Re-check now$/);
    await p.keyboard.press('Enter');
    await p.getByRole('dialog').waitFor();
    expect(await focused()).toMatch(/^button:(Cancel|Re-check now)$/);
    // Focus stays in the dialog.
    for (let i = 0; i < 4; i++) {
      await p.keyboard.press('Tab');
      expect(await p.evaluate<boolean>("document.activeElement?.closest('dialog') != null")).toBe(true);
    }
    await p.keyboard.press('Escape');
    await expect.poll(() => p.getByRole('dialog').count()).toBe(0);
    expect(await focused()).toBe('button:Re-check now');

    // Signed out in another tab: the next action here finds the session gone and goes back to sign-in.
    const other = await newPage(kc);
    await other.goto(url('/'));
    await other.getByRole('button', { name: 'Sign out' }).click();
    await other.getByRole('heading', { name: 'Sign in to Vigil' }).waitFor();
    await p.keyboard.press('Enter');
    await p.getByRole('dialog').getByRole('button', { name: 'Re-check now' }).click();
    await p.getByRole('heading', { name: 'Sign in to Vigil' }).waitFor();
    expect(await p.locator('.notice').textContent()).toMatch(/session has ended/);
    expect(new URL(p.url()).hash).toBe('#/sign-in?next=%2Fdevices%2Fws-paris-03');
    await kc.close();
  }, 90_000);
});
