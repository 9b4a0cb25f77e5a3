import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startLocalApiServer, type LocalApiServer } from '../../src/agent/local-api-server.js';
import { silentLogger } from '../../src/logging/logger.js';
import { linuxChecks } from '../../src/posture/linux/index.js';
import { AgentConnection } from '../../src/protocol/local-api-client.js';
import { invokeAllowed, WALKTHROUGH_URL } from '../../src/ui/content.js';
import { launchSettings } from '../../src/ui/settings-launcher.js';
import { TrayController } from '../../src/ui/tray-controller.js';
import { configureUpdater, updatePlan } from '../../src/ui/updates.js';
import { configSchema } from '../../src/config/schema.js';
import { sampleReport } from '../helpers/report.js';
import { waitFor } from '../helpers.js';
import { FakeBackend, sampleState } from '../protocol/local-api-fixtures.js';

const display = { now: new Date('2026-12-02T09:00:00Z'), locale: 'en-GB', timeZone: 'UTC' };

/** The tray's logic against a real local API server on a temp socket, with a backend the test controls. */
async function setup(backend = new FakeBackend()): Promise<{ backend: FakeBackend; server: LocalApiServer; tray: TrayController; link: AgentConnection; notes: string[]; socket: string }> {
  const socket = join(mkdtempSync(join(tmpdir(), 'vigil-tray-')), 'agent.sock');
  const server = await startLocalApiServer({ address: socket, backend, logger: silentLogger(), limits: { coalesceMs: 10 } });
  const link = new AgentConnection(socket);
  const tray = new TrayController({
    link,
    remediation: (id) => linuxChecks[id]?.remediation,
    platform: 'linux',
    allowQuit: false,
    notifications: { enabled: true, cooldownMs: 0 },
    startHint: 'sudo systemctl start vigil.service',
    display: () => display,
  });
  const notes: string[] = [];
  tray.on('notify', (d) => notes.push(d.title));
  link.start();
  cleanups.push(async () => {
    link.stop();
    await server.close().catch(() => undefined);
  });
  return { backend, server, tray, link, notes, socket };
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

describe('the tray as a client of the agent', () => {
  it('renders the agent’s posture, identity and reporting, and notifies when access drops', async () => {
    const { backend, tray, notes } = await setup();
    await waitFor(() => tray.agentState, 5000, 'the first state');
    expect(tray.model().icon).toBe('limited');
    expect(tray.model().menu.some((m) => m.type === 'item' && m.id === 'quit')).toBe(false);
    expect(tray.model().menu.find((m) => m.type === 'item' && m.id === 'certificate')).toMatchObject({ label: expect.stringMatching(/^Device certificate valid until /) as string });

    // The offline state comes from the agent's reporting status, not from a guess of the tray's.
    backend.change({ posture: sampleReport(), accessLevel: 'full', reporting: { state: 'offline', controlPlaneUrl: 'https://vigil.example.com', queued: 3, dropped: 0 } });
    await waitFor(() => (tray.model().icon === 'offline' ? true : undefined), 5000, 'offline');
    expect(tray.model().menu[0]).toMatchObject({ label: 'Compliant, but the Vigil server cannot be reached' });

    backend.change({ posture: sampleReport({ failing: ['disk-encryption'] }), accessLevel: 'blocked' });
    await waitFor(() => (tray.model().icon === 'blocked' ? true : undefined), 5000, 'blocked');
    await waitFor(() => (notes.includes('Access blocked: action needed') ? true : undefined), 5000, 'the notification');
  });

  it('re-checks one step of the walkthrough through the agent, and explains a refusal', async () => {
    const { backend, tray } = await setup();
    await waitFor(() => tray.agentState, 5000, 'the first state');
    const walk = tray.openWalkthrough('firewall');
    expect(walk.focus).toBe('firewall');
    expect(walk.checks.map((c) => c.id)).toEqual(['firewall']);
    // The settings page comes from the compiled-in allow-list for this OS, chosen by the device context.
    await waitFor(() => (tray.settingsTarget('firewall') ? true : undefined), 5000, 'the device context');

    await tray.recheck('firewall');
    expect(backend.recheckCalls.at(-1)).toEqual(['firewall']);
    expect(tray.walkthroughModel()?.checks[0]?.recheck).toMatchObject({ phase: 'result', status: 'pass' });

    backend.recheckError = new Error('collector crashed');
    await tray.recheck('firewall');
    expect(tray.walkthroughModel()?.checks[0]?.recheck).toEqual({ phase: 'failed', message: 'The check could not run: collector crashed' });
    tray.closeWalkthrough();
    expect(tray.walkthroughModel()).toBeUndefined();
  });

  it('says the agent is not running when it stops, and picks up again by itself', async () => {
    const { server, tray, socket } = await setup();
    await waitFor(() => tray.agentState, 5000, 'the first state');
    await server.close();
    await waitFor(() => (tray.model().icon === 'offline' ? true : undefined), 5000, 'agent down');
    expect(tray.model().menu.slice(0, 2)).toMatchObject([{ label: 'Vigil agent is not running' }, { label: 'Start it: sudo systemctl start vigil.service' }]);
    expect(await tray.checkNow()).toBe('The Vigil agent is not running, so nothing could be checked.');

    const again = new FakeBackend();
    again.current = sampleState({ pid: 777 });
    const next = await startLocalApiServer({ address: socket, backend: again, logger: silentLogger() });
    cleanups.push(() => next.close());
    await waitFor(() => (tray.agentState?.pid === 777 ? true : undefined), 10_000, 'the reconnect');
    expect(tray.model().icon).toBe('limited');
    expect(tray.about()).toEqual({ agent: '0.1.0 (service mode, pid 777)', policy: expect.stringMatching(/^vigil-default /) as string });
  });
});

describe('what moved out of electron/main.ts', () => {
  it('answers IPC only from the walkthrough window’s top frame showing our page', () => {
    expect(invokeAllowed({ fromWalkthrough: true, topFrame: true, frameUrl: WALKTHROUGH_URL })).toBe(true);
    expect(invokeAllowed({ fromWalkthrough: false, topFrame: true, frameUrl: WALKTHROUGH_URL })).toBe(false);
    expect(invokeAllowed({ fromWalkthrough: true, topFrame: false, frameUrl: WALKTHROUGH_URL })).toBe(false);
    expect(invokeAllowed({ fromWalkthrough: true, topFrame: true, frameUrl: 'https://evil.example/index.html' })).toBe(false);
    expect(invokeAllowed({ fromWalkthrough: true, topFrame: true, frameUrl: undefined })).toBe(false);
  });

  it('opens URLs through the OS handler and runs commands without a shell, saying why when it cannot', async () => {
    const opened: string[] = [];
    expect(await launchSettings({ kind: 'url', url: 'ms-settings:windowsupdate' }, (u) => Promise.resolve(void opened.push(u)))).toEqual({ ok: true });
    expect(opened).toEqual(['ms-settings:windowsupdate']);
    expect(await launchSettings({ kind: 'url', url: 'x-apple.systempreferences:x' }, () => Promise.reject(new Error('no handler')))).toEqual({ ok: false, message: 'Could not open the settings page: no handler' });
    expect(await launchSettings({ kind: 'command', argv: ['true'] }, () => Promise.resolve())).toEqual({ ok: true });
    expect(await launchSettings({ kind: 'command', argv: ['vigil-no-such-settings-tool'] }, () => Promise.resolve())).toEqual({
      ok: false,
      message: 'vigil-no-such-settings-tool is not installed on this device. Follow the steps above instead.',
    });
  });
});

describe('tray updates', () => {
  const loaded = (updates: Record<string, unknown>, managed: string[] = []): Parameters<typeof updatePlan>[0] => ({
    config: configSchema.parse({ updates }),
    managed: new Set(managed),
  });

  it('updates an unmanaged install from its feed, and nothing without one', () => {
    expect(updatePlan(loaded({ feedUrl: 'https://cp.example.com/updates' }))).toEqual({ enabled: true, feedUrl: 'https://cp.example.com/updates/', checkIntervalMs: 6 * 3_600_000 });
    expect(updatePlan(loaded({}))).toEqual({ enabled: false, reason: 'no update feed configured (updates.feedUrl)' });
  });

  it('leaves a managed device to its MDM unless the managed settings turn updates on', () => {
    expect(updatePlan(loaded({ feedUrl: 'https://cp.example.com/u/' }, ['reporting.controlPlaneUrl']))).toEqual({ enabled: false, reason: 'the device is managed: its MDM updates Vigil' });
    expect(updatePlan(loaded({ feedUrl: 'https://cp.example.com/u/', enabled: false }, ['updates.enabled']))).toEqual({ enabled: false, reason: 'turned off by managed settings' });
    expect(updatePlan(loaded({ feedUrl: 'https://cp.example.com/u/', enabled: true }, ['updates.enabled'])).enabled).toBe(true);
  });

  it('sets electron-updater to a generic feed, background download, no downgrade or prerelease', () => {
    const feeds: unknown[] = [];
    const updater = { autoDownload: false, autoInstallOnAppQuit: false, allowDowngrade: true, allowPrerelease: true, setFeedURL: (o: unknown) => void feeds.push(o) };
    const plan = updatePlan(loaded({ feedUrl: 'https://cp.example.com/u/' }));
    if (!plan.enabled) throw new Error('expected updates on');
    configureUpdater(updater, plan);
    expect(updater).toMatchObject({ autoDownload: true, autoInstallOnAppQuit: true, allowDowngrade: false, allowPrerelease: false });
    expect(feeds).toEqual([{ provider: 'generic', url: 'https://cp.example.com/u/' }]);
  });

  it('offers "Restart to update" once a download is verified', async () => {
    const { tray } = await setup();
    await waitFor(() => tray.agentState, 5000, 'the first state');
    tray.setUpdateReady('0.2.0');
    expect(tray.model().menu.find((m) => m.type === 'item' && m.id === 'update')).toMatchObject({ label: 'Restart to update (0.2.0)', action: { kind: 'restart-to-update' } });
  });
});
