import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  app,
  BrowserWindow,
  dialog,
  ipcMain,
  Menu,
  nativeImage,
  Notification,
  protocol,
  session,
  shell,
  Tray,
  type IpcMainInvokeEvent,
  type MenuItemConstructorOptions,
  type NativeImage,
} from 'electron';
import { startDaemon, type DaemonHandle } from '../src/agent/daemon.js';
import { DEFAULT_DAEMON_EXTENSIONS } from '../src/agent/extensions.js';
import { IdentityManager, type IdentityStatus } from '../src/identity/manager.js';
import type { DeepLinkTarget } from '../src/posture/remediation/deeplinks.js';
import type { DeviceContext } from '../src/posture/remediation/types.js';
import { loadRuntime, type Runtime } from '../src/runtime.js';
import { writeFileAtomic } from '../src/state/atomic.js';
import { parseTrayArgs } from '../src/ui/args.js';
import { autostartPath, desktopEntry } from '../src/ui/autostart.js';
import { APP_SCHEME, CONTENT_SECURITY_POLICY, isTrustedSender, resolveAsset, WALKTHROUGH_URL } from '../src/ui/content.js';
import { IPC, parseInvokeArgs, type InvokeArgs, type InvokeChannel, type InvokeResult, type OpenSettingsResult } from '../src/ui/ipc.js';
import { NotificationPlanner, type NotificationDecision } from '../src/ui/notifications.js';
import { trayModel, type TrayAction, type TrayIconState, type TrayMenuItem } from '../src/ui/tray.js';
import { WalkthroughSession } from '../src/ui/walkthrough.js';
import { AGENT_VERSION } from '../src/version.js';

/*
 * The tray is a thin shell: the agent, its schedule and every decision about what to show live in src/.
 * This file turns view-models into Electron calls and guards the one window we ever open.
 */

const HERE = dirname(fileURLToPath(import.meta.url));
const RENDERER_DIR = join(HERE, 'renderer');
const PRELOAD = join(HERE, 'preload.cjs');
const ICON_DIR = join(HERE, '..', '..', 'build', 'icons', 'tray');

const args = parseTrayArgs(process.argv.slice(1));

// Before `ready`: a standard, secure scheme gets an origin of its own, so CSP 'self' means our files only.
protocol.registerSchemesAsPrivileged([{ scheme: APP_SCHEME, privileges: { standard: true, secure: true } }]);

interface Walkthrough {
  window: BrowserWindow;
  session: WalkthroughSession;
}

interface Shell {
  runtime: Runtime;
  daemon: DaemonHandle;
  tray: Tray;
  planner: NotificationPlanner;
  walkthrough?: Walkthrough;
  /** A scan the user asked for: the tray shows "checking" only for those and the first one. */
  userScan: boolean;
  /** Held so the click handler is not collected, and closed when the next one replaces it. */
  notification?: Notification;
  identityManager: IdentityManager;
  /** Shown only once the device has a CA configured or an identity: an agent used for posture alone has none. */
  identity?: IdentityStatus;
}

let shellState: Shell | undefined;
let stopped = false;
/** Read once after start: which OS, desktop and distro the walkthrough's instructions are for. */
let deviceContext: DeviceContext | undefined;

const icons = new Map<TrayIconState, NativeImage>();

/** macOS gets monochrome template images, Windows ICOs, Linux PNGs at 1x and 2x for the panel's scale. */
function trayImage(state: TrayIconState): NativeImage {
  const cached = icons.get(state);
  if (cached) return cached;
  let image: NativeImage;
  if (process.platform === 'darwin') {
    image = nativeImage.createFromPath(join(ICON_DIR, `${state}Template.png`));
    image.setTemplateImage(true);
  } else if (process.platform === 'win32') {
    image = nativeImage.createFromPath(join(ICON_DIR, `${state}.ico`));
  } else {
    image = nativeImage.createFromPath(join(ICON_DIR, `${state}-22.png`));
    image.addRepresentation({ scaleFactor: 2, buffer: readFileSync(join(ICON_DIR, `${state}-44.png`)) });
  }
  icons.set(state, image);
  return image;
}

async function refreshIdentity(s: Shell): Promise<void> {
  const status = await s.identityManager.status().catch(() => undefined);
  const configured = Boolean(s.runtime.loaded.config.identity.caUrl);
  s.identity = status && (configured || status.state !== 'not-enrolled') ? status : undefined;
}

