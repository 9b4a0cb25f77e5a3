import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
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
import electronUpdater from 'electron-updater';
import { parseTrayArgs } from '../src/ui/args.js';
import { APP_SCHEME, CONTENT_SECURITY_POLICY, invokeAllowed, resolveAsset, WALKTHROUGH_URL } from '../src/ui/content.js';
import { IPC, parseInvokeArgs, type InvokeArgs, type InvokeChannel, type InvokeResult } from '../src/ui/ipc.js';
import type { NotificationDecision } from '../src/ui/notifications.js';
import { launchSettings } from '../src/ui/settings-launcher.js';
import { applyLinuxAutostart, startTrayClient, type TrayClient } from '../src/ui/shell.js';
import type { TrayAction, TrayIconState, TrayMenuItem } from '../src/ui/tray.js';
import { configureUpdater } from '../src/ui/updates.js';
import type { WalkthroughModel } from '../src/ui/walkthrough.js';

/*
 * The tray is a thin shell over src/ui: a client of the device's agent (TrayController) that decides
 * what to show. This file turns its models into Electron calls and guards the one window we ever open.
 */

const HERE = dirname(fileURLToPath(import.meta.url));
const RENDERER_DIR = join(HERE, 'renderer');
const PRELOAD = join(HERE, 'preload.cjs');
const ICON_DIR = join(HERE, '..', '..', 'build', 'icons', 'tray');

const args = parseTrayArgs(process.argv.slice(1));

// Before `ready`: a standard, secure scheme gets an origin of its own, so CSP 'self' means our files only.
protocol.registerSchemesAsPrivileged([{ scheme: APP_SCHEME, privileges: { standard: true, secure: true } }]);

interface Shell {
  client: TrayClient;
  tray: Tray;
  /** The walkthrough window, while open; its state lives in the controller. */
  window?: BrowserWindow;
  /** Held so the click handler is not collected, and closed when the next one replaces it. */
  notification?: Notification;
}

let shellState: Shell | undefined;
let stopped = false;

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

function renderTray(s: Shell): void {
  const model = s.client.controller.model();
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
    case 'check-now': {
      const problem = await s.client.controller.checkNow();
      if (problem !== undefined && Notification.isSupported()) new Notification({ title: 'Vigil', body: problem }).show();
      return;
    }
    case 'open-logs': {
      const problem = await shell.openPath(s.client.logDir);
      if (problem) process.stderr.write(`vigil tray: cannot open the logs folder: ${problem}\n`);
      return;
    }
    case 'about': {
      const about = s.client.controller.about();
      await dialog.showMessageBox({
        type: 'info',
        title: 'About Vigil',
        message: `Vigil ${s.client.version}`,
        detail: `Endpoint posture agent.\nAgent: ${about.agent ?? 'not running'}\nPolicy: ${about.policy ?? 'unknown'}\nElectron ${process.versions.electron}`,
        buttons: ['OK'],
      });
      return;
    }
    case 'restart-to-update':
      electronUpdater.autoUpdater.quitAndInstall();
      return;
    case 'quit':
      app.quit();
      return;
  }
}

