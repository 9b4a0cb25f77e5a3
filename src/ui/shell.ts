import { rm } from 'node:fs/promises';
import { startServiceHint } from '../platform/service-hint.js';
import { AgentConnection } from '../protocol/local-api-client.js';
import { loadRuntime } from '../runtime.js';
import { writeFileAtomic } from '../state/atomic.js';
import { AGENT_VERSION } from '../version.js';
import type { TrayArgs } from './args.js';
import { autostartPath, desktopEntry } from './autostart.js';
import { TrayController } from './tray-controller.js';
import { updatePlan, type UpdatePlan } from './updates.js';

/** What the Electron shell needs to run the tray: the controller, and the settings it renders by. */
export interface TrayClient {
  controller: TrayController;
  version: string;
  logDir: string;
  socket: string;
  startAtLogin: boolean;
  updates: UpdatePlan;
  stop(): void;
}

/**
 * Starts the tray as a client of the device's agent: config (for the socket and the ui settings), this
 * OS's remediation steps, and a subscription that reconnects by itself. No agent, scheduler or identity
 * manager runs in the tray process.
 */
export async function startTrayClient(args: TrayArgs, locale: () => string): Promise<TrayClient> {
  const rt = await loadRuntime(args.global, 'cli');
  const ui = rt.loaded.config.ui;
  const connection = new AgentConnection(rt.loaded.socket);
  const controller = new TrayController({
    link: connection,
    remediation: (id) => rt.support.checks[id]?.remediation,
    platform: rt.platform,
    allowQuit: ui.allowQuit,
    notifications: { enabled: ui.notifications && !args.smoke, cooldownMs: ui.notificationCooldownMinutes * 60_000 },
    startHint: startServiceHint(),
    display: () => ({ now: new Date(), locale: locale() }),
  });
  connection.start();
  return {
    controller,
    version: AGENT_VERSION,
    logDir: rt.loaded.logDir,
    socket: rt.loaded.socket,
    startAtLogin: ui.startAtLogin,
    updates: updatePlan(rt.loaded),
    stop: () => {
      connection.stop();
    },
  };
}

/** Linux: the per-user XDG autostart entry, written or removed to match ui.startAtLogin. */
export async function applyLinuxAutostart(enabled: boolean, exec: readonly string[]): Promise<void> {
  const file = autostartPath();
  if (enabled) await writeFileAtomic(file, desktopEntry({ exec, icon: 'vigil' }), 0o644);
  else await rm(file, { force: true });
}