function renderTray(s: Shell): void {
  const report = s.daemon.agent.report;
  const model = trayModel({
    report,
    ...(s.identity ? { identity: s.identity } : {}),
    checking: s.userScan || (!report && s.daemon.agent.scanning),
    allowQuit: s.runtime.loaded.config.ui.allowQuit,
    display: { now: new Date(), locale: app.getLocale() },
  });
  s.tray.setImage(trayImage(model.icon));
  s.tray.setToolTip(model.tooltip);
  // Linux rebuilds its indicator menu only when a new one is set, so every change sets the whole menu.
  s.tray.setContextMenu(Menu.buildFromTemplate(model.menu.map((m) => menuItem(s, m))));
}

function menuItem(s: Shell, m: TrayMenuItem): MenuItemConstructorOptions {
  if (m.type === 'separator') return { type: 'separator' };
  const { action } = m;
  return {
    id: m.id,
    label: m.label,
    enabled: m.enabled,
    ...(action ? { click: () => void perform(s, action) } : {}),
  };
}

async function perform(s: Shell, action: TrayAction): Promise<void> {
  switch (action.kind) {
    case 'open-walkthrough':
      openWalkthrough(s, action.checkId);
      return;
    case 'check-now':
      await checkNow(s);
      return;
    case 'open-logs': {
      const problem = await shell.openPath(s.runtime.loaded.logDir);
      if (problem) s.runtime.logger.warn(`cannot open the logs folder: ${problem}`);
      return;
    }
    case 'about':
      await dialog.showMessageBox({
        type: 'info',
        title: 'About Vigil',
        message: `Vigil ${AGENT_VERSION}`,
        detail: `Endpoint posture agent.\nPolicy: ${s.runtime.policy.name} ${s.runtime.policy.version}\nElectron ${process.versions.electron}`,
        buttons: ['OK'],
      });
      return;
    case 'quit':
      app.quit();
      return;
  }
}

async function checkNow(s: Shell): Promise<void> {
  s.userScan = true;
  renderTray(s);
  try {
    await s.daemon.agent.scan();
  } catch (err) {
    s.runtime.logger.error(`check now failed: ${(err as Error).message}`);
  } finally {
    s.userScan = false;
    renderTray(s);
  }
}

function notify(s: Shell, d: NotificationDecision): void {
  if (!Notification.isSupported()) return;
  const n = new Notification({ title: d.title, body: d.body, urgency: d.urgency, icon: trayImage(d.urgency === 'critical' ? 'blocked' : 'limited') });
  n.on('click', () => {
    openWalkthrough(s, d.checkId);
  });
  // One Vigil notification at a time: a newer one replaces, rather than stacks on, the last.
  s.notification?.close();
  s.notification = n;
  n.show();
}

function pushState(w: Walkthrough): void {
  if (!w.window.isDestroyed()) w.window.webContents.send(IPC.state, w.session.model());
}

function openWalkthrough(s: Shell, focus?: string): void {
  if (s.walkthrough) {
    if (focus !== undefined) s.walkthrough.session.focus = focus;
    pushState(s.walkthrough);
    s.walkthrough.window.show();
    s.walkthrough.window.focus();
    return;
  }
  const remediation = (id: string) => s.runtime.support.checks[id]?.remediation;
  const session = new WalkthroughSession({ device: deviceContext ?? { platform: s.runtime.platform }, remediation }, s.daemon.agent.report, focus);
  const window = new BrowserWindow({
    width: 760,
    height: 820,
    minWidth: 420,
    minHeight: 360,
    show: false,
    title: 'Vigil: fix issues',
    autoHideMenuBar: true,
    webPreferences: {
      preload: PRELOAD,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      experimentalFeatures: false,
      navigateOnDragDrop: false,
      spellcheck: false,
      // Middle-click opens links in new windows without going through setWindowOpenHandler's intent.
      disableBlinkFeatures: 'Auxclick',
      devTools: !app.isPackaged,
    },
  });
  window.removeMenu();
  const w: Walkthrough = { window, session };
  s.walkthrough = w;
  window.once('ready-to-show', () => {
    window.show();
  });
  // Closing destroys the window and its renderer process: a tray app keeps no hidden renderer at idle.
  window.on('closed', () => {
    if (s.walkthrough === w) delete s.walkthrough;
  });
  window.loadURL(WALKTHROUGH_URL).catch((err: unknown) => {
    s.runtime.logger.error(`cannot load the walkthrough: ${(err as Error).message}`);
  });
}

/** Guards every invoke: the sender must be our walkthrough's top frame showing our page, the arguments must parse. */
function handle<C extends InvokeChannel>(channel: C, fn: (s: Shell, w: Walkthrough, args: InvokeArgs<C>) => Promise<InvokeResult<C>>): void {
  ipcMain.handle(channel, async (event: IpcMainInvokeEvent, ...raw: unknown[]) => {
    const s = shellState;
    const w = s?.walkthrough;
    const frame = event.senderFrame;
    if (!s || !w || event.sender !== w.window.webContents || !frame || frame.parent !== null || !isTrustedSender(frame.url)) {
      throw new Error(`${channel}: refused: not from the walkthrough page`);
    }
    const parsed = parseInvokeArgs(channel, raw);
    if (!parsed.ok) {
      s.runtime.logger.warn(parsed.problem);
      throw new Error(parsed.problem);
    }
    return fn(s, w, parsed.args);
  });
}