/** Packaged, unmanaged installs with a feed only (src/ui/updates.ts says why); checks now and every few hours. */
function startUpdates(s: Shell): void {
  const plan = s.client.updates;
  if (!plan.enabled || !app.isPackaged || args.smoke) {
    if (!plan.enabled) process.stderr.write(`vigil tray: updates off: ${plan.reason}\n`);
    return;
  }
  const { autoUpdater } = electronUpdater;
  configureUpdater(autoUpdater, plan);
  autoUpdater.on('update-downloaded', (info) => {
    s.client.controller.setUpdateReady(info.version);
  });
  autoUpdater.on('error', (err) => {
    process.stderr.write(`vigil tray: update check failed: ${err.message}\n`);
  });
  const check = (): void => {
    autoUpdater.checkForUpdates().catch(() => undefined);
  };
  check();
  setInterval(check, plan.checkIntervalMs).unref();
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

function pushState(s: Shell, model: WalkthroughModel): void {
  if (s.window && !s.window.isDestroyed()) s.window.webContents.send(IPC.state, model);
}

function openWalkthrough(s: Shell, focus?: string): void {
  const model = s.client.controller.openWalkthrough(focus);
  if (s.window) {
    pushState(s, model);
    s.window.show();
    s.window.focus();
    return;
  }
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
  s.window = window;
  window.once('ready-to-show', () => {
    window.show();
  });
  // Closing destroys the window and its renderer process: a tray app keeps no hidden renderer at idle.
  window.on('closed', () => {
    if (s.window === window) {
      delete s.window;
      s.client.controller.closeWalkthrough();
    }
  });
  window.loadURL(WALKTHROUGH_URL).catch((err: unknown) => {
    process.stderr.write(`vigil tray: cannot load the walkthrough: ${(err as Error).message}\n`);
  });
}

/** Guards every invoke: the sender must be our walkthrough's top frame showing our page, the arguments must parse. */
function handle<C extends InvokeChannel>(channel: C, fn: (s: Shell, args: InvokeArgs<C>) => Promise<InvokeResult<C>>): void {
  ipcMain.handle(channel, async (event: IpcMainInvokeEvent, ...raw: unknown[]) => {
    const s = shellState;
    const frame = event.senderFrame;
    if (!s || !invokeAllowed({ fromWalkthrough: s.window !== undefined && event.sender === s.window.webContents, topFrame: frame?.parent === null, frameUrl: frame?.url })) {
      throw new Error(`${channel}: refused: not from the walkthrough page`);
    }
    const parsed = parseInvokeArgs(channel, raw);
    if (!parsed.ok) throw new Error(parsed.problem);
    return fn(s, parsed.args);
  });
}

function registerIpc(): void {
  handle(IPC.getState, (s) => Promise.resolve(s.client.controller.walkthroughModel() ?? s.client.controller.openWalkthrough()));
  handle(IPC.checkAgain, async (s, [checkId]) => {
    await s.client.controller.recheck(checkId);
    return undefined;
  });
  handle(IPC.openSettings, (s, [checkId]) => {
    const target = s.client.controller.settingsTarget(checkId);
    return target
      ? launchSettings(target, (url) => shell.openExternal(url))
      : Promise.resolve({ ok: false, message: 'There is no settings page for this step on this device.' });
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
async function applyStartAtLogin(enabled: boolean): Promise<void> {
  if (!app.isPackaged) return;
  if (process.platform === 'linux') {
    await applyLinuxAutostart(enabled, [process.env.APPIMAGE ?? process.execPath, '--hidden']);
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
 * `npm run smoke:electron`: the real app, end to end against a running agent: the tray exists, the
 * walkthrough opens and renders the agent's state, closes, and its renderer process is gone.
 */
async function smokeTest(s: Shell, measure: boolean): Promise<void> {
  const result: Record<string, unknown> = { trayCreated: !s.tray.isDestroyed() };
  try {
    const c = s.client.controller;
    if (!c.agentState?.posture) await within(once(c, 'change'), 60_000, 'the agent’s state');
    openWalkthrough(s);
    const w = s.window;
    if (!w) throw new Error('the walkthrough window was not created');
    await within(once(w, 'show'), 20_000, 'the window to show');
    result.windowShown = w.isVisible();
    let progress = '';
    for (let i = 0; i < 50 && progress === ''; i++) {
      const text: unknown = await w.webContents.executeJavaScript('document.getElementById("progress-label")?.textContent ?? ""');
      progress = typeof text === 'string' ? text : '';
      if (progress === '') await delay(100);
    }
    result.progressText = progress;
    const closed = once(w, 'closed');
    w.close();
    await within(closed, 10_000, 'the window to close');
    result.windowClosed = w.isDestroyed() && s.window === undefined;
    await delay(1500);
    result.rendererReleased = !app.getAppMetrics().some((m) => m.type === 'Tab');
    if (measure) {
      footprint();
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
  const client = await startTrayClient(args, () => app.getLocale());
  const tray = new Tray(trayImage('checking'));
  const s: Shell = { client, tray };
  shellState = s;
  client.controller.on('change', () => {
    renderTray(s);
  });
  client.controller.on('notify', (d) => {
    notify(s, d);
  });
  client.controller.on('walkthrough', (model) => {
    pushState(s, model);
  });
  // Windows and Linux open the menu on right-click; a left click there should do something useful.
  tray.on('click', () => {
    if (process.platform !== 'darwin') openWalkthrough(s);
  });
  renderTray(s);
  startUpdates(s);
  if (!args.smoke) {
    await applyStartAtLogin(client.startAtLogin).catch((err: unknown) => {
      process.stderr.write(`vigil tray: cannot register start at login: ${(err as Error).message}\n`);
    });
  }
  if (args.smoke) await smokeTest(s, args.smoke.measure);
}

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  // A second launch (from the app menu, or MDM) shows the first instance instead of starting another.
  app.on('second-instance', (_e, argv) => {
    if (shellState && !parseTrayArgs(argv.slice(1)).hidden) openWalkthrough(shellState);
  });
  // The tray outlives its window: without this listener Electron quits when the last window closes.
  app.on('window-all-closed', () => undefined);
  app.on('before-quit', () => {
    if (stopped) return;
    stopped = true;
    shellState?.client.stop();
  });
  main().catch((err: unknown) => {
    process.stderr.write(`vigil tray: ${(err as Error).stack ?? String(err)}\n`);
    app.exit(1);
  });
}