function launch(target: DeepLinkTarget): Promise<OpenSettingsResult> {
  if (target.kind === 'url') {
    // The URL comes from the compiled-in allow-list (DEEP_LINKS), never from the renderer or a server.
    return shell.openExternal(target.url).then(
      () => ({ ok: true }),
      (err: unknown) => ({ ok: false, message: `Could not open the settings page: ${(err as Error).message}` }),
    );
  }
  const [program, ...rest] = target.argv;
  if (program === undefined) return Promise.resolve({ ok: false, message: 'No settings page for this step.' });
  return new Promise((resolve) => {
    // Fixed argv, no shell: nothing from the page reaches the command line.
    const child = spawn(program, rest, { detached: true, stdio: 'ignore', shell: false });
    child.once('spawn', () => {
      child.unref();
      resolve({ ok: true });
    });
    child.once('error', (err: NodeJS.ErrnoException) => {
      resolve({
        ok: false,
        message: err.code === 'ENOENT' ? `${program} is not installed on this device. Follow the steps above instead.` : `Could not start ${program}: ${err.message}`,
      });
    });
  });
}

function registerIpc(): void {
  handle(IPC.getState, (_s, w) => Promise.resolve(w.session.model()));
  handle(IPC.checkAgain, async (s, w, [checkId]) => {
    if (!w.session.startRecheck(checkId)) return undefined;
    pushState(w);
    try {
      const outcome = await s.daemon.agent.scan([checkId]);
      w.session.finishRecheck(checkId, outcome.report);
    } catch (err) {
      w.session.failRecheck(checkId, `The check could not run: ${(err as Error).message}`);
    }
    pushState(w);
    return undefined;
  });
  handle(IPC.openSettings, (_s, w, [checkId]) => {
    const target = w.session.settingsTarget(checkId);
    return target ? launch(target) : Promise.resolve({ ok: false, message: 'There is no settings page for this step on this device.' });
  });
}

/** Web content may only ever show our page: no navigation, no new windows, no permissions, no network. */
function lockDownWebContents(): void {
  app.on('web-contents-created', (_e, contents) => {
    contents.setWindowOpenHandler(() => ({ action: 'deny' }));
    contents.on('will-navigate', (e) => {
      e.preventDefault();
    });
    contents.on('will-redirect', (e) => {
      e.preventDefault();
    });
    contents.on('will-attach-webview', (e) => {
      e.preventDefault();
    });
  });
  const ses = session.defaultSession;
  ses.setPermissionRequestHandler((_wc, _permission, callback) => {
    callback(false);
  });
  ses.setPermissionCheckHandler(() => false);
  ses.webRequest.onBeforeRequest((details, callback) => {
    callback({ cancel: !details.url.startsWith(`${APP_SCHEME}://`) && !details.url.startsWith('devtools://') });
  });
  ses.protocol.handle(APP_SCHEME, async (request) => {
    const asset = resolveAsset(request.url);
    if (!asset) return new Response('not found', { status: 404 });
    const body = await readFile(join(RENDERER_DIR, asset.file));
    return new Response(body, {
      headers: { 'content-type': asset.contentType, 'content-security-policy': CONTENT_SECURITY_POLICY, 'x-content-type-options': 'nosniff' },
    });
  });
}

/** Login items on macOS and Windows; an XDG autostart entry on Linux. Development builds never register. */
async function applyStartAtLogin(runtime: Runtime): Promise<void> {
  if (!app.isPackaged) return;
  const enabled = runtime.loaded.config.ui.startAtLogin;
  if (process.platform === 'linux') {
    const file = autostartPath();
    if (enabled) await writeFileAtomic(file, desktopEntry({ exec: [process.env.APPIMAGE ?? process.execPath, '--hidden'], icon: 'vigil' }), 0o644);
    else await rm(file, { force: true });
    return;
  }
  app.setLoginItemSettings({ openAtLogin: enabled, args: ['--hidden'] });
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_r, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
    }, ms);
  });
  return Promise.race([p, timeout]).finally(() => {
    clearTimeout(timer);
  });
}

/** Memory of every Electron process (KiB -> MiB) and CPU since the previous call, by process type. */
function footprint(): { totalMiB: number; processes: { type: string; workingSetMiB: number; cpuPercent: number }[] } {
  const processes = app.getAppMetrics().map((m) => ({
    type: m.type,
    workingSetMiB: Math.round((m.memory.workingSetSize / 1024) * 10) / 10,
    cpuPercent: Math.round(m.cpu.percentCPUUsage * 100) / 100,
  }));
  return { totalMiB: Math.round(processes.reduce((sum, p) => sum + p.workingSetMiB, 0) * 10) / 10, processes };
}

/**
 * `npm run smoke:electron`: the real app, end to end: the tray exists, the walkthrough opens and renders
 * the agent's state, closes, and its renderer process is gone. Prints one SMOKE line for the runner.
 */
async function smokeTest(s: Shell, measure: boolean): Promise<void> {
  const result: Record<string, unknown> = { trayCreated: !s.tray.isDestroyed() };
  try {
    if (!s.daemon.agent.report) await within(once(s.daemon.agent, 'scanned'), 60_000, 'the first scan');
    openWalkthrough(s);
    const w = s.walkthrough;
    if (!w) throw new Error('the walkthrough window was not created');
    await within(once(w.window, 'show'), 20_000, 'the window to show');
    result.windowShown = w.window.isVisible();
    let progress = '';
    for (let i = 0; i < 50 && progress === ''; i++) {
      const text: unknown = await w.window.webContents.executeJavaScript('document.getElementById("progress-label")?.textContent ?? ""');
      progress = typeof text === 'string' ? text : '';
      if (progress === '') await delay(100);
    }
    result.progressText = progress;
    const closed = once(w.window, 'closed');
    w.window.close();
    await within(closed, 10_000, 'the window to close');
    result.windowClosed = w.window.isDestroyed() && s.walkthrough === undefined;
    await delay(1500);
    result.rendererReleased = !app.getAppMetrics().some((m) => m.type === 'Tab');
    if (measure) {
      footprint();
      // Idle means: no window, the first scan done, only the scheduler's timers pending.
      await delay(15_000);
      result.idle = footprint();
    }
  } catch (err) {
    result.error = (err as Error).message;
  }
  process.stdout.write(`SMOKE ${JSON.stringify(result)}\n`);
  app.quit();
}

async function main(): Promise<void> {
  await app.whenReady();
  lockDownWebContents();
  registerIpc();
  const runtime = await loadRuntime(args.global, 'daemon');
  const daemon = await startDaemon(runtime, DEFAULT_DAEMON_EXTENSIONS);
  const tray = new Tray(trayImage('checking'));
  const s: Shell = {
    runtime,
    daemon,
    tray,
    planner: new NotificationPlanner({
      enabled: runtime.loaded.config.ui.notifications && !args.smoke,
      cooldownMs: runtime.loaded.config.ui.notificationCooldownMinutes * 60_000,
    }),
    userScan: false,
    identityManager: new IdentityManager({ stateDir: runtime.loaded.stateDir, config: runtime.loaded.config.identity }),
  };
  shellState = s;
  deviceContext = await daemon.agent.deviceContext().catch(() => undefined);
  daemon.agent.on('scan-started', () => {
    renderTray(s);
  });
  daemon.agent.on('scanned', (outcome) => {
    void refreshIdentity(s).then(() => {
      renderTray(s);
      const decision = s.planner.next({ report: outcome.report, now: new Date(), ...(s.identity ? { identity: s.identity } : {}) });
      if (decision) notify(s, decision);
    });
    if (s.walkthrough) {
      s.walkthrough.session.update(outcome.report);
      pushState(s.walkthrough);
    }
  });
  // Windows and Linux open the menu on right-click; a left click there should do something useful.
  tray.on('click', () => {
    if (process.platform !== 'darwin') openWalkthrough(s);
  });
  renderTray(s);
  if (!args.smoke) await applyStartAtLogin(runtime).catch((err: unknown) => {
    runtime.logger.warn(`cannot register start at login: ${(err as Error).message}`);
  });
  if (args.smoke) await smokeTest(s, args.smoke.measure);
}

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  // A second launch (from the app menu, or MDM) shows the first instance instead of starting another agent.
  app.on('second-instance', (_e, argv) => {
    if (shellState && !parseTrayArgs(argv.slice(1)).hidden) openWalkthrough(shellState);
  });
  // The tray outlives its window: without this listener Electron quits when the last window closes.
  app.on('window-all-closed', () => undefined);
  app.on('before-quit', (e) => {
    if (stopped || !shellState) return;
    e.preventDefault();
    const s = shellState;
    void s.daemon.stop().finally(() => {
      stopped = true;
      app.quit();
    });
  });
  main().catch((err: unknown) => {
    process.stderr.write(`vigil tray: ${(err as Error).stack ?? String(err)}\n`);
    app.exit(1);
  });
}
